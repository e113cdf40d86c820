"""Client calls for the end-to-end tests, each reporting what its client saw: a whole
answer, a budget refusal, a call it gave up on midway, or something else (an error)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from tests.e2e.harness import tag_of
from tests.fakes import FakeDeployment

Result = Literal["ok", "refused", "cancelled", "error"]
# When a client that means to leave midway may go (None: as soon as it can).
LeaveWhen = Callable[[], bool] | None


async def _until(condition: LeaveWhen, timeout: float = 60.0) -> None:
    """Poll ``condition`` (the fake upstream's state: there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while condition is not None and not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


@dataclass
class Outcome:
    tag: str
    plan: str
    result: Result
    status: int | None = None
    request_id: str | None = None
    detail: str = ""


def _refusal_or_error(tag: str, plan: str, status: int, payload: bytes, request_id: str | None) -> Outcome:
    try:
        code = json.loads(payload)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    result: Result = "refused" if status == 429 and code == "budget_exceeded" else "error"
    return Outcome(tag, plan, result, status, request_id, payload[:300].decode(errors="replace"))


async def unary(session: aiohttp.ClientSession, url: str, headers: dict[str, str], raw: bytes) -> Outcome:
    """A non-streaming call read to its end."""
    tag = tag_of(raw) or "?"
    try:
        async with session.post(url, data=raw, headers=headers) as resp:
            payload = await resp.read()
            request_id = resp.headers.get("x-request-id")
            if resp.status != 200:
                return _refusal_or_error(tag, "unary", resp.status, payload, request_id)
            answer = json.loads(payload)
            ok = bool(answer.get("choices"))
            return Outcome(tag, "unary", "ok" if ok else "error", 200, request_id, payload[:300].decode())
    except aiohttp.ClientError as exc:
        return Outcome(tag, "unary", "error", None, None, repr(exc))


async def stream(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    raw: bytes,
    *,
    close_after_chunks: int | None = None,
    leave_when: LeaveWhen = None,
) -> Outcome:
    """A streaming call, read to ``data: [DONE]``, or closed by the client once it has
    ``close_after_chunks`` content chunks (and ``leave_when`` says so)."""
    tag = tag_of(raw) or "?"
    plan = "stream" if close_after_chunks is None else "stream-cancel"
    try:
        async with session.post(url, data=raw, headers=headers) as resp:
            request_id = resp.headers.get("x-request-id")
            if resp.status != 200:
                return _refusal_or_error(tag, plan, resp.status, await resp.read(), request_id)
            content_chunks = 0
            async for line in resp.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].strip()
                if data == b"[DONE]":
                    return Outcome(tag, plan, "ok", 200, request_id)
                event = json.loads(data)
                if "error" in event:
                    return Outcome(tag, plan, "error", 200, request_id, data.decode())
                if any(c.get("delta", {}).get("content") for c in event.get("choices", [])):
                    content_chunks += 1
                    if close_after_chunks is not None and content_chunks >= close_after_chunks:
                        await _until(leave_when)
                        resp.close()  # closes the connection: the gateway sees the client go
                        return Outcome(tag, plan, "cancelled", 200, request_id)
            return Outcome(tag, plan, "error", 200, request_id, "stream ended without [DONE]")
    except aiohttp.ClientError as exc:
        return Outcome(tag, plan, "error", None, None, repr(exc))


async def abandoned_unary(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    raw: bytes,
    upstream: FakeDeployment,
    *,
    leave_when: LeaveWhen = None,
    timeout: float = 60.0,
) -> Outcome:
    """A non-streaming call the client gives up on (closing the connection) as soon as
    the upstream has it (and ``leave_when`` says so); a refusal comes back before that."""
    tag = tag_of(raw) or "?"
    caller = asyncio.current_task()
    assert caller is not None
    gave_up = False

    async def give_up_once_upstream_has_it() -> None:
        nonlocal gave_up
        await _until(lambda: any(tag_of(r.json) == tag for r in upstream.requests()), timeout)
        await _until(leave_when, timeout)
        gave_up = True
        caller.cancel()  # aiohttp closes the connection of a call cancelled midway

    # The call runs in this task (not a new one), so that it leaves as early as the
    # calls of the other kinds started alongside it.
    watcher = asyncio.create_task(give_up_once_upstream_has_it())
    try:
        async with asyncio.timeout(timeout):
            outcome = await unary(session, url, headers, raw)
    except asyncio.CancelledError:
        if not gave_up:
            raise
        caller.uncancel()
        return Outcome(tag, "unary-cancel", "cancelled")
    finally:
        watcher.cancel()
    outcome.plan = "unary-cancel"
    return outcome
