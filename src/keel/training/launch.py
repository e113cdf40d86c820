"""Entry point for ``accelerate launch`` (and ``torchrun``): every process reads the
same run from a JSON file and trains its share; transformers' Trainer and accelerate do
the distribution (DDP, FSDP or DeepSpeed, as ``accelerate config`` says). Only the main
process logs to MLflow, saves the model and registers it.

    keel train dpo DATASET --base /models/llama --lora r=16,alpha=32 --write-config run.json
    accelerate launch --num_processes 4 -m keel.training.launch --config run.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from keel.core import ConfigError, KeelError
from keel.training._config import TrainConfig
from keel.training._run import run_training
from keel.training._summary import result_json, summary_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keel.training.launch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--config", required=True, type=Path, help="the run as JSON (keel train ... --write-config)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the output directory's last checkpoint"
    )
    parser.add_argument("--json", type=Path, help="write the result as JSON here (main process)")
    args = parser.parse_args(argv)
    main_process = int(os.environ.get("RANK", "0")) == 0
    try:
        config = TrainConfig.from_json(args.config.read_text("utf-8"), str(args.config))
        if args.resume:
            config = dataclasses.replace(config, resume=True)
        result = run_training(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except (KeelError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if main_process:
        for line in summary_lines(result):
            print(line)
        if args.json is not None:
            args.json.write_text(json.dumps(result_json(result), indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
