"""Measuring scanners on the labelled sets in ``keel/data/guards``.

Span tasks (``pii``, ``secrets``): a found span counts as right when a labelled span of
the same entity overlaps it by at least half (intersection over union); precision,
recall and F1 per entity, the share of texts without an entity in which one was still
reported (false-positive rate), and which entity was mistaken for which.

Classification tasks (``injection``, ``refusal``): precision, recall, F1 and the
false-positive rate on benign texts, overall and on the look-alike ("hard") ones, and
recall per attack category. ``language``: accuracy per language.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.core import InvalidRequest, NotFound
from keel.guards._language import detect_language
from keel.guards._registry import build_scanner
from keel.guards._result import Scanner

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "guards"
SPLITS = ("train", "dev", "test")
STRUCTURED = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS")


@dataclass(frozen=True)
class Suite:
    name: str
    dataset: str
    kind: str  # "spans" | "classes" | "language"
    scanner: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    positive: frozenset[str] = frozenset()
    needs_model: bool = False


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("pii", "pii", "spans", "pii"),
        Suite("secrets", "secrets", "spans", "secrets"),
        Suite(
            "injection", "injection", "classes", "injection", positive=frozenset({"injection", "jailbreak"})
        ),
        Suite(
            "injection_classifier",
            "injection",
            "classes",
            "injection",
            {"classifier": True},
            frozenset({"injection", "jailbreak"}),
            needs_model=True,
        ),
        Suite("refusal", "refusal", "classes", "refusal", positive=frozenset({"refusal"})),
        Suite("language", "language", "language"),
    )
}


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    # Span tasks: the share of texts without the entity in which it was still found.
    text_fpr: float | None = None

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "fpr": round(self.fpr if self.text_fpr is None else self.text_fpr, 4),
        }


@dataclass
class Report:
    suite: str
    split: str
    kind: str
    records: int
    # Rows of the main table: an entity, a category or a slice, with its counts.
    rows: dict[str, Counts] = field(default_factory=dict)
    # (expected, found) -> how often: entity mix-ups, or the confusion matrix.
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Ids of misclassified records (a few of each kind), for looking at them.
    errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "split": self.split,
            "kind": self.kind,
            "records": self.records,
            "rows": {name: counts.to_dict() for name, counts in self.rows.items()},
            "confusion": [
                {"expected": e, "found": f, "count": n} for (e, f), n in sorted(self.confusion.items())
            ],
            "errors": self.errors,
            "notes": self.notes,
        }


def load_split(dataset: str, split: str, data_dir: Path | None = None) -> list[dict[str, Any]]:
    if split not in SPLITS:
        raise InvalidRequest(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    path = (data_dir or DATA_DIR) / f"{dataset}.{split}.jsonl"
    if not path.is_file():
        raise NotFound(f"no {split} split of the {dataset} set at {path}")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def suite_names() -> list[str]:
    return list(SUITES)


def evaluate(
    suite_name: str,
    split: str = "test",
    *,
    data_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Run one suite over one split; ``progress`` is called with the records done so far."""
    try:
        suite = SUITES[suite_name]
    except KeyError:
        raise NotFound(f"unknown scanner suite {suite_name!r} (known: {', '.join(SUITES)})") from None
    records = load_split(suite.dataset, split, data_dir)
    if suite.kind == "language":
        return _language(suite, split, records, progress)
    scanner = build_scanner(suite.scanner or suite.name, suite.settings)
    if suite.kind == "spans":
        return _spans(suite, split, records, scanner, progress)
    return _classes(suite, split, records, scanner, progress)


