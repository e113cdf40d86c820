"""Streamed output on a sliding window: nothing that must be redacted goes out, a block
stops the stream, placeholders from the request are restored across pieces."""

from __future__ import annotations

from typing import Any

from keel.core._settings_guards import PolicySettings
from keel.guards import StreamGuard, build_policy

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0hIj3kLm6n"


def run(guard: StreamGuard, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        step = guard.feed(piece)
        out.append(step.text)
        if step.blocked:
            return "".join(out), True
    final = guard.finish()
    out.append(final.text)
    return "".join(out), final.blocked


def chop(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def policy(**settings: Any) -> Any:
    return build_policy("s", PolicySettings.model_validate(settings))


def test_redacts_values_cut_across_pieces() -> None:
    text = "Contact me at alice.smith@example.com or " + ("blah " * 40) + f"use {KEY} ok"
    guard = StreamGuard(policy(action="redact", output=["pii", "secrets"]), holdback=64)
    out, blocked = run(guard, chop(text, 7))
    assert not blocked
    assert out == "Contact me at <EMAIL_1> or " + ("blah " * 40) + "use <API_KEY_1> ok"
    assert guard.redactions == {"<EMAIL_1>": "alice.smith@example.com", "<API_KEY_1>": KEY}
    assert guard.logged_text == out and guard.full_text == text
    assert [r.scanner for r in guard.results] == ["pii", "secrets"]


def test_release_is_bounded_by_the_holdback() -> None:
    guard = StreamGuard(policy(action="redact", output=["pii"]), holdback=32)
    released = "".join(guard.feed(p).text for p in chop("word " * 100, 5))
    assert 500 - len(released) <= 32 + 5


def test_block_stops_the_stream() -> None:
    text = "fine so far " * 10 + f"and the key {KEY} and more " * 3
    guard = StreamGuard(policy(action="block", output=["secrets"]), holdback=64)
    out, blocked = run(guard, chop(text, 10))
    assert blocked and KEY not in out
    assert guard.blocked is not None and "secrets" in guard.blocked.error().message
    assert guard.feed("more").blocked


def test_whole_text_scanners_run_at_the_end() -> None:
    guard = StreamGuard(policy(output=["json"]), holdback=8)
    _out, blocked = run(guard, chop('{"a": [1, 2', 3))
    assert blocked and guard.blocked is not None and "not valid JSON" in guard.blocked.error().message
    good = StreamGuard(policy(output=["json"]), holdback=8)
    assert run(good, chop('{"a": [1, 2, 3]}', 3)) == ('{"a": [1, 2, 3]}', False)


def test_restores_request_placeholders_in_the_stream() -> None:
    guard = StreamGuard(
        policy(action="redact", restore=True, input=["pii"], output=["secrets"]),
        request_redactions={"<EMAIL_1>": "a@x.io"},
        holdback=4,
    )
    out, _ = run(guard, ["Hi <EMA", "IL_1>, your ", "order is ready"])
    assert out == "Hi a@x.io, your order is ready"
    assert guard.logged_text == "Hi <EMAIL_1>, your order is ready"


async def test_finish_async() -> None:
    guard = policy(output=["pii"]).stream(holdback=10)
    guard.feed("hello there, general kenobi")
    step = await guard.finish_async()
    assert not step.blocked and guard.full_text.endswith("kenobi")
