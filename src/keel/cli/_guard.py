"""``keel guard``: scan text with a guard policy, and measure the scanners on the
labelled sets; ``keel redteam``: send the built-in attack set through a gateway."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from keel.cli._common import ConfigOption, load_settings_for_cli, reported_errors
from keel.core import InvalidRequest, MissingPrerequisite, NotFound
from keel.core._settings_guards import PolicySettings, ScannerSettings

guard_app = typer.Typer(
    name="guard",
    help="Guardrails: scan text with a policy, measure the scanners on labelled data.",
    no_args_is_help=True,
)

redteam_app = typer.Typer(
    name="redteam",
    help="Red-team a model behind the gateway with Keel's offline attack set.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def scan(
    source: Annotated[
        str, typer.Argument(help="A text file to scan, or - for standard input.", show_default=True)
    ] = "-",
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy", "-p", help="A policy from keel.yaml (default: its default_policy, else Keel's)."
        ),
    ] = None,
    scanner: Annotated[
        list[str] | None,
        typer.Option(
            "--scanner", "-s", help="Scan with this scanner alone (repeatable) instead of a policy."
        ),
    ] = None,
    stage: Annotated[
        str, typer.Option("--stage", help="input or output: which of the policy's lists runs.")
    ] = "input",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Scan a file or standard input: every scanner's verdict, the decision, and the
    text as the policy would pass it on (redacted where it redacts)."""
    from keel.guards import Policy, build_policy, builtin_policy, ensure_text

    with reported_errors():
        if stage not in ("input", "output"):
            raise InvalidRequest(f"--stage must be input or output, not {stage!r}")
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        text = ensure_text(data, what="stdin" if source == "-" else source)
        chosen: Policy
        if scanner:
            entries = [ScannerSettings(scanner=name) for name in scanner]
            chosen = build_policy("cli", PolicySettings(action="redact", input=entries, output=entries))
        else:
            settings = load_settings_for_cli(config).guards
            name = policy or settings.default_policy
            if name is None:
                chosen = builtin_policy()
            elif name not in settings.policies:
                known = ", ".join(sorted(settings.policies)) or "none"
                raise NotFound(f"unknown guard policy {name!r} (known: {known})")
            else:
                chosen = build_policy(name, settings.policies[name])
        outcome = chosen.scan(text, stage="input" if stage == "input" else "output")
    if as_json:
        typer.echo(json.dumps({**outcome.to_dict(), "text": outcome.text}, ensure_ascii=False))
        return
    console = Console()
    table = Table(title=f"policy {escape(chosen.name)} · {stage}", title_justify="left")
    for column in ("scanner", "verdict", "score", "found"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for result in outcome.results:
        colour = {"pass": "green", "flag": "yellow", "block": "red"}[result.verdict]
        table.add_row(
            escape(result.scanner),
            f"[{colour}]{result.verdict}[/]",
            f"{result.score:.2f}",
            escape(result.reason),
        )
    console.print(table)
    console.print(f"decision: [bold]{outcome.decision}[/]")
    if outcome.decision == "block":
        console.print(escape(outcome.error().message))
    elif outcome.decision == "redact":
        console.rule("redacted text")
        console.print(escape(outcome.text), highlight=False, soft_wrap=True)


def evaluate(
    split: Annotated[str, typer.Option("--split", help="train, dev or test.")] = "test",
    scanner: Annotated[
        list[str] | None,
        typer.Option("--scanner", "-s", help="Only this suite (repeatable): pii, secrets, injection, ..."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Labelled sets to use instead of Keel's own.", file_okay=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Measure the scanners on a labelled split: precision, recall, F1 and false-positive
    rate per scanner and entity, with what was mistaken for what."""
    from keel.guards._eval import SUITES, Report
    from keel.guards._eval import evaluate as run_suite

    with reported_errors():
        names = scanner or list(SUITES)
        unknown = [n for n in names if n not in SUITES]
        if unknown:
            raise NotFound(f"unknown scanner suite {unknown[0]!r} (known: {', '.join(SUITES)})")
        reports: list[Report] = []
        skipped: list[str] = []
        console = Console(stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        ) as progress:
            for name in names:
                if SUITES[name].needs_model and scanner is None and not _model_available():
                    skipped.append(f"{name}: needs keel[local] (torch, transformers)")
                    continue
                if scanner is None and not _has_split(SUITES[name].dataset, split, data_dir):
                    skipped.append(f"{name}: no {split} split")
                    continue
                task = progress.add_task(f"{name} ({split})", total=None)

                def advance(done: int, task: Any = task) -> None:
                    progress.update(task, completed=done)

                reports.append(run_suite(name, split, data_dir=data_dir, progress=advance))
                progress.remove_task(task)
    if as_json:
        typer.echo(
            json.dumps({"split": split, "reports": [r.to_dict() for r in reports], "skipped": skipped})
        )
        return
    out = Console()
    for report in reports:
        _print_report(out, report)
    for line in skipped:
        out.print(f"[yellow]skipped[/] {escape(line)}")


def _has_split(dataset: str, split: str, data_dir: Path | None) -> bool:
    from keel.guards._eval import DATA_DIR

    return ((data_dir or DATA_DIR) / f"{dataset}.{split}.jsonl").is_file()


def _model_available() -> bool:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _print_report(console: Console, report: Any) -> None:
    title = f"{report.suite} · {report.split} · {report.records} texts"
    table = Table(title=title, title_justify="left")
    first = {"spans": "entity", "classes": "slice", "language": "language"}[report.kind]
    table.add_column(first)
    for column in ("precision", "recall", "F1", "FPR", "tp", "fp", "fn"):
        table.add_column(column, justify="right")
    for name, counts in report.rows.items():
        fpr = (
            (counts.fpr if counts.text_fpr is None else counts.text_fpr)
            if report.kind != "language"
            else None
        )
        show_pr = not name.startswith("benign")
        table.add_row(
            escape(name),
            f"{counts.precision:.3f}" if show_pr else "",
            f"{counts.recall:.3f}" if show_pr else "",
            f"{counts.f1:.3f}" if show_pr else "",
            f"{fpr:.3f}"
            if fpr is not None and (report.kind == "spans" or name.startswith(("all", "benign")))
            else "",
            str(counts.tp),
            str(counts.fp),
            str(counts.fn),
        )
    console.print(table)
    mixups = [(e, f, n) for (e, f), n in report.confusion.most_common(8) if e != f]
    if mixups and report.kind != "classes":
        console.print(
            "  confusions: " + ", ".join(f"{escape(e)} → {escape(f)} x{n}" for e, f, n in mixups),
            highlight=False,
        )
    elif report.kind == "classes":
        console.print(
            "  confusion: "
            + ", ".join(f"{escape(e)}→{escape(f)} {n}" for (e, f), n in sorted(report.confusion.items())),
            highlight=False,
        )


def redteam_run(
    target: Annotated[str, typer.Option("--target", "-t", help="The model (route) to attack.")],
    url: Annotated[str, typer.Option("--url", help="The gateway (with or without /v1).")] = (
        "http://127.0.0.1:4000"
    ),
    key: Annotated[
        str | None,
        typer.Option(
            "--key", help="API key (default: $KEEL_API_KEY, else $OPENAI_API_KEY).", show_default=False
        ),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            "-c",
            help="Only this category (repeatable): injection, jailbreak, encoding, pii_exfiltration, "
            "system_prompt_extraction.",
        ),
    ] = None,
    attack_id: Annotated[
        list[str] | None, typer.Option("--attack", help="Only this attack id (repeatable).")
    ] = None,
    attacks_file: Annotated[
        Path | None,
        typer.Option("--attacks", help="A JSONL attack set to use instead of Keel's own.", dir_okay=False),
    ] = None,
    system_prompt: Annotated[
        str | None,
        typer.Option(
            "--system-prompt",
            help="The system prompt to defend (a canary is planted where {canary} stands, else "
            "appended; a fictitious customer record is added for the PII attacks).",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Attacks in flight.")] = 4,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per attack.")] = 60.0,
    fail_on_success: Annotated[
        bool, typer.Option("--fail-on-success", help="Exit 1 when any attack got through.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Send the attack set (injection, jailbreak templates, encoded instructions, PII
    exfiltration, system-prompt extraction) to TARGET through the gateway and report, by
    category, what Keel blocked, what the model answered safely and what got through."""
    from keel.guards._redteam import (
        DEFAULT_SYSTEM_PROMPT,
        AttackResult,
        RedteamReport,
        Target,
        load_attacks,
        run_attacks,
        select_attacks,
    )

    with reported_errors():
        attacks = select_attacks(load_attacks(attacks_file), category, attack_id)
        if not attacks:
            raise InvalidRequest("no attack matches the chosen categories and ids")
        api_key = key or os.environ.get("KEEL_API_KEY") or os.environ.get("OPENAI_API_KEY")
        defended = Target(instructions=system_prompt or DEFAULT_SYSTEM_PROMPT)
        console = Console(stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[through]} through"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        ) as progress:
            task = progress.add_task(f"attacking {escape(target)}", total=len(attacks), through=0)
            through = 0

            def advance(result: AttackResult) -> None:
                nonlocal through
                through += result.outcome == "through"
                progress.update(task, advance=1, through=through)

            report: RedteamReport = asyncio.run(
                run_attacks(
                    attacks,
                    model=target,
                    url=url,
                    api_key=api_key,
                    target=defended,
                    concurrency=concurrency,
                    timeout=timeout,
                    progress=advance,
                )
            )
        errors = [r for r in report.results if r.outcome == "error"]
        if len(errors) == len(report.results):
            raise MissingPrerequisite(
                f"no attack got an answer from {url} (model {target!r}): {errors[0].detail}"
            )
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "canary": defended.canary}, ensure_ascii=False))
    else:
        _print_redteam(Console(), report)
    if fail_on_success and report.through:
        raise typer.Exit(1)


def _print_redteam(console: Console, report: Any) -> None:
    table = Table(title=f"red team · {escape(report.target)} · {escape(report.url)}", title_justify="left")
    table.add_column("category")
    for column in ("sent", "blocked by Keel", "answered safely", "got through", "errors"):
        table.add_column(column, justify="right")
    for name, counts in report.by_category().items():
        bold = "[bold]" if name == "all" else ""
        table.add_row(
            f"{bold}{escape(name)}",
            f"{bold}{counts.sent}",
            f"{bold}{counts.blocked}",
            f"{bold}{counts.safe}",
            f"[red]{counts.through}" if counts.through else f"{bold}0",
            f"[yellow]{counts.errors}" if counts.errors else f"{bold}0",
        )
    console.print(table)
    through = report.through
    if through:
        shown = ", ".join(f"{escape(r.attack.id)} ({escape(r.attack.technique)})" for r in through[:20])
        more = f" and {len(through) - 20} more" if len(through) > 20 else ""
        console.print(f"[red]got through:[/] {shown}{more}", highlight=False)
    errors = [r for r in report.results if r.outcome == "error"]
    if errors:
        console.print(
            f"[yellow]errors:[/] {escape(errors[0].attack.id)}: {escape(errors[0].detail)}", highlight=False
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    guard_app.command("scan")(scan)
    guard_app.command("eval")(evaluate)
    app.add_typer(guard_app)
    redteam_app.command("run")(redteam_run)
    app.add_typer(redteam_app)
