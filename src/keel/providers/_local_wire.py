"""OpenAI wire format for the local provider: prompts from requests, replies and
stream chunks from what the engines generated."""

from __future__ import annotations

import array
import asyncio
import base64
import concurrent.futures
import contextlib
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

from keel.core import (
    DEMO_CHAT_MODEL,
    InvalidRequest,
    JSONObject,
    KeelError,
    ProviderError,
    Usage,
)
from keel.providers._base import Deployment, StreamChunk
from keel.providers._local_engines import CausalEngine, Generated, Sampling, import_ml

_DEMO_MAX_TOKENS = 128
_DEFAULT_MAX_TOKENS = 512
# How long ``aclose`` waits for a cancelled generation to notice (one token's time).
_CANCEL_WAIT_S = 10.0


def text_sender(send: Callable[[Event], None], index: int) -> Callable[[str], None]:
    return lambda text: send(("text", index, text))


# --- requests in, responses out --------------------------------------------------


def chat_prompt_ids(engine: CausalEngine, body: JSONObject) -> list[int]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    turns = [_plain_message(m, i) for i, m in enumerate(messages)]
    tokenizer = engine.tokenizer
    if getattr(tokenizer, "chat_template", None):
        try:
            text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # a model's template may refuse a shape (e.g. roles must alternate)
            raise InvalidRequest(f"the model's chat template rejected the messages: {exc}") from exc
    else:
        # A base model without a template: a plain transcript it can continue.
        text = "".join(f"{t['role']}: {t['content']}\n" for t in turns) + "assistant:"
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


def _plain_message(message: Any, index: int) -> dict[str, str]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise InvalidRequest("each message needs a role", param=f"messages[{index}]")
    role = "system" if message["role"] == "developer" else message["role"]
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise InvalidRequest(
                    f"the local provider takes text only, not {kind!r} content",
                    param=f"messages[{index}].content",
                )
        text = "\n".join(parts)
    else:
        raise InvalidRequest(
            "content must be a string or a list of parts", param=f"messages[{index}].content"
        )
    return {"role": role, "content": text}


def completion_prompt_ids(engine: CausalEngine, body: JSONObject) -> list[list[int]]:
    prompt = body.get("prompt")
    tokenizer = engine.tokenizer
    if isinstance(prompt, str):
        return [tokenizer(prompt)["input_ids"]]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return [tokenizer(p)["input_ids"] for p in prompt]
        vocab = len(tokenizer)
        rows = [prompt] if all(isinstance(t, int) for t in prompt) else prompt
        if all(
            isinstance(r, list) and r and all(isinstance(t, int) and 0 <= t < vocab for t in r) for r in rows
        ):
            return [list(r) for r in rows]
    raise InvalidRequest(
        "prompt must be a string, a list of strings, or token ids of this model", param="prompt"
    )


def choice_count(body: JSONObject) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n >= 1 else 1


def plan_sampling(
    engine: CausalEngine, prompts: list[list[int]], body: JSONObject, deployment: Deployment
) -> list[tuple[list[int], Sampling]]:
    """One (prompt, sampling) per choice, in choice order: each prompt ``n`` times."""
    context = engine.context_length
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidRequest("max_tokens must be a positive integer", param="max_tokens")
    default = _DEMO_MAX_TOKENS if deployment.model == DEMO_CHAT_MODEL else _DEFAULT_MAX_TOKENS
    temperature = float(body.get("temperature") or 0.0)
    top_p = body.get("top_p")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in (stop or ()) if isinstance(s, str))
    plan: list[tuple[list[int], Sampling]] = []
    for ids in prompts:
        if len(ids) >= context:
            raise InvalidRequest(
                f"the prompt is {len(ids)} tokens; model {deployment.model!r} takes at most {context - 1}",
                code="context_length_exceeded",
            )
        sampling = Sampling(
            max_new_tokens=min(limit or default, context - len(ids)),
            temperature=temperature,
            top_p=float(top_p) if top_p is not None else 1.0,
            stop=tuple(s for s in stops if s),
        )
        plan.extend((ids, sampling) for _ in range(choice_count(body)))
    return plan


