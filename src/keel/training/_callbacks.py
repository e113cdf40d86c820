"""Trainer callbacks: a Rich progress bar, metrics to MLflow, and the last values of
each metric for the run's result. Imports transformers: load this module lazily."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from keel.training._tracking import TrackingRun, numeric_metrics

# Shown next to the bar when the trainer logs them (DPO's reward accuracy says more
# than its loss).
_SHOWN = ("loss", "rewards/accuracies", "eval_loss", "eval_rewards/accuracies")


class RichProgress(TrainerCallback):
    """One bar on stderr over the run's optimizer steps, with the latest loss (and
    reward accuracy for DPO). Only the main process draws it."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._shown: dict[str, float] = {}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._progress = Progress(
            TextColumn(self.label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[shown]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._progress.start()
        # A resumed run starts at its checkpoint's step.
        self._task = self._progress.add_task(
            "train", total=state.max_steps, completed=state.global_step, shown=""
        )

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=state.global_step)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self._progress is None or self._task is None or not logs:
            return
        for key in _SHOWN:
            if isinstance(logs.get(key), int | float):
                self._shown[key] = float(logs[key])
        shown = "  ".join(f"{key.removeprefix('rewards/')} {value:.4f}" for key, value in self._shown.items())
        self._progress.update(self._task, shown=shown)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class MetricsCallback(TrainerCallback):
    """Keeps the last logged value of each metric (train and eval separately) and
    sends every log record to MLflow at its step, from the main process only."""

    def __init__(self, run: TrackingRun | None) -> None:
        self.run = run
        self.train: dict[str, float] = {}
        self.eval: dict[str, float] = {}
        self.summary: dict[str, float] = {}

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # The last step is always logged, so a run's final training metrics are its
        # own and not those of up to ``logging_steps`` steps before.
        if state.global_step >= state.max_steps:
            control.should_log = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        metrics = numeric_metrics(logs)
        if any(key.startswith("eval_") for key in metrics):
            self.eval.update({k: v for k, v in metrics.items() if k.startswith("eval_")})
        elif "train_runtime" in metrics:
            self.summary.update(metrics)
        else:
            self.train.update(metrics)
        if self.run is not None:
            self.run.log_metrics(metrics, step=state.global_step)
