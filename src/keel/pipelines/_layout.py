"""A dataset directory: how it is written (atomically, content-hashed) and read back.

    DIR/
      manifest.json   schema_version, id, kind, format, created_at, filters, seed,
                      eval_fraction, counts {train, eval, total}, sources, files {name:
                      {sha256, rows}} and what was dropped (duplicates, skipped, redacted)
      train.jsonl     one row a line (see ``_schema``), sorted by the row's content hash
      eval.jsonl

The id is ``sha256:`` + the SHA-256 of the two data files' hashes, so the same rows give
the same id whenever and wherever they are exported; ``created_at`` and the filters are
not part of it. The split is decided per row by a hash of its content and the seed, so a
row stays in its split when the dataset grows (no eval row leaks into a later train set).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel import __version__
from keel.core import InvalidRequest, NotFound
from keel.pipelines._hh import hh_to_preference
from keel.pipelines._schema import Format, Kind, check_row

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "eval")

Rows = list[dict[str, Any]]


def row_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(row).encode()).hexdigest()


def _canonical(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def split_rows(rows: Sequence[dict[str, Any]], *, eval_fraction: float, seed: int) -> tuple[Rows, Rows]:
    """(train, eval): a row goes to eval when the hash of its content and the seed falls
    under ``eval_fraction``. With two rows or more each split gets at least one (the rows
    whose hashes are nearest the threshold move), so a small set still has an eval split."""
    if not 0 <= eval_fraction < 1:
        raise InvalidRequest(f"eval_fraction must be in [0, 1), not {eval_fraction}", param="eval_fraction")
    ranked = sorted(((_rank(seed, row), row) for row in rows), key=lambda pair: pair[0])
    n_eval = sum(1 for rank, _ in ranked if rank < eval_fraction)
    if eval_fraction > 0 and len(ranked) >= 2:
        n_eval = min(max(n_eval, 1), len(ranked) - 1)
    evaluation = [row for _, row in ranked[:n_eval]]
    train = [row for _, row in ranked[n_eval:]]
    return _sorted(train), _sorted(evaluation)


def _rank(seed: int, row: Mapping[str, Any]) -> float:
    digest = hashlib.sha256(f"{seed}\x00{_canonical(row)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=row_hash)


def write_dataset(
    out: Path,
    *,
    kind: Kind,
    fmt: Format,
    train: Sequence[dict[str, Any]],
    evaluation: Sequence[dict[str, Any]],
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the dataset to ``out`` (which must not exist, or be empty) and return its
    manifest. Written in a temporary directory beside ``out`` and renamed into place, so
    a failure leaves nothing behind. ``details`` (filters, sources, counts of what was
    dropped ...) go into the manifest as they are."""
    if not train and not evaluation:
        raise InvalidRequest("the dataset would be empty: nothing to write")
    for row in (*train, *evaluation):
        check_row(row, kind, fmt)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidRequest(f"{out} already exists and is not an empty directory", param="out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files: dict[str, dict[str, Any]] = {}
        for split, rows in zip(SPLITS, (train, evaluation), strict=True):
            data = "".join(_canonical(row) + "\n" for row in rows).encode()
            (staging / f"{split}.jsonl").write_bytes(data)
            files[f"{split}.jsonl"] = {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(rows)}
        manifest: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "id": dataset_id(files),
            "kind": kind,
            "format": fmt,
            "created_at": datetime.now(UTC).isoformat(),
            "keel_version": __version__,
            "counts": {"train": len(train), "eval": len(evaluation), "total": len(train) + len(evaluation)},
            **details,
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above): os.replace needs it gone on every platform
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def dataset_id(files: Mapping[str, Mapping[str, Any]]) -> str:
    joined = "".join(f"{name}:{files[name]['sha256']}\n" for name in sorted(files))
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


# --- reading -----------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the dataset in directory ``path``."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise NotFound(f"no dataset at {path}: {MANIFEST} is missing")
    try:
        manifest = json.loads(file.read_text())
    except ValueError as exc:
        raise InvalidRequest(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise InvalidRequest(f"{file} is not a JSON object")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise InvalidRequest(
            f"{file}: schema_version {version!r} is not one this Keel reads (at most {SCHEMA_VERSION})"
        )
    return manifest


def load_rows(path: str | os.PathLike[str], kind: Kind) -> tuple[Rows, Rows]:
    """(train, eval) rows of a dataset of ``kind``, in TRL's conversational format (an HH
    dataset is converted), after checking each file's hash against the manifest."""
    manifest = read_manifest(path)
    if manifest.get("kind") != kind:
        raise InvalidRequest(f"{path} holds a {manifest.get('kind')!r} dataset, not a {kind!r} one")
    fmt: Format = "hh" if manifest.get("format") == "hh" else "trl"
    out: list[list[dict[str, Any]]] = []
    for split in SPLITS:
        name = f"{split}.jsonl"
        data = (Path(path) / name).read_bytes()
        expected = manifest.get("files", {}).get(name, {}).get("sha256")
        if expected != hashlib.sha256(data).hexdigest():
            raise InvalidRequest(f"{Path(path) / name} does not match its hash in the manifest (edited?)")
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(data.decode().splitlines(), start=1):
            try:
                row = json.loads(line)
                check_row(row, kind, fmt)
            except (ValueError, InvalidRequest) as exc:
                message = exc.message if isinstance(exc, InvalidRequest) else str(exc)
                raise InvalidRequest(f"{Path(path) / name}, line {number}: {message}") from None
            rows.append(hh_to_preference(row) if fmt == "hh" else row)
        out.append(rows)
    return out[0], out[1]


def load_preference_dataset(path: str | os.PathLike[str]) -> tuple[Rows, Rows]:
    """(train, eval) rows of a preference dataset: ``{"prompt": [messages], "chosen":
    [assistant message], "rejected": [assistant message]}`` (TRL's conversational format,
    what ``DPOTrainer`` takes)."""
    return load_rows(path, "preference")


def load_sft_dataset(path: str | os.PathLike[str]) -> tuple[Rows, Rows]:
    """(train, eval) rows of an SFT dataset: ``{"messages": [...]}`` ending with the
    assistant's answer (what ``SFTTrainer`` takes)."""
    return load_rows(path, "sft")


@dataclass(frozen=True, slots=True)
class SftDataset:
    path: Path
    manifest: dict[str, Any]
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]

    @property
    def id(self) -> str:
        return str(self.manifest["id"])


@dataclass(frozen=True, slots=True)
class PreferenceDataset:
    path: Path
    manifest: dict[str, Any]
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]

    @property
    def id(self) -> str:
        return str(self.manifest["id"])


def load_dataset_dir(path: str | os.PathLike[str]) -> PreferenceDataset | SftDataset:
    """The dataset in ``path``, whichever kind it is (rows in TRL's conversational format)."""
    manifest = read_manifest(path)
    kind = manifest.get("kind")
    if kind == "sft":
        return SftDataset(Path(path), manifest, *load_rows(path, "sft"))
    if kind == "preference":
        return PreferenceDataset(Path(path), manifest, *load_rows(path, "preference"))
    raise InvalidRequest(f"{Path(path) / MANIFEST}: unknown dataset kind {kind!r}")
