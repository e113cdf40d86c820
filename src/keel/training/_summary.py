"""A finished run in words (for the terminal) and as JSON (for scripts)."""

from __future__ import annotations

from typing import Any

from keel.training._config import TrainResult
from keel.training._registry import ModelRef

# The numbers worth a line, in this order, when the run logged them.
_HEADLINE = (
    ("loss", "train loss"),
    ("rewards/accuracies", "train reward accuracy"),
    ("rewards/margins", "train reward margin"),
    ("eval_loss", "eval loss"),
    ("eval_rewards/accuracies", "eval reward accuracy"),
    ("eval_rewards/margins", "eval reward margin"),
    ("eval_mean_token_accuracy", "eval token accuracy"),
)


def summary_lines(result: TrainResult) -> list[str]:
    resumed = f" (resumed at step {result.resumed_from_step})" if result.resumed_from_step else ""
    precision = "bf16" if result.bf16 else "fp32"
    lines = [
        f"{result.kind.upper()} finished: {result.global_step} steps{resumed} on {result.device} "
        f"({precision}) in {result.seconds:.0f} s, {result.train_rows} train / {result.eval_rows} eval rows",
    ]
    metrics = result.train_metrics | result.eval_metrics
    for key, label in _HEADLINE:
        if key in metrics:
            lines.append(f"  {label}: {metrics[key]:.4f}")
    if result.tokens_per_second:
        lines.append(f"  throughput: {result.tokens_per_second:,.0f} tokens/s")
    lines.append(f"model: {result.model_dir}")
    if result.mlflow_run_id:
        lines.append(f"MLflow run {result.mlflow_run_id} ({result.tracking_uri})")
    if result.model is not None:
        aliases = f" [{', '.join(result.model.aliases)}]" if result.model.aliases else ""
        lines.append(f"registered: {result.model.name} version {result.model.version}{aliases}")
    return lines


def result_json(result: TrainResult) -> dict[str, Any]:
    model = result.model
    return {
        "kind": result.kind,
        "output_dir": str(result.output_dir),
        "model_dir": str(result.model_dir),
        "base_model_dir": str(result.base_model_dir),
        "global_step": result.global_step,
        "resumed_from_step": result.resumed_from_step,
        "train_metrics": result.train_metrics,
        "eval_metrics": result.eval_metrics,
        "dataset_hash": result.dataset_hash,
        "train_rows": result.train_rows,
        "eval_rows": result.eval_rows,
        "seconds": result.seconds,
        "tokens_per_second": result.tokens_per_second,
        "device": result.device,
        "bf16": result.bf16,
        "mlflow_run_id": result.mlflow_run_id,
        "tracking_uri": result.tracking_uri,
        "model": None
        if model is None
        else {
            "name": model.name,
            "version": model.version,
            "path": str(model.path),
            "aliases": list(model.aliases),
        },
    }


def _model_json(model: ModelRef) -> dict[str, Any]:
    path = str(model.path) if model.path is not None else None
    return {"name": model.name, "version": model.version, "path": path, "aliases": list(model.aliases)}
