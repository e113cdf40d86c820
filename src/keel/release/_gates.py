"""Gate verdicts on registered model versions (``model_gates``): written by
``run_gate``, read by promotion, which needs the newest verdict of a version to be a
pass."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from keel.release._tables import model_gates


@dataclass(frozen=True, slots=True)
class GateRecord:
    """One gate run: ``checks`` are the suite gate's ``{"rule", "passed", "detail"}``."""

    id: str
    model: str
    version: int
    baseline_version: int | None
    suite: str
    eval_run_id: str | None
    passed: bool
    at: datetime
    actor: str
    checks: tuple[dict[str, Any], ...] = ()
    note: str = ""

    def failures(self) -> list[str]:
        """The rules that did not hold, with why."""
        return [f"{c.get('rule')}: {c.get('detail')}" for c in self.checks if not c.get("passed")]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "baseline_version": self.baseline_version,
            "suite": self.suite,
            "eval_run_id": self.eval_run_id,
            "passed": self.passed,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "checks": list(self.checks),
            "note": self.note,
        }


def record_gate(
    engine: Engine,
    *,
    model: str,
    version: int,
    baseline_version: int | None,
    suite: str,
    eval_run_id: str | None,
    passed: bool,
    checks: Sequence[dict[str, Any]],
    actor: str,
    note: str = "",
) -> GateRecord:
    record = GateRecord(
        id=uuid.uuid4().hex,
        model=model,
        version=version,
        baseline_version=baseline_version,
        suite=suite[:255],
        eval_run_id=eval_run_id,
        passed=passed,
        at=datetime.now(UTC),
        actor=actor[:255],
        checks=tuple(dict(c) for c in checks),
        note=note,
    )
    with engine.begin() as connection:
        connection.execute(
            insert(model_gates).values(
                id=record.id,
                model=record.model,
                version=record.version,
                baseline_version=record.baseline_version,
                suite=record.suite,
                eval_run_id=record.eval_run_id,
                passed=record.passed,
                at=record.at,
                actor=record.actor,
                detail={"checks": list(record.checks), "note": note},
            )
        )
    return record


def latest_gate(connection: Connection | Engine, model: str, version: int) -> GateRecord | None:
    """The newest gate run on ``model`` version ``version`` (None: never gated)."""
    query = (
        select(model_gates)
        .where(model_gates.c.model == model, model_gates.c.version == version)
        .order_by(model_gates.c.at.desc(), model_gates.c.id.desc())
        .limit(1)
    )
    if isinstance(connection, Engine):
        with connection.connect() as conn:
            row = conn.execute(query).first()
    else:
        row = connection.execute(query).first()
    return _record(row) if row is not None else None


def list_gates(engine: Engine, *, model: str | None = None, limit: int = 50) -> list[GateRecord]:
    """Gate runs, newest first."""
    query = select(model_gates).order_by(model_gates.c.at.desc(), model_gates.c.id.desc()).limit(limit)
    if model is not None:
        query = query.where(model_gates.c.model == model)
    with engine.connect() as connection:
        return [_record(row) for row in connection.execute(query)]


def _record(row: Any) -> GateRecord:
    detail = row.detail or {}
    return GateRecord(
        id=row.id,
        model=row.model,
        version=row.version,
        baseline_version=row.baseline_version,
        suite=row.suite,
        eval_run_id=row.eval_run_id,
        passed=bool(row.passed),
        at=row.at,
        actor=row.actor,
        checks=tuple(detail.get("checks") or ()),
        note=str(detail.get("note") or ""),
    )
