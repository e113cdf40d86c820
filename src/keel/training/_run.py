"""A training run from start to registered model: check the inputs (before anything
heavy is imported), pick the device, open (or reopen, on resume) the MLflow run, train
with checkpoints, evaluate, save the model and register it with its lineage.

Under ``accelerate launch`` every process runs this; only the main one (``RANK`` 0)
draws the bar, talks to MLflow, writes the run file and registers the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.core import InvalidRequest
from keel.training import _registry as registry
from keel.training._base_model import check_base_model, import_training, pick_device, resolve_base_model
from keel.training._config import TrainConfig, TrainResult
from keel.training._data import TrainingData, load_training_data
from keel.training._tracking import TrackingRun, default_tracking_uri

RUN_FILE = "keel-run.json"
MODEL_FILE = "keel-model.json"


def train_sft(config: TrainConfig, *, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Supervised fine-tuning on an SFT dataset (the loss on the answers only)."""
    return run_training(dataclasses.replace(config, kind="sft"), callbacks=callbacks)


def train_dpo(config: TrainConfig, *, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Direct preference optimisation on a preference dataset (chosen over rejected)."""
    return run_training(dataclasses.replace(config, kind="dpo"), callbacks=callbacks)


def run_training(config: TrainConfig, *, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train as ``config`` says; ``callbacks`` are extra transformers TrainerCallbacks."""
    started = time.monotonic()
    # Cheap checks first: a wrong path or an empty dataset fails in milliseconds, not
    # after torch and TRL have loaded.
    check_base_model(config.base_model)
    data = load_training_data(config.kind, config.dataset)
    config = resolve_paths(config)
    home = Path(config.home).expanduser()
    run_name, output_dir = str(config.run_name), Path(str(config.output_dir))
    state = _run_state(config, output_dir, data)
    resume_from = state.get("checkpoint")

    torch, transformers = import_training("torch", "transformers", "trl", "datasets")[:2]
    from keel.training import _trainer
    from keel.training._callbacks import MetricsCallback, RichProgress

    main = int(os.environ.get("RANK", "0")) == 0
    device, bf16 = pick_device(config.device, config.bf16, torch)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    base_dir = resolve_base_model(config.base_model, home)
    tracking_uri = config.mlflow_uri or default_tracking_uri(home)
    tracking = None
    if main and (config.mlflow or config.register):
        tracking = TrackingRun.open(
            tracking_uri,
            experiment=config.experiment,
            run_name=run_name,
            tags=_lineage(config, base_dir, data, output_dir),
            existing_run_id=state.get("mlflow_run_id") if state.get("tracking_uri") == tracking_uri else None,
        )
        tracking.log_params(_params(config, base_dir, data, device, bf16, transformers))
        if resume_from is not None:
            tracking.set_tags({"keel.resumed_from_step": str(_step(resume_from))})
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        _write_run_file(output_dir, config, data, tracking, base_dir)

    metrics = MetricsCallback(tracking if config.mlflow else None)
    progress = RichProgress(f"{config.kind.upper()} training") if config.progress and main else None
    transformers.set_seed(config.seed)
    with _quiet_bars():
        model, tokenizer = _trainer.load_model(base_dir, bf16, device)
        args = _trainer.trainer_args(config, output_dir, device, bf16, bool(data.eval))
        trainer = _trainer.build_trainer(
            config, data, model, tokenizer, args, [metrics, *([progress] if progress else []), *callbacks]
        )
        try:
            if data.eval and config.eval_at_start and resume_from is None:
                trainer.evaluate()
            outcome = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            eval_metrics = _final_evaluation(trainer) if data.eval else {}
            model_dir = output_dir / "model"
            _trainer.save_trained_model(trainer, tokenizer, model_dir, merge_lora=config.lora is not None)
        except BaseException as exc:
            if progress is not None:
                progress.close()
            if tracking is not None:
                with contextlib.suppress(Exception):  # the training error is the one to report
                    tracking.finish("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
    ref = None
    if main:
        _write_model_file(model_dir, config, base_dir, data, tracking)
        if config.register and tracking is not None:
            ref = registry.register_model(
                model_dir,
                config.model_name or _default_model_name(config.base_model, base_dir),
                tracking_uri=tracking_uri,
                run_id=tracking.run_id,
                tags=_lineage(config, base_dir, data, output_dir)
                | {registry.TAG_TRAINING_RUN: tracking.run_id},
                aliases=config.aliases,
            )
            tracking.set_tags({"keel.model": ref.name, "keel.model_version": str(ref.version)})
        if tracking is not None:
            tracking.finish()
    runtime = metrics.summary.get("train_runtime") or float(outcome.metrics.get("train_runtime", 0.0))
    tokens = metrics.train.get("num_tokens")
    return TrainResult(
        kind=config.kind,
        output_dir=output_dir,
        model_dir=model_dir,
        base_model_dir=base_dir,
        global_step=int(trainer.state.global_step),
        resumed_from_step=_step(resume_from) if resume_from else None,
        train_metrics=dict(metrics.train),
        eval_metrics={k: float(v) for k, v in eval_metrics.items() if isinstance(v, int | float)},
        dataset_hash=data.dataset_hash,
        train_rows=len(data.train),
        eval_rows=len(data.eval),
        seconds=round(time.monotonic() - started, 2),
        tokens_per_second=round(tokens / runtime, 1) if tokens and runtime else None,
        mlflow_run_id=tracking.run_id if tracking is not None else None,
        tracking_uri=tracking_uri if tracking is not None else None,
        model=ref,
        device=device,
        bf16=bf16,
        extra={"train_summary": dict(metrics.summary), "world_size": int(os.environ.get("WORLD_SIZE", "1"))},
    )


def resolve_paths(config: TrainConfig) -> TrainConfig:
    """``config`` with its run name (the output directory's name, else
    ``<kind>-<base>-<UTC time>``) and output directory (``<home>/training/<run name>``)
    filled in and absolute: what every process of a multi-process run must agree on."""
    run_name = config.run_name or (
        Path(config.output_dir).name if config.output_dir else _default_run_name(config)
    )
    home = Path(config.home).expanduser().resolve()
    output_dir = Path(config.output_dir or home / "training" / run_name).expanduser().resolve()
    dataset = Path(config.dataset).expanduser().resolve()
    return dataclasses.replace(config, run_name=run_name, output_dir=output_dir, home=home, dataset=dataset)


def _final_evaluation(trainer: Any) -> dict[str, Any]:
    """The evaluation at the last step: the one the trainer just ran (``eval_steps``
    dividing the step count), else a new one."""
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry:
            if entry.get("step") == step:
                return dict(entry)
            break
    return dict(trainer.evaluate())


def _run_state(config: TrainConfig, output_dir: Path, data: TrainingData) -> dict[str, Any]:
    """What an earlier run in ``output_dir`` left: its run file and, to resume, its last
    checkpoint. Refuses to train over checkpoints unless resuming, and to resume
    without one or on different data."""
    checkpoint = _last_checkpoint(output_dir)
    if not config.resume:
        if checkpoint is not None:
            raise InvalidRequest(
                f"{output_dir} already holds checkpoints ({checkpoint.name}): pass --resume to continue "
                "that run, or choose another output directory"
            )
        return {}
    if checkpoint is None:
        raise InvalidRequest(f"nothing to resume: no checkpoint in {output_dir}")
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        state = json.loads((output_dir / RUN_FILE).read_text("utf-8"))
    if state.get("dataset_hash") not in (None, data.dataset_hash):
        raise InvalidRequest(
            f"cannot resume {output_dir}: it was trained on dataset {state['dataset_hash']}, "
            f"not {data.dataset_hash}"
        )
    return state | {"checkpoint": checkpoint}


def _last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint (one with its trainer state written)."""
    if not output_dir.is_dir():
        return None
    found = [
        p
        for p in output_dir.glob("checkpoint-*")
        if p.name.removeprefix("checkpoint-").isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(found, key=_step, default=None)


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix("checkpoint-"))


def _default_run_name(config: TrainConfig) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = "keel-demo" if check_base_model(config.base_model) is None else Path(config.base_model).name
    return f"{config.kind}-{base}-{stamp}"


def _default_model_name(base_model: str, base_dir: Path) -> str:
    return "keel-demo" if check_base_model(base_model) is None else base_dir.name


def _lineage(config: TrainConfig, base_dir: Path, data: TrainingData, output_dir: Path) -> dict[str, str]:
    return {
        registry.TAG_KIND: config.kind,
        registry.TAG_BASE_MODEL: str(base_dir),
        registry.TAG_DATASET: str(data.path.resolve()),
        registry.TAG_DATASET_HASH: data.dataset_hash,
        registry.TAG_OUTPUT_DIR: str(output_dir),
    }


def _params(
    config: TrainConfig, base_dir: Path, data: TrainingData, device: str, bf16: bool, transformers: Any
) -> dict[str, Any]:
    import trl

    params: dict[str, Any] = {
        "kind": config.kind,
        "base_model": str(base_dir),
        "dataset": str(data.path),
        "dataset_hash": data.dataset_hash,
        "train_rows": len(data.train),
        "eval_rows": len(data.eval),
        "max_steps": config.max_steps if config.max_steps is not None else "",
        "epochs": config.epochs,
        "learning_rate": config.effective_learning_rate,
        "batch_size": config.batch_size,
        "gradient_accumulation": config.gradient_accumulation,
        "max_length": config.max_length,
        "seed": config.seed,
        "lora": str(config.lora) if config.lora is not None else "none",
        "device": device,
        "bf16": bf16,
        "world_size": os.environ.get("WORLD_SIZE", "1"),
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
    }
    if config.kind == "dpo":
        params["beta"] = config.beta
    return params


def _write_run_file(
    output_dir: Path, config: TrainConfig, data: TrainingData, tracking: TrackingRun | None, base_dir: Path
) -> None:
    state = {
        "kind": config.kind,
        "base_model": str(base_dir),
        "dataset": str(data.path),
        "dataset_hash": data.dataset_hash,
        "mlflow_run_id": tracking.run_id if tracking is not None else None,
        "tracking_uri": tracking.tracking_uri if tracking is not None else None,
        "config": json.loads(config.to_json()),
    }
    (output_dir / RUN_FILE).write_text(json.dumps(state, indent=2) + "\n", "utf-8")


def _write_model_file(
    model_dir: Path, config: TrainConfig, base_dir: Path, data: TrainingData, tracking: TrackingRun | None
) -> None:
    """Lineage next to the weights, for whoever finds the directory without MLflow."""
    lineage = {
        "kind": config.kind,
        "base_model": str(base_dir),
        "dataset": str(data.path),
        "dataset_hash": data.dataset_hash,
        "mlflow_run_id": tracking.run_id if tracking is not None else None,
        "lora": str(config.lora) if config.lora is not None else None,
        "created_at": datetime.now(UTC).isoformat(),
    }
    (model_dir / MODEL_FILE).write_text(json.dumps(lineage, indent=2) + "\n", "utf-8")


@contextlib.contextmanager
def _quiet_bars() -> Iterator[None]:
    """No tqdm bars from transformers and datasets (loading and writing weights,
    tokenizing) next to the run's own bar, nor a known deprecation warning; their
    settings come back afterwards."""
    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as transformers_logging

    datasets_on = datasets_logging.is_progress_bar_enabled()
    transformers_on = transformers_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        with warnings.catch_warnings():
            # TRL 1.16 calls a transformers method that transformers 5.2x renamed.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            yield
    finally:
        if datasets_on:
            datasets_logging.enable_progress_bar()
        if transformers_on:
            transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
