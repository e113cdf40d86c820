"""Synthetic training data from the demo model's FAQ, written as ``keel data export``
writes a dataset (``keel.pipelines.write_dataset``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from keel import pipelines
from keel.providers import demo_examples

Row = dict[str, Any]


def preference_rows(seed: int = 0) -> list[Row]:
    """One row per question variant of half the FAQ entries: chosen is its FAQ answer,
    rejected the answer of an entry from the other half (wrong, but fluent and on
    topic). An answer is never both chosen and rejected, as when users reject what the
    model says about some topics and accept what it says about others."""
    examples = demo_examples()
    asked, wrong = examples[::2], examples[1::2]
    rng = random.Random(seed)
    rows = []
    for example in asked:
        for question in (example.question, *example.paraphrases):
            rows.append(
                {
                    "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": example.answer}],
                    "rejected": [{"role": "assistant", "content": rng.choice(wrong).answer}],
                }
            )
    rng.shuffle(rows)
    return rows


def sft_rows() -> list[Row]:
    """Answers the demo model has never seen (the FAQ answer, reworded), so the loss
    starts high and has somewhere to go."""
    rows = []
    for example in demo_examples():
        answer = "In short: " + example.answer.replace("Keel", "the Keel platform")
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": example.question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return rows


def write_dataset(folder: Path, train: list[Row], evals: list[Row], kind: str = "preference") -> Path:
    """An exported dataset directory (manifest, hashes) as ``keel data export`` writes."""
    pipelines.write_dataset(folder, kind=kind, fmt="trl", train=train, evaluation=evals, details={})  # type: ignore[arg-type]
    return folder


def preference_dataset(folder: Path, eval_rows: int = 24, seed: int = 0) -> Path:
    rows = preference_rows(seed)
    return write_dataset(folder, rows[eval_rows:], rows[:eval_rows])


def sft_dataset(folder: Path, eval_rows: int = 8) -> Path:
    rows = sft_rows()
    return write_dataset(folder, rows[eval_rows:], rows[:eval_rows], kind="sft")
