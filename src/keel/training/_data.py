"""Reading a dataset for training: rows in TRL's conversational format, checked, and
the dataset's content hash for lineage.

An exported dataset (a directory with ``manifest.json``, see ``keel data export``) is
read by ``keel.pipelines``, which checks its files against the manifest; its hash is
the manifest's ``id``. Hand-made data is read too: a directory with ``train.jsonl`` and
an optional ``eval.jsonl`` but no manifest, or a single JSONL file (all rows train, no
eval split); its hash is the SHA-256 of its files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.core import InvalidRequest, NotFound
from keel.pipelines import MANIFEST, load_preference_dataset, load_sft_dataset, read_manifest

Row = dict[str, Any]


@dataclass(frozen=True)
class TrainingData:
    """Rows ready for a TRL trainer, and where they came from."""

    train: list[Row]
    eval: list[Row]
    dataset_hash: str
    path: Path


def load_training_data(kind: str, path: Path) -> TrainingData:
    """The dataset at ``path`` for an ``sft`` or ``dpo`` run; InvalidRequest when it is
    missing, empty or malformed."""
    path = Path(path).expanduser()
    if not path.exists():
        raise NotFound(f"dataset {path} does not exist")
    if _is_export(path):
        loader = load_preference_dataset if kind == "dpo" else load_sft_dataset
        train_rows, eval_rows = loader(path)
    else:
        train_rows, eval_rows = _plain_loader(path)
    normalise = _preference_row if kind == "dpo" else _sft_row
    train = [normalise(row, f"{path} train row {i + 1}") for i, row in enumerate(train_rows)]
    evals = [normalise(row, f"{path} eval row {i + 1}") for i, row in enumerate(eval_rows)]
    if not train:
        raise InvalidRequest(f"dataset {path} has no training rows: nothing to train on")
    return TrainingData(train, evals, dataset_hash(path), path)


def dataset_hash(path: Path) -> str:
    """An exported dataset's id (the content hash in its manifest); the SHA-256 of the
    files of hand-made data."""
    if _is_export(path):
        manifest = read_manifest(path)
        found = manifest.get("id") or manifest.get("hash")
        if found:
            return str(found)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*.jsonl") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(f"{file.name}\n".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def _is_export(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def _plain_loader(path: Path) -> tuple[list[Row], list[Row]]:
    if path.is_dir():
        train_file = path / "train.jsonl"
        if not train_file.is_file():
            raise InvalidRequest(f"dataset {path}: no train.jsonl in the directory")
        eval_file = path / "eval.jsonl"
        return _read_jsonl(train_file), _read_jsonl(eval_file) if eval_file.is_file() else []
    return _read_jsonl(path), []


def _read_jsonl(path: Path) -> list[Row]:
    rows = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidRequest(f"{path} line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise InvalidRequest(f"{path} line {number}: expected a JSON object")
        rows.append(row)
    return rows


def _messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        # TRL's "standard" (non-conversational) format: plain text. Kept as one turn so
        # every row of a dataset has the same shape.
        role = "user" if field == "prompt" else "assistant"
        value = [{"role": role, "content": value}]
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"{where}: {field} must be a non-empty list of messages")
    messages = []
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise InvalidRequest(f"{where}: {field} has a message without text content")
        messages.append({"role": str(message.get("role", "user")), "content": message["content"]})
    return messages


def _preference_row(row: Row, where: str) -> Row:
    for key in ("prompt", "chosen", "rejected"):
        if key not in row:
            raise InvalidRequest(f"{where}: missing {key!r} (expected prompt, chosen, rejected)")
    prompt = _messages(row["prompt"], where, "prompt")
    chosen = _messages(row["chosen"], where, "chosen")
    rejected = _messages(row["rejected"], where, "rejected")
    if chosen == rejected:
        raise InvalidRequest(f"{where}: chosen and rejected are identical")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _sft_row(row: Row, where: str) -> Row:
    if "messages" in row:
        messages = _messages(row["messages"], where, "messages")
    elif "prompt" in row and "completion" in row:
        prompt = _messages(row["prompt"], where, "prompt")
        messages = [*prompt, *_messages(row["completion"], where, "completion")]
    else:
        raise InvalidRequest(f"{where}: expected messages (or prompt and completion)")
    if messages[-1]["role"] != "assistant" or len(messages) < 2:
        raise InvalidRequest(f"{where}: the last message must be the assistant's answer to a prompt")
    # As prompt and completion, TRL computes the loss on the answer only, not on
    # learning to repeat the question.
    return {"prompt": messages[:-1], "completion": messages[-1:]}
