"""``python -m keel.guards._datagen [--seed N] [--out DIR]``: rebuild the labelled sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from keel.guards._datagen import SPLITS, _injection, _output, _pii, _secrets, write_jsonl

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "guards"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    builders = {
        "pii": _pii.build,
        "secrets": _secrets.build,
        "injection": _injection.build,
        "refusal": _output.build_refusal,
        "language": _output.build_language,
    }
    for name, build in builders.items():
        for split in SPLITS:
            records = build(split, args.seed)
            if records:
                count = write_jsonl(args.out / f"{name}.{split}.jsonl", records)
                print(f"{name}.{split}: {count}")


if __name__ == "__main__":
    main()
