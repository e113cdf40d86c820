"""The local provider's engines: a loaded model plus the one thread that runs it.

``CausalEngine`` generates (with stop strings and cancellation checked after every
token); ``EncoderEngine`` embeds (mean pooling and L2 normalisation, as
sentence-transformers does for all-MiniLM-L6-v2). Heavy imports happen in
``import_ml``, inside the functions that need them.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keel.core import (
    MissingPrerequisite,
)

_EMBEDDING_BATCH = 32

ModelKind = Literal["causal", "encoder"]
FinishReason = Literal["stop", "length"]


def import_ml() -> tuple[Any, Any]:
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


class TextWatcher:
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


class Engine:
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


class CausalEngine(Engine):
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
        torch, transformers = import_ml()
        if cancel.is_set():
            return Generated("", 0, "stop")
        watcher = TextWatcher(self.tokenizer, len(prompt_ids), sampling.stop, cancel, on_text)

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


class EncoderEngine(Engine):
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
        torch, _ = import_ml()
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
