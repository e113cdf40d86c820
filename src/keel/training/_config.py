"""What a training run is asked to do (``TrainConfig``, ``LoraSpec``) and what it did
(``TrainResult``). Plain dataclasses: the CLI builds them from options, ``launch`` from
a JSON file (so ``accelerate launch`` starts every process with the same run)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel.core import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from keel.training._registry import ModelRef

TrainKind = Literal["sft", "dpo"]
Device = Literal["auto", "cpu", "cuda"]

# Learning rates that work for full fine-tuning; a LoRA adapter (few, freshly
# initialised weights) wants about ten times more.
_DEFAULT_LR: dict[tuple[str, bool], float] = {
    ("sft", False): 2e-5,
    ("sft", True): 2e-4,
    ("dpo", False): 5e-6,
    ("dpo", True): 5e-5,
}


@dataclass(frozen=True)
class LoraSpec:
    """A PEFT LoRA adapter: rank, scaling, dropout and which modules get one
    (``all-linear``: every linear layer but the output head)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str | tuple[str, ...] = "all-linear"

    @classmethod
    def parse(cls, text: str) -> LoraSpec:
        """``r=8,alpha=16,dropout=0.05,targets=q_proj+v_proj`` (every key optional;
        an empty string or ``default`` gives the defaults)."""
        values: dict[str, Any] = {}
        text = text.strip()
        if text in ("", "default", "true", "on"):
            return cls()
        for part in text.split(","):
            key, sep, raw = part.partition("=")
            key, raw = key.strip().lower(), raw.strip()
            if not sep or not raw:
                raise _problem("lora", f"expected key=value, got {part.strip()!r}")
            try:
                if key in ("r", "rank"):
                    values["r"] = int(raw)
                elif key in ("alpha", "lora_alpha"):
                    values["alpha"] = int(raw)
                elif key in ("dropout", "lora_dropout"):
                    values["dropout"] = float(raw)
                elif key in ("targets", "target_modules", "modules"):
                    modules = tuple(m for m in raw.replace(" ", "").split("+") if m)
                    values["target_modules"] = modules[0] if modules == ("all-linear",) else modules
                else:
                    raise _problem("lora", f"unknown key {key!r} (r, alpha, dropout, targets)")
            except ValueError:
                raise _problem("lora", f"{key}: not a number: {raw!r}") from None
        spec = cls(**values)
        spec.check()
        return spec

    def check(self) -> None:
        if self.r < 1:
            raise _problem("lora.r", "must be at least 1")
        if self.alpha < 1:
            raise _problem("lora.alpha", "must be at least 1")
        if not 0 <= self.dropout < 1:
            raise _problem("lora.dropout", "must be in [0, 1)")
        if not self.target_modules:
            raise _problem("lora.targets", "name at least one module, or all-linear")

    def __str__(self) -> str:
        targets = self.target_modules
        shown = targets if isinstance(targets, str) else "+".join(targets)
        return f"r={self.r},alpha={self.alpha},dropout={self.dropout},targets={shown}"