def apply_seed(body: JSONObject) -> None:
    """Seeds sampling for this request (on the engine's thread, before generating)."""
    seed = body.get("seed")
    if isinstance(seed, int):
        torch, _ = import_ml()
        torch.manual_seed(seed)


def usage_of(prompt_tokens: int, choices: Sequence[tuple[int, Generated]]) -> Usage:
    return Usage(
        input_tokens=prompt_tokens, output_tokens=sum(g.tokens for _, g in choices), source="reported"
    )


def chat_reply(model: str, results: Sequence[Generated]) -> JSONObject:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": g.text},
                "logprobs": None,
                "finish_reason": g.finish_reason,
            }
            for i, g in enumerate(results)
        ],
    }


def completion_reply(model: str, choices: Sequence[tuple[int, Generated]]) -> JSONObject:
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "text": g.text, "logprobs": None, "finish_reason": g.finish_reason}
            for i, (_, g) in enumerate(choices)
        ],
    }


def embedding_inputs(body: JSONObject) -> list[str]:
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise InvalidRequest("input must be a string or a non-empty list of strings", param="input")
    if not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("the local provider embeds text only, not token arrays", param="input")
    return texts


def base64_vector(vector: Sequence[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32."""
    packed = array.array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


# --- streams ---------------------------------------------------------------------

# ("start", choice, ""), ("text", choice, piece), ("finish", choice, reason),
# ("usage", prompt_tokens, completion_tokens), ("error", 0, exception)
Event = tuple[str, int, Any]


class LocalChunkStream:
    """Chunks of a generation running on an engine thread, in OpenAI's stream format:
    per choice a first chunk (chat: the role), text deltas, a finish chunk; then one
    usage chunk with ``choices: []``."""

    def __init__(
        self,
        kind: Literal["chat", "completion"],
        model: str,
        events: asyncio.Queue[Event],
        cancel: threading.Event,
        job: concurrent.futures.Future[None],
    ) -> None:
        self.usage: Usage | None = None
        self._kind = kind
        self._model = model
        self._events = events
        self._cancel = cancel
        self._job = job
        self._id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self._created = int(time.time())

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._chunks()

    def buffered(self) -> bool:
        return not self._events.empty()

    async def _chunks(self) -> AsyncIterator[StreamChunk]:
        while True:
            what, index, value = await self._events.get()
            if what == "error":
                if isinstance(value, KeelError):
                    raise value
                raise ProviderError(f"local model {self._model!r} failed: {value}", kind="local_error")
            if what == "usage":
                self.usage = Usage(input_tokens=index, output_tokens=value, source="reported")
                yield StreamChunk(self._chunk([], usage=self.usage.to_openai()))
                return
            if what == "start" and self._kind == "chat":
                yield StreamChunk(self._chunk([self._choice(index, {"role": "assistant", "content": ""})]))
            elif what == "text":
                content = {"content": value} if self._kind == "chat" else value
                yield StreamChunk(self._chunk([self._choice(index, content)]))
            elif what == "finish":
                yield StreamChunk(
                    self._chunk([self._choice(index, {} if self._kind == "chat" else "", value)])
                )

    def _choice(self, index: int, content: Any, finish_reason: str | None = None) -> JSONObject:
        if self._kind == "chat":
            return {"index": index, "delta": content, "logprobs": None, "finish_reason": finish_reason}
        return {"index": index, "text": content, "logprobs": None, "finish_reason": finish_reason}

    def _chunk(self, choices: list[JSONObject], usage: JSONObject | None = None) -> JSONObject:
        chunk: JSONObject = {
            "id": self._id,
            "object": "chat.completion.chunk" if self._kind == "chat" else "text_completion",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk

    async def aclose(self) -> None:
        """Stops the generation (within a token) and waits until the model is free."""
        self._cancel.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._job)), _CANCEL_WAIT_S)

    @property
    def finished(self) -> bool:
        """Whether the generation thread has stopped (tests and shutdown look)."""
        return self._job.done()
