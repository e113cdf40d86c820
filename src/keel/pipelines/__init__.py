"""Datasets from feedback: SFT and preference sets, versioned and content-hashed.

``export_dataset`` joins feedback with the logged requests and answers, redacts personal
data and secrets, de-duplicates, splits train/eval by content hash and writes a dataset
directory (``manifest.json``, ``train.jsonl``, ``eval.jsonl``); ``import_hh`` does the
same from HH-RLHF JSONL. ``load_preference_dataset`` / ``load_sft_dataset`` /
``load_dataset_dir`` read one back in TRL's conversational format (what the trainers
take). The layout is described in ``docs/feedback.md``.
"""

from keel.pipelines._export import ExportResult, export_dataset
from keel.pipelines._hh import conversation_text, hh_to_preference, parse_conversation, preference_to_hh
from keel.pipelines._import import import_hh
from keel.pipelines._layout import (
    MANIFEST,
    SCHEMA_VERSION,
    PreferenceDataset,
    SftDataset,
    load_dataset_dir,
    load_preference_dataset,
    load_sft_dataset,
    read_manifest,
    split_rows,
    write_dataset,
)
from keel.pipelines._schema import FORMATS, KINDS, Format, Kind, check_row

__all__ = [
    "FORMATS",
    "KINDS",
    "MANIFEST",
    "SCHEMA_VERSION",
    "ExportResult",
    "Format",
    "Kind",
    "PreferenceDataset",
    "SftDataset",
    "check_row",
    "conversation_text",
    "export_dataset",
    "hh_to_preference",
    "import_hh",
    "load_dataset_dir",
    "load_preference_dataset",
    "load_sft_dataset",
    "parse_conversation",
    "preference_to_hh",
    "read_manifest",
    "split_rows",
    "write_dataset",
]