def _ticks(records: list[dict[str, Any]], progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    for i, record in enumerate(records, 1):
        yield record
        if progress is not None and (i % 25 == 0 or i == len(records)):
            progress(i)


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


def _spans(
    suite: Suite,
    split: str,
    records: list[dict[str, Any]],
    scanner: Scanner,
    progress: Callable[[int], None] | None,
) -> Report:
    report = Report(suite.name, split, "spans", len(records))
    rows: dict[str, Counts] = defaultdict(Counts)
    doc_rows: dict[str, Counts] = defaultdict(Counts)
    errors: dict[str, list[str]] = defaultdict(list)
    entities: set[str] = set()
    found_all = []
    for record in _ticks(records, progress):
        gold = [(s["entity"], s["start"], s["end"]) for s in record["spans"]]
        found = [(s.entity, s.start, s.end) for s in scanner.scan(record["text"]).spans]
        found_all.append((record, gold, found))
        entities |= {g[0] for g in gold} | {f[0] for f in found}
    for record, gold, found in found_all:
        unmatched = list(gold)
        for entity, start, end in found:
            match = next((g for g in unmatched if g[0] == entity and _iou((start, end), g[1:]) >= 0.5), None)
            if match is not None:
                unmatched.remove(match)
                rows[entity].tp += 1
                continue
            rows[entity].fp += 1
            other = next((g for g in gold if _iou((start, end), g[1:]) >= 0.5), None)
            report.confusion[(other[0] if other else "(none)", entity)] += 1
            if len(errors[f"fp:{entity}"]) < 5:
                errors[f"fp:{entity}"].append(record["id"])
        for entity, _, _ in unmatched:
            rows[entity].fn += 1
            if not any(f[0] == entity for f in found):
                report.confusion[(entity, "(none)")] += 1
            if len(errors[f"fn:{entity}"]) < 5:
                errors[f"fn:{entity}"].append(record["id"])
        # Text-level false positives: a text without the entity in which it was found.
        for entity in entities:
            has_gold = any(g[0] == entity for g in gold)
            has_found = any(f[0] == entity for f in found)
            if not has_gold:
                if has_found:
                    doc_rows[entity].fp += 1
                else:
                    doc_rows[entity].tn += 1
    for entity in sorted(entities):
        texts = doc_rows[entity]
        text_fpr = texts.fp / (texts.fp + texts.tn) if texts.fp + texts.tn else 0.0
        report.rows[entity] = Counts(rows[entity].tp, rows[entity].fp, rows[entity].fn, text_fpr=text_fpr)
    structured = [e for e in STRUCTURED if e in report.rows]
    if structured:
        total = Counts()
        for e in structured:
            total.tp += report.rows[e].tp
            total.fp += report.rows[e].fp
            total.fn += report.rows[e].fn
        # A text counts once: without any structured entity, was one found?
        total.text_fpr = max(report.rows[e].text_fpr or 0.0 for e in structured)
        report.rows["STRUCTURED (micro)"] = total
    report.errors = dict(errors)
    return report


def _classes(
    suite: Suite,
    split: str,
    records: list[dict[str, Any]],
    scanner: Scanner,
    progress: Callable[[int], None] | None,
) -> Report:
    report = Report(suite.name, split, "classes", len(records))
    overall, hard, normal = Counts(), Counts(), Counts()
    by_category: dict[str, Counts] = defaultdict(Counts)
    errors: dict[str, list[str]] = defaultdict(list)
    verdicts = _violations(scanner, records, progress)
    for record, flagged in zip(records, verdicts, strict=True):
        positive = record["label"] in suite.positive
        report.confusion[(record["label"], "flagged" if flagged else "passed")] += 1
        if positive:
            category = (
                record.get("category", record["label"]).split("+")[-1]
                if "+" in record.get("category", "")
                else record.get("category", record["label"])
            )
            for row in (overall, by_category[category], by_category[f"label:{record['label']}"]):
                if flagged:
                    row.tp += 1
                else:
                    row.fn += 1
            if not flagged and len(errors["missed"]) < 10:
                errors["missed"].append(record["id"])
        else:
            slice_ = hard if record.get("hard") else normal
            for row in (overall, slice_):
                if flagged:
                    row.fp += 1
                else:
                    row.tn += 1
            if flagged and len(errors["false_alarms"]) < 10:
                errors["false_alarms"].append(record["id"])
    report.rows["all"] = overall
    report.rows["benign look-alikes (FPR)"] = hard
    report.rows["benign normal (FPR)"] = normal
    for name in sorted(by_category):
        report.rows[f"recall: {name}"] = by_category[name]
    report.errors = dict(errors)
    return report


def _violations(
    scanner: Scanner, records: list[dict[str, Any]], progress: Callable[[int], None] | None
) -> list[bool]:
    """Each record's verdict; scanners that take texts in batches (the classifier) get them so."""
    many = getattr(scanner, "scan_many", None)
    if many is None:
        return [scanner.scan(record["text"]).violation for record in _ticks(records, progress)]
    out: list[bool] = []
    for start in range(0, len(records), 64):
        batch = [r["text"] for r in records[start : start + 64]]
        out += [result.violation for result in many(batch)]
        if progress is not None:
            progress(len(out))
    return out


def _language(
    suite: Suite, split: str, records: list[dict[str, Any]], progress: Callable[[int], None] | None
) -> Report:
    report = Report(suite.name, split, "language", len(records))
    rows: dict[str, Counts] = defaultdict(Counts)
    for record in _ticks(records, progress):
        found, _ = detect_language(record["text"])
        expected = record["language"]
        report.confusion[(expected, found or "(undecided)")] += 1
        if found == expected:
            rows[expected].tp += 1
        else:
            rows[expected].fn += 1
            if found is not None:
                rows[found].fp += 1
    # A language's true negatives: texts neither in it nor taken for it.
    for language, counts in rows.items():
        counts.tn = sum(
            n
            for (expected, found), n in report.confusion.items()
            if expected != language and found != language
        )
    report.rows = dict(sorted(rows.items()))
    return report
