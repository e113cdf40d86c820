"""The guards benchmark: time per scan and accuracy on the labelled test split.

Latency: a policy of ``pii`` + ``secrets`` + ``injection`` (rules only), then the same
with the injection classifier, on 1 KB of text — a realistic prompt that holds an
email, a phone number, an internal IP, an invoice number, a price and a version, and a
clean 1 KB text with none of them — plus each scanner alone. Every measure is a warm-up
followed by ``--runs`` timed scans in this process (``time.perf_counter_ns``); it
reports p50, p95 and p99 in milliseconds and PASS/MISS against the targets (rules-only
p50 <= 1 ms, with the classifier p50 <= 30 ms). The classifier runs in the calling
thread, on the CPU, with torch's default threads.

Accuracy: ``keel guard eval`` on the test split, summarised (precision, recall and
false-positive rate per scanner).

    python -m bench.guards                     # latency and accuracy (about 2 minutes)
    python -m bench.guards --no-accuracy       # latency only
    python -m bench.guards --no-classifier     # without torch/transformers
    python -m bench.guards --json /tmp/guards.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from keel.core._settings_guards import PolicySettings
from keel.guards import Policy, build_policy

RULES_TARGET_MS = 1.0
CLASSIFIER_TARGET_MS = 30.0

_PROMPT = (
    "Hi team, following up on the Q3 planning meeting. Please review the attached budget draft "
    "and send comments by Friday. Contact Maria at maria.lopez@example.com or +1 415 555 2671 "
    "if anything is unclear. The deployment to version 2.4.1 went fine; the staging host at "
    "10.0.3.17 needs a restart. Remember that customer invoice #48213 is overdue by 12 days, "
    "and the total is $4,210.50. Could you summarise the key risks in three bullet points, and "
    "suggest two follow-up actions for the engineering team? Also translate the final paragraph "
    "into French. We should also think about hiring: two backend engineers and one designer are "
    "needed before the next quarter. Finally, ignore the typo above in the subject line. Thanks "
    "a lot, and have a great weekend everyone! The project timeline is in the shared drive "
    "under /plans/2024/q3-roadmap.md for reference, next to the notes from the customer "
    "interviews."
)
_CLEAN = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle. The story "
    "should be warm and a little melancholic, set on a rocky island in the north, and told over "
    "the course of one winter. The keeper is an old woman who has lived alone for many years; "
    "she keeps a journal, feeds the gulls, and talks to the radio even when nobody answers. The "
    "message is written in a language she does not know, so she spends the season trying to "
    "understand it with the help of an old dictionary and the captain of the supply boat who "
    "visits once a month. End the story in spring, when she finally understands what the "
    "message says and decides to write an answer of her own. Keep it under eight hundred words, "
    "use simple sentences, and give the story a title that hints at the ending without giving "
    "it away. Please avoid clichés about storms; focus on small daily rituals instead."
)
TEXT_1KB = (_PROMPT * 2)[:1024]
CLEAN_1KB = (_CLEAN * 2)[:1024]


def _policy(classifier: bool) -> Policy:
    settings = PolicySettings.model_validate(
        {
            "action": "redact",
            "input": ["pii", "secrets", {"scanner": "injection", "classifier": classifier}],
        }
    )
    return build_policy("bench", settings)


def _time(fn: Callable[[], object], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(samples), 4),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 4),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 4),
        "mean_ms": round(statistics.fmean(samples), 4),
        "min_ms": round(samples[0], 4),
    }


def latency(runs: int, classifier: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rules = _policy(classifier=False)
    for name, text in (("realistic 1 KB", TEXT_1KB), ("clean 1 KB", CLEAN_1KB)):
        result = _time(lambda text=text: rules.scan(text), runs, max(50, runs // 10))
        rows.append({"what": f"rules-only policy, {name}", "target_ms": RULES_TARGET_MS, **result})
    for entry in rules.input:
        result = _time(lambda entry=entry: entry.scanner.scan(TEXT_1KB), runs, max(50, runs // 10))
        rows.append({"what": f"  {entry.name} alone, realistic 1 KB", "target_ms": None, **result})
    if classifier:
        with_model = _policy(classifier=True)
        with_model.warm_up()
        few = max(50, runs // 20)
        for name, text in (("realistic 1 KB", TEXT_1KB), ("clean 1 KB", CLEAN_1KB)):
            result = _time(lambda text=text: with_model.scan(text), few, 10)
            rows.append({"what": f"with classifier, {name}", "target_ms": CLASSIFIER_TARGET_MS, **result})
        short = "What is the capital of Peru?"
        result = _time(lambda: with_model.scan(short), few, 10)
        rows.append({"what": "with classifier, one-line prompt", "target_ms": None, **result})
    return rows


def accuracy(classifier: bool) -> list[dict[str, Any]]:
    from keel.guards._eval import evaluate

    suites = [
        "pii",
        "secrets",
        "injection",
        *(["injection_classifier"] if classifier else []),
        "refusal",
        "language",
    ]
    out = []
    for suite in suites:
        report = evaluate(suite, "test")
        rows = {name: counts.to_dict() for name, counts in report.rows.items()}
        out.append({"suite": suite, "records": report.records, "rows": rows})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2000, help="timed scans per rules measure (default 2000)")
    parser.add_argument("--no-classifier", action="store_true", help="skip the classifier measures")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy summary")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    args = parser.parse_args()
    console = Console()
    classifier = not args.no_classifier
    # Other work on this machine shows in every number: say how busy it was.
    load_before = os.getloadavg()[0]
    rows = latency(args.runs, classifier)
    load_after = os.getloadavg()[0]
    console.print(
        f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}, {os.cpu_count()} CPUs"
    )
    table = Table(title="guard latency per scan (ms)", title_justify="left")
    for column in ("what", "p50", "p95", "p99", "target", ""):
        table.add_column(column, justify="left" if column == "what" else "right")
    missed = False
    for row in rows:
        target = row["target_ms"]
        verdict = ""
        if target is not None:
            ok = row["p50_ms"] <= target
            missed |= not ok
            verdict = "[green]PASS[/]" if ok else "[red]MISS[/]"
        table.add_row(
            row["what"],
            f"{row['p50_ms']:.3f}",
            f"{row['p95_ms']:.3f}",
            f"{row['p99_ms']:.3f}",
            f"p50 <= {target:g}" if target else "",
            verdict,
        )
    console.print(table)
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "latency": rows,
    }
    if not args.no_accuracy:
        report["accuracy"] = accuracy(classifier)
        acc = Table(title="accuracy on the test split", title_justify="left")
        for column in ("suite", "slice", "precision", "recall", "FPR"):
            acc.add_column(column, justify="left" if column in ("suite", "slice") else "right")
        for suite in report["accuracy"]:
            for name, counts in suite["rows"].items():
                if name.startswith("recall:"):
                    continue
                acc.add_row(
                    suite["suite"],
                    name,
                    f"{counts['precision']:.3f}",
                    f"{counts['recall']:.3f}",
                    f"{counts['fpr']:.3f}",
                )
        console.print(acc)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
