"""A short DPO and/or SFT run on the GPU path (LoRA + bf16 by default) that prints the
throughput, for ``docs/benchmarks.md``:

    python -m keel.training.bench_gpu                       # demo model, DPO then SFT
    python -m keel.training.bench_gpu --base /models/qwen2.5-0.5b-instruct --steps 50
    python -m keel.training.bench_gpu --device cpu --steps 3 --kind sft   # smoke test

The data is synthetic (the demo FAQ as preference pairs and as SFT conversations, so
any base model with a chat template works), the MLflow store and output go to a
temporary data directory (``--home`` keeps them), nothing is registered. Tokens/s
counts the tokens the trainer fed the model (prompt and answers, all ranks) per second
of training, evaluation excluded.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from keel.core import ConfigError, KeelError
from keel.providers import demo_examples
from keel.training._base_model import import_training
from keel.training._config import LoraSpec, TrainConfig, TrainKind, TrainResult
from keel.training._run import run_training


def write_bench_data(folder: Path, repeat: int = 4) -> tuple[Path, Path]:
    """(preference file, SFT file): the FAQ repeated ``repeat`` times, so a run of a
    few dozen steps does not end its epoch early."""
    folder.mkdir(parents=True, exist_ok=True)
    examples = demo_examples()
    rng = random.Random(0)
    preference, sft = [], []
    for _ in range(repeat):
        for example in examples:
            question = rng.choice((example.question, *example.paraphrases))
            wrong = rng.choice([e for e in examples if e is not example]).answer
            prompt = [{"role": "user", "content": question}]
            preference.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": example.answer}],
                    "rejected": [{"role": "assistant", "content": wrong}],
                }
            )
            sft.append({"messages": [*prompt, {"role": "assistant", "content": example.answer}]})
    files = folder / "preference.jsonl", folder / "sft.jsonl"
    for file, rows in zip(files, (preference, sft), strict=True):
        file.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return files


def bench(args: argparse.Namespace, home: Path) -> list[dict[str, Any]]:
    (torch,) = import_training("torch")
    preference, sft = write_bench_data(home / "bench-data")
    kinds: list[TrainKind] = ["dpo", "sft"] if args.kind == "both" else [args.kind]
    rows = []
    for kind in kinds:
        config = TrainConfig(
            kind=kind,
            base_model=args.base,
            dataset=preference if kind == "dpo" else sft,
            home=home,
            output_dir=home / "runs" / kind,
            max_steps=args.steps,
            batch_size=args.batch_size,
            max_length=args.max_length,
            lora=None if args.no_lora else LoraSpec.parse(args.lora),
            device=args.device,
            bf16=args.bf16,
            gradient_checkpointing=args.gradient_checkpointing,
            logging_steps=max(1, args.steps // 5),
            save_steps=10**9,  # no checkpoints: they are not what is measured
            eval_at_start=False,
            register=False,
            experiment="keel-bench",
            progress=not args.quiet,
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        result = run_training(config)
        rows.append(_row(result, args, torch))
    return rows


def _row(result: TrainResult, args: argparse.Namespace, torch: Any) -> dict[str, Any]:
    runtime = float(result.extra.get("train_summary", {}).get("train_runtime", 0.0))
    gpu = torch.cuda.get_device_name(0) if result.device == "cuda" else "cpu"
    peak = torch.cuda.max_memory_allocated() / 2**30 if result.device == "cuda" else None
    return {
        "kind": result.kind,
        "base_model": str(result.base_model_dir),
        "device": gpu,
        "precision": "bf16" if result.bf16 else "fp32",
        "lora": "none" if args.no_lora else str(LoraSpec.parse(args.lora)),
        "steps": result.global_step,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "train_seconds": round(runtime, 2),
        "steps_per_second": round(result.global_step / runtime, 2) if runtime else None,
        "tokens_per_second": result.tokens_per_second,
        "peak_gpu_memory_gib": round(peak, 2) if peak is not None else None,
        "final_loss": result.train_metrics.get("loss"),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keel.training.bench_gpu", description="Training throughput."
    )
    parser.add_argument("--base", default="demo", help="base model directory, or demo (default)")
    parser.add_argument("--kind", choices=("dpo", "sft", "both"), default="both")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--lora", default="r=16,alpha=32,dropout=0.05", help="LoRA settings (default r=16)")
    parser.add_argument("--no-lora", action="store_true", help="full fine-tuning instead of LoRA")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cuda")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--home", type=Path, help="keep the runs and MLflow store here (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="keel-bench-") as scratch:
            home = args.home or Path(scratch)
            rows = bench(args, home)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except KeelError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print("| kind | device | precision | LoRA | batch × length | steps/s | tokens/s | peak GPU GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        peak = row["peak_gpu_memory_gib"] if row["peak_gpu_memory_gib"] is not None else "-"
        print(
            f"| {row['kind']} | {row['device']} | {row['precision']} | {row['lora']} | "
            f"{row['batch_size']} × {row['max_length']} | {row['steps_per_second']} | "
            f"{row['tokens_per_second']} | {peak} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
