"""Runs and their cells in the store: create or resume a run, write cells in batches as
they finish, look outputs up in the eval cache, finish a run with its summary, list and
read runs back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from keel.core import InvalidRequest, JSONObject, NotFound
from keel.evals._results import Cell, Metric, RunResults, Variant
from keel.evals._tables import eval_results, eval_runs
from keel.evals._types import Case, Output, Score, ToolCall


def new_run_id() -> str:
    # Sortable by time, like request ids; short enough to type in `keel eval show`.
    return f"{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class StoredCell:
    """A cell as the store holds it, with the key its output was cached under."""

    cell: Cell
    cache_key: str


def case_to_json(case: Case) -> JSONObject:
    return {
        "id": case.id,
        "vars": dict(case.vars),
        "expected": case.expected,
        "tags": sorted(case.tags),
        "meta": dict(case.meta),
        "line": case.line,
        "messages": list(case.messages) if case.messages is not None else None,
    }


def case_from_json(data: JSONObject) -> Case:
    messages = data.get("messages")
    return Case(
        id=str(data["id"]),
        vars=data.get("vars") or {},
        expected=data.get("expected"),
        tags=frozenset(data.get("tags") or ()),
        meta=data.get("meta") or {},
        line=int(data.get("line") or 0),
        messages=tuple(messages) if messages is not None else None,
    )


def output_to_json(output: Output) -> JSONObject:
    return {
        "text": output.text,
        "tool_calls": [
            {"name": t.name, "arguments": t.arguments, "raw": t.raw_arguments} for t in output.tool_calls
        ],
        "latency_ms": output.latency_ms,
        "cost_usd": output.cost_usd,
        "input_tokens": output.input_tokens,
        "output_tokens": output.output_tokens,
        "request_id": output.request_id,
        "finish_reason": output.finish_reason,
        "error": output.error,
        "cached": output.cached,
    }


def output_from_json(data: JSONObject) -> Output:
    return Output(
        text=str(data.get("text", "")),
        tool_calls=tuple(
            ToolCall(str(t.get("name", "")), t.get("arguments"), str(t.get("raw", "")))
            for t in data.get("tool_calls", [])
        ),
        latency_ms=float(data.get("latency_ms") or 0.0),
        cost_usd=float(data.get("cost_usd") or 0.0),
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        request_id=data.get("request_id"),
        finish_reason=data.get("finish_reason"),
        error=data.get("error"),
        cached=bool(data.get("cached", False)),
    )


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, run_id: str, suite: str, config: JSONObject) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                insert(eval_runs).values(
                    id=run_id,
                    suite=suite,
                    created_at=datetime.now(UTC),
                    status="running",
                    config=config,
                    cost_nanos=0,
                )
            )

    def run_row(self, run_id: str) -> Any:
        with self.engine.connect() as connection:
            row = connection.execute(select(eval_runs).where(eval_runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no eval run {run_id!r} (see `keel eval list`)")
        return row

    def reopen(self, run_id: str, suite: str) -> None:
        """Resume ``run_id``: it must be a run of ``suite`` that did not complete."""
        row = self.run_row(run_id)
        if row.suite != suite:
            raise InvalidRequest(f"run {run_id!r} is a run of suite {row.suite!r}, not {suite!r}")
        if row.status == "complete":
            raise InvalidRequest(f"run {run_id!r} is complete: nothing to resume")
        with self.engine.begin() as connection:
            connection.execute(update(eval_runs).where(eval_runs.c.id == run_id).values(status="running"))

    def done_cells(self, run_id: str) -> list[StoredCell]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(eval_results).where(eval_results.c.run_id == run_id)).all()
        return [
            StoredCell(
                Cell(
                    row.case_id,
                    row.variant,
                    row.repeat,
                    output_from_json(row.output),
                    {name: Score.from_json(score) for name, score in row.scores.items()},
                ),
                row.cache_key,
            )
            for row in rows
        ]

    def cached_outputs(self, keys: Iterable[str]) -> dict[str, Output]:
        """The newest successful output stored under each of ``keys`` (any run)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, tuple[datetime, Output]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = connection.execute(
                    select(eval_results.c.cache_key, eval_results.c.created_at, eval_results.c.output).where(
                        eval_results.c.cache_key.in_(chunk), eval_results.c.error.is_(None)
                    )
                )
                for key, created_at, output in rows:
                    if key not in found or created_at > found[key][0]:
                        found[key] = (created_at, output_from_json(output))
        return {key: output for key, (_, output) in found.items()}

    def write_cells(self, run_id: str, cells: Sequence[StoredCell]) -> None:
        if not cells:
            return
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_id,
                "case_id": item.cell.case_id,
                "variant": item.cell.variant,
                "repeat": item.cell.repeat,
                "cache_key": item.cache_key,
                "created_at": now,
                "output": output_to_json(item.cell.output),
                "scores": {name: score.to_json() for name, score in item.cell.scores.items()},
                # A cached cell cost this run nothing.
                "cost_nanos": 0 if item.cell.output.cached else round(item.cell.output.cost_usd * 1e9),
                "latency_ms": item.cell.output.latency_ms,
                "request_id": item.cell.output.request_id,
                "error": item.cell.output.error,
            }
            for item in cells
        ]
        with self.engine.begin() as connection:
            connection.execute(insert(eval_results), rows)
            cost = sum(int(row["cost_nanos"]) for row in rows)
            if cost:
                connection.execute(
                    update(eval_runs)
                    .where(eval_runs.c.id == run_id)
                    .values(cost_nanos=eval_runs.c.cost_nanos + cost)
                )

    def finish(
        self, run_id: str, status: str, summary: JSONObject | None, gate_passed: bool | None, note: str = ""
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(eval_runs)
                .where(eval_runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=datetime.now(UTC),
                    summary=summary,
                    gate_passed=gate_passed,
                    note=note or None,
                )
            )

    def list_runs(self, *, suite: str | None = None, limit: int = 20) -> list[JSONObject]:
        query = select(eval_runs).order_by(eval_runs.c.created_at.desc(), eval_runs.c.id.desc()).limit(limit)
        if suite is not None:
            query = query.where(eval_runs.c.suite == suite)
        counts = (
            select(eval_results.c.run_id, func.count().label("cells"))
            .group_by(eval_results.c.run_id)
            .subquery()
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            cells = dict(connection.execute(select(counts.c.run_id, counts.c.cells)).all()) if rows else {}
        return [
            {
                "run_id": row.id,
                "suite": row.suite,
                "created_at": row.created_at.isoformat(),
                "status": row.status,
                "cost_usd": row.cost_nanos / 1e9,
                "n_cases": (row.summary or {}).get("n_cases", 0),
                "cells": cells.get(row.id, 0),
                "gate": row.gate_passed,
                "variants": [v["id"] for v in (row.config or {}).get("variants", [])],
            }
            for row in rows
        ]


def load_run(store: RunStore, run_id: str) -> RunResults:
    """A stored run as ``RunResults`` (cells and cases; the caller analyses it)."""
    row = store.run_row(run_id)
    config = row.config or {}
    cells = [stored.cell for stored in store.done_cells(run_id)]
    cells.sort(key=lambda c: (c.variant, c.case_id, c.repeat))
    return RunResults(
        run_id=row.id,
        suite=row.suite,
        created_at=row.created_at,
        status=row.status,
        cost_usd=row.cost_nanos / 1e9,
        variants=[Variant(**v) for v in config.get("variants", [])],
        metrics=[
            Metric(m["name"], m["kind"], bool(m["binary"]), m.get("settings") or {})
            for m in config.get("metrics", [])
        ],
        cases=[case_from_json(c) for c in config.get("cases", [])],
        cells=cells,
        note=row.note or "",
    )
