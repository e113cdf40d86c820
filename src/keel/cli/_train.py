"""``keel train sft`` and ``keel train dpo``: fine-tune a local Hugging Face model (or
the demo model) on an exported dataset with TRL, log the run to MLflow and register the
trained model. ``--write-config`` writes the run as JSON for ``accelerate launch``
instead of training here.

Exit codes: 0 trained, 1 an error (bad input, missing extra ...), 130 interrupted (the
last checkpoint stays: continue with ``--resume --output-dir DIR``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from keel.cli._common import ConfigOption, load_settings_for_cli, print_json, reported_errors

train_app = typer.Typer(
    name="train",
    help="Fine-tune models (SFT, DPO) with TRL; runs tracked in MLflow, models registered there.",
    no_args_is_help=True,
)

EXIT_INTERRUPTED = 130


def register(app: typer.Typer) -> None:
    app.add_typer(train_app)


def _command(kind: str) -> Callable[..., None]:
    def command(
        dataset: Annotated[Path, typer.Argument(help="An exported dataset directory, or a JSONL file.")],
        base: Annotated[
            str, typer.Option("--base", help="Base model: a local Hugging Face directory, or demo.")
        ] = "demo",
        output_dir: Annotated[
            Path | None,
            typer.Option(help="Checkpoints and the trained model. Default: <data dir>/training/<name>."),
        ] = None,
        name: Annotated[str | None, typer.Option(help="Run name. Default: <kind>-<base>-<UTC time>.")] = None,
        max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps.")] = None,
        epochs: Annotated[float, typer.Option(help="Passes over the data (without --max-steps).")] = 1.0,
        lr: Annotated[
            float | None,
            typer.Option("--lr", help="Learning rate. Default: SFT 2e-5, DPO 5e-6; ×10 with LoRA."),
        ] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="Rows per device and step.")] = 8,
        grad_accum: Annotated[int, typer.Option(min=1, help="Gradient accumulation steps.")] = 1,
        max_length: Annotated[int, typer.Option(min=8, help="Tokens per row (longer ones are cut).")] = 512,
        beta: Annotated[float, typer.Option(help="DPO's β: how far from the base model it may move.")] = 0.1,
        lora: Annotated[
            str | None,
            typer.Option(
                help="Train a LoRA adapter (merged at the end): r=8,alpha=16,dropout=0.05,targets=..."
            ),
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed for data order and initialisation.")] = 0,
        save_steps: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps.")] = 50,
        eval_steps: Annotated[
            int | None, typer.Option(min=1, help="Evaluate every N steps (always at start and end).")
        ] = None,
        logging_steps: Annotated[int, typer.Option(min=1, help="Log metrics every N steps.")] = 5,
        resume: Annotated[
            bool, typer.Option(help="Continue from the last checkpoint in --output-dir.")
        ] = False,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
        bf16: Annotated[
            bool | None,
            typer.Option("--bf16/--no-bf16", help="bf16 mixed precision. Default: when the GPU has it."),
        ] = None,
        gradient_checkpointing: Annotated[
            bool, typer.Option(help="Recompute activations: less GPU memory, slower.")
        ] = False,
        threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for torch.")] = None,
        mlflow_uri: Annotated[
            str | None,
            typer.Option(
                envvar="MLFLOW_TRACKING_URI",
                help="MLflow tracking URI (env MLFLOW_TRACKING_URI). Default: sqlite:///<data dir>/mlflow.db",
            ),
        ] = None,
        experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "keel-training",
        register_model: Annotated[
            bool, typer.Option("--register/--no-register", help="Register the trained model in MLflow.")
        ] = True,
        model_name: Annotated[
            str | None, typer.Option(help="Registered model name. Default: the base model's directory name.")
        ] = None,
        alias: Annotated[
            list[str] | None, typer.Option(help="Point this alias (e.g. candidate) at the new version.")
        ] = None,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
        write_config: Annotated[
            Path | None,
            typer.Option(
                help="Write the run as JSON (for accelerate launch -m keel.training.launch) and stop."
            ),
        ] = None,
        config: ConfigOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        from keel.training import LoraSpec, TrainConfig, resolve_paths, run_training
        from keel.training._summary import result_json, summary_lines

        with reported_errors():
            settings = load_settings_for_cli(config)
            run = resolve_paths(
                TrainConfig(
                    kind=kind,  # type: ignore[arg-type]
                    base_model=base,
                    dataset=dataset,
                    home=settings.home,
                    output_dir=output_dir,
                    run_name=name,
                    max_steps=max_steps,
                    epochs=epochs,
                    learning_rate=lr,
                    batch_size=batch_size,
                    gradient_accumulation=grad_accum,
                    max_length=max_length,
                    beta=beta,
                    lora=LoraSpec.parse(lora) if lora is not None else None,
                    seed=seed,
                    save_steps=save_steps,
                    eval_steps=eval_steps,
                    logging_steps=logging_steps,
                    resume=resume,
                    device=device,  # type: ignore[arg-type]
                    bf16=bf16,
                    gradient_checkpointing=gradient_checkpointing,
                    threads=threads,
                    mlflow_uri=mlflow_uri,
                    experiment=experiment,
                    register=register_model,
                    model_name=model_name,
                    aliases=tuple(alias or ()),
                    progress=progress and not as_json,
                )
            )
            if write_config is not None:
                write_config.write_text(run.to_json() + "\n", "utf-8")
                typer.echo(f"wrote {write_config}; run it with:")
                typer.echo(f"  accelerate launch -m keel.training.launch --config {write_config}")
                return
            if not as_json:
                typer.echo(f"{kind.upper()} run {run.run_name}: {run.output_dir}", err=True)
            try:
                result = run_training(run)
            except KeyboardInterrupt:
                again = f"keel train {kind} {dataset} --resume --output-dir {run.output_dir}"
                typer.echo(f"interrupted; continue with: {again}", err=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None
        if as_json:
            print_json(result_json(result))
        else:
            for line in summary_lines(result):
                typer.echo(line)

    command.__doc__ = _HELP[kind]
    return command


_HELP = {
    "sft": "Supervised fine-tuning: learn the answers of an SFT dataset (loss on the answers only).",
    "dpo": "Direct preference optimisation: prefer each row's chosen answer over its rejected one.",
}

train_app.command("sft")(_command("sft"))
train_app.command("dpo")(_command("dpo"))