@dataclass(frozen=True)
class TrainConfig:
    """One SFT or DPO run.

    ``base_model`` is a local Hugging Face model directory or ``demo`` (Keel's demo
    model, built into ``home`` when missing). ``dataset`` is an exported dataset (see
    ``keel data export``). ``output_dir`` (default ``<home>/training/<run_name>``) gets
    the checkpoints and, at the end, the trained model in ``model/`` (LoRA merged).
    ``max_steps`` None trains ``epochs`` passes over the data. ``learning_rate`` None
    picks a default for the kind (and LoRA). ``bf16`` None means "when CUDA supports
    it". ``mlflow_uri`` None is ``sqlite:///<home>/mlflow.db``. ``register`` adds the
    trained model to MLflow's registry as ``model_name`` (default: the base model's
    directory name) and points ``aliases`` at the new version.
    """

    kind: TrainKind
    base_model: str
    dataset: Path
    home: Path
    output_dir: Path | None = None
    run_name: str | None = None
    max_steps: int | None = None
    epochs: float = 1.0
    learning_rate: float | None = None
    batch_size: int = 8
    eval_batch_size: int | None = None
    gradient_accumulation: int = 1
    max_length: int = 512
    beta: float = 0.1
    lora: LoraSpec | None = None
    seed: int = 0
    save_steps: int = 50
    save_total_limit: int | None = 2
    eval_steps: int | None = None
    eval_at_start: bool = True
    logging_steps: int = 5
    warmup_steps: int = 0
    resume: bool = False
    device: Device = "auto"
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    threads: int | None = None
    mlflow: bool = True
    mlflow_uri: str | None = None
    experiment: str = "keel-training"
    register: bool = True
    model_name: str | None = None
    aliases: tuple[str, ...] = ()
    progress: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in ("sft", "dpo"):
            problems.append(ConfigProblem("kind", f"must be sft or dpo, not {self.kind!r}"))
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(ConfigProblem("device", f"must be auto, cpu or cuda, not {self.device!r}"))
        for name in ("batch_size", "gradient_accumulation", "max_length", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                problems.append(ConfigProblem(name, "must be at least 1"))
        for name in ("max_steps", "eval_steps", "eval_batch_size", "threads", "save_total_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(ConfigProblem(name, "must be at least 1"))
        if self.max_steps is None and self.epochs <= 0:
            problems.append(ConfigProblem("epochs", "must be positive"))
        if self.learning_rate is not None and self.learning_rate <= 0:
            problems.append(ConfigProblem("learning_rate", "must be positive"))
        if self.beta <= 0:
            problems.append(ConfigProblem("beta", "must be positive"))
        if not self.base_model.strip():
            problems.append(ConfigProblem("base_model", "must name a model directory or demo"))
        if problems:
            raise ConfigError(problems)
        if self.lora is not None:
            self.lora.check()

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return _DEFAULT_LR[(self.kind, self.lora is not None)]

    def to_json(self) -> str:
        """The config as JSON (paths as text), what ``from_json`` reads back."""
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        data["aliases"] = list(self.aliases)
        if self.lora is not None and isinstance(self.lora.target_modules, tuple):
            data["lora"]["target_modules"] = list(self.lora.target_modules)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> TrainConfig:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError([ConfigProblem("", f"not JSON: {exc}")], source) from None
        if not isinstance(data, dict):
            raise ConfigError([ConfigProblem("", "expected a JSON object")], source)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError([ConfigProblem(key, "unknown setting") for key in unknown], source)
        for key in ("dataset", "home", "output_dir"):
            if data.get(key) is not None:
                data[key] = Path(data[key])
        if data.get("lora") is not None:
            lora = dict(data["lora"])
            if isinstance(lora.get("target_modules"), list):
                lora["target_modules"] = tuple(lora["target_modules"])
            data["lora"] = LoraSpec(**lora)
        data["aliases"] = tuple(data.get("aliases", ()))
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError([ConfigProblem("", str(exc))], source) from None


@dataclass(frozen=True)
class TrainResult:
    """What a run did. ``train_metrics`` are the last logged training values (``loss``;
    for DPO ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``,
    ``rewards/margins``); ``eval_metrics`` the final evaluation on the eval split
    (``eval_loss``, ``eval_rewards/accuracies`` ...), empty without an eval split.
    ``resumed_from_step`` is the checkpoint's step when the run was resumed. ``model``
    is the registered version (None when not registered, and in every process of a
    multi-process run but the main one)."""

    kind: TrainKind
    output_dir: Path
    model_dir: Path
    base_model_dir: Path
    global_step: int
    resumed_from_step: int | None
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float]
    dataset_hash: str
    train_rows: int
    eval_rows: int
    seconds: float
    tokens_per_second: float | None
    mlflow_run_id: str | None
    tracking_uri: str | None
    model: ModelRef | None = None
    device: str = "cpu"
    bf16: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _problem(location: str, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(location, message)])
