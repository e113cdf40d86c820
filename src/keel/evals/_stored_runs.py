"""Stored runs read back for ``keel eval show`` and compared for ``keel eval compare``.

A stored run keeps its cells, cases, variants and metrics; the statistics are computed
again when it is read (deterministic: fixed seeds), so a report of an old run uses the
current analysis code and the same numbers come back."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine

from keel.core import InvalidRequest
from keel.evals._analysis import analyse
from keel.evals._gate import GateSettings, evaluate_gate
from keel.evals._results import Cell, GateCheck, GateVerdict, RunResults, Variant
from keel.evals._run_store import RunStore, load_run


def read_run(engine: Engine, run_id: str) -> RunResults:
    store = RunStore(engine)
    results = load_run(store, run_id)
    config = store.run_row(run_id).config or {}
    pairs = [(str(a), str(b)) for a, b in config.get("pairs", [])]
    raw_gate = (config.get("suite") or {}).get("gate")
    gate = GateSettings.model_validate(raw_gate) if raw_gate is not None else None
    if results.cells:
        analyse(results, pairs=pairs, alpha=gate.alpha if gate is not None else 0.05)
    gate_variants = config.get("gate_variants")
    if gate is not None and gate_variants and results.status == "complete":
        results.gate = evaluate_gate(gate, results, gate_variants[0], gate_variants[1])
    return results


def compare_stored_runs(
    engine: Engine, baseline: str, candidate: str, gate: GateSettings | None
) -> RunResults:
    """Candidate run vs baseline run, paired by case id, for each variant the two runs
    share (or their only variants, when each has one)."""
    store = RunStore(engine)
    base, cand = load_run(store, baseline), load_run(store, candidate)
    shared = [v.id for v in base.variants if v.id in {c.id for c in cand.variants}]
    if shared:
        pairs_by_id = [(v, v) for v in shared]
    elif len(base.variants) == 1 and len(cand.variants) == 1:
        pairs_by_id = [(base.variants[0].id, cand.variants[0].id)]
    else:
        raise InvalidRequest(
            f"runs {baseline!r} and {candidate!r} share no variant: "
            f"{[v.id for v in base.variants]} vs {[v.id for v in cand.variants]}"
        )
    case_ids = {c.id for c in base.cases} & {c.id for c in cand.cases}
    if not case_ids:
        raise InvalidRequest(f"runs {baseline!r} and {candidate!r} have no case in common")
    metrics = [m for m in cand.metrics if m.name in {b.name for b in base.metrics}]

    def tagged(results: RunResults, variant: Variant) -> Variant:
        return replace(variant, id=f"{results.run_id}: {variant.id}")

    variants: list[Variant] = []
    cells: list[Cell] = []
    pairs: list[tuple[str, str]] = []
    for base_id, cand_id in pairs_by_id:
        b = tagged(base, next(v for v in base.variants if v.id == base_id))
        c = tagged(cand, next(v for v in cand.variants if v.id == cand_id))
        variants += [b, c]
        pairs.append((b.id, c.id))
        cells += [
            replace(cell, variant=b.id)
            for cell in base.cells
            if cell.variant == base_id and cell.case_id in case_ids
        ]
        cells += [
            replace(cell, variant=c.id)
            for cell in cand.cells
            if cell.variant == cand_id and cell.case_id in case_ids
        ]
    merged = RunResults(
        run_id=f"{baseline}..{candidate}",
        suite=cand.suite if cand.suite == base.suite else f"{base.suite} vs {cand.suite}",
        created_at=cand.created_at,
        status="complete" if base.status == cand.status == "complete" else "partial",
        cost_usd=base.cost_usd + cand.cost_usd,
        variants=variants,
        metrics=metrics,
        cases=[c for c in cand.cases if c.id in case_ids],
        cells=cells,
        note=f"{len(case_ids)} cases in common",
    )
    analyse(merged, pairs=pairs, alpha=gate.alpha if gate is not None else 0.05)
    if gate is not None:
        checks: list[GateCheck] = []
        for b_id, c_id in pairs:
            verdict = evaluate_gate(gate, merged, b_id, c_id)
            prefix = f"{c_id}: " if len(pairs) > 1 else ""
            checks += [replace(check, rule=prefix + check.rule) for check in verdict.checks]
        merged.gate = GateVerdict(pairs[0][0], pairs[0][1], tuple(checks))
    return merged
