"""Running a suite: every cell (case × variant × repeat) called through the gateway,
scored, and written to the store as it finishes.

- Cached: a cell whose cache key (request body and repeat index) answered before, in any
  run, reuses that output and costs nothing.
- Resumable: ``resume=RUN_ID`` skips the cells that run already has.
- Bounded: ``max_cost_usd`` stops scheduling new calls once the run has spent it (the run
  is then ``stopped`` and can be resumed with a higher cap).
- Visible: a Rich progress bar with the running cost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine

from keel.core import InvalidRequest, KeelError
from keel.evals._analysis import analyse
from keel.evals._dataset import load_dataset
from keel.evals._gate import evaluate_gate
from keel.evals._gateway_client import GatewayClient
from keel.evals._matrix import Plan, PromptResolver, plan, resolve_prompts, select_variant
from keel.evals._results import Cell, Metric, RunResults, Variant
from keel.evals._run_store import RunStore, StoredCell, case_to_json, new_run_id
from keel.evals._scorer import build_scorer
from keel.evals._suite import Suite
from keel.evals._types import Case, Output, Score, ScoreContext, Scorer

_FLUSH_EVERY_S = 0.5
_FLUSH_CELLS = 200


@dataclass(slots=True)
class RunOptions:
    base_url: str
    api_key: str | None = None
    resume: str | None = None
    use_cache: bool = True
    max_cost_usd: float | None = None
    concurrency: int | None = None
    progress: bool = True
    # For tests: stop (as an interruption would) after this many cells were called.
    stop_after: int | None = None


@dataclass(slots=True)
class _Prepared:
    suite: Suite
    cases: list[Case]
    plan: Plan
    scorers: dict[str, Scorer]
    metrics: list[Metric]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    gate_variants: tuple[str | None, str] | None = None


def prepare(suite: Suite, resolver: PromptResolver | None) -> _Prepared:
    """Everything that can be checked before a call: dataset, scorers, prompts, every
    case rendered, gate variants. Raises with the location of the first problems."""
    cases = load_dataset(suite.dataset)
    scorers: dict[str, Scorer] = {}
    for spec in suite.scorers:
        settings = dict(spec.settings)
        if spec.kind == "python" and "base_dir" not in settings:
            settings["base_dir"] = str(suite.base_dir)
        scorers[spec.name] = build_scorer(spec.kind, settings, location=spec.location)
    metrics = [Metric(name, s.kind, s.binary, dict(s.settings)) for name, s in scorers.items()]
    prompts = resolve_prompts(suite, resolver)
    matrix = plan(suite, cases, prompts)
    prepared = _Prepared(suite, cases, matrix, scorers, metrics)
    if suite.gate is not None:
        gate = suite.gate
        if gate.candidate is not None:
            candidate = select_variant(gate.candidate, matrix.variants, role="candidate").id
        elif len(matrix.variants) == 1:
            candidate = matrix.variants[0].id
        else:
            raise InvalidRequest(
                f"{suite.path}: the gate needs a 'candidate': the suite has several variants"
            )
        baseline = (
            select_variant(gate.baseline, matrix.variants, role="baseline").id if gate.baseline else None
        )
        prepared.gate_variants = (baseline, candidate)
        if baseline is not None:
            prepared.pairs = [(baseline, candidate)]
    elif len(matrix.variants) == 2:
        prepared.pairs = [(matrix.variants[0].id, matrix.variants[1].id)]
    return prepared


class Runner:
    def __init__(self, engine: Engine, options: RunOptions) -> None:
        self.store = RunStore(engine)
        self.options = options
        self.spent_usd = 0.0
        self.called = 0
        self.cached = 0
        self._pending: list[StoredCell] = []
        self._stop_reason = ""

    async def run(
        self, prepared: _Prepared, *, on_progress: Callable[[int, int, float], None] | None = None
    ) -> RunResults:
        suite = prepared.suite
        options = self.options
        run_id = options.resume or new_run_id()
        config = {
            "suite_path": str(suite.path),
            "suite": suite.source,
            "variants": [v.to_json() for v in prepared.plan.variants],
            "metrics": [m.to_json() for m in prepared.metrics],
            "pairs": prepared.pairs,
            "gate_variants": prepared.gate_variants,
            "cases": [case_to_json(case) for case in prepared.cases],
        }
        await _check_cases(prepared)
        if options.resume:
            await asyncio.to_thread(self.store.reopen, run_id, suite.name)
            done = await asyncio.to_thread(self.store.done_cells, run_id)
        else:
            await asyncio.to_thread(self.store.create, run_id, suite.name, config)
            done = []
        cells: dict[tuple[str, str, int], Cell] = {
            (d.cell.case_id, d.cell.variant, d.cell.repeat): d.cell for d in done
        }
        todo = [
            (case, variant, repeat)
            for variant in prepared.plan.variants
            for case in prepared.cases
            for repeat in range(suite.repeats)
            if (case.id, variant.id, repeat) not in cells
        ]
        keys = {
            (case.id, variant.id, repeat): prepared.plan.cache_key(variant.id, case.id, repeat)
            for case, variant, repeat in todo
        }
        cache = await asyncio.to_thread(self.store.cached_outputs, keys.values()) if options.use_cache else {}
        self.spent_usd = sum(cell.output.cost_usd for cell in cells.values() if not cell.output.cached)
        cap = options.max_cost_usd if options.max_cost_usd is not None else suite.max_cost_usd
        total = len(todo) + len(cells)
        status = "complete"
        context_tags = {"eval_run": run_id, "eval_suite": suite.name[:200]}
        client = GatewayClient(
            options.base_url,
            options.api_key,
            concurrency=options.concurrency or suite.concurrency,
            retries=suite.retries,
            timeout_s=suite.timeout_s,
            tags=context_tags,
        )
        progress = _progress(options.progress)
        task = progress.add_task(f"eval {suite.name}", total=total, completed=len(cells), cost=self.spent_usd)
        queue: asyncio.Queue[tuple[Case, Variant, int]] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)
        flusher: asyncio.Task[None] | None = None
        try:
            async with client:
                context = ScoreContext(models=client, embedding_model=suite.embedding_model)
                flusher = asyncio.create_task(self._flush_periodically(run_id))

                async def worker() -> None:
                    while True:
                        try:
                            case, variant, repeat = queue.get_nowait()
                        except asyncio.QueueEmpty:
                            return
                        if self._stop_reason:
                            return
                        key = keys[(case.id, variant.id, repeat)]
                        hit = cache.get(key)
                        if hit is not None:
                            output = _as_cached(hit)
                            self.cached += 1
                        else:
                            if cap is not None and self.spent_usd >= cap:
                                self._stop_reason = f"cost cap reached: ${self.spent_usd:.4f} of ${cap:.4f}"
                                return
                            if options.stop_after is not None and self.called >= options.stop_after:
                                self._stop_reason = "stopped after the requested number of calls"
                                return
                            self.called += 1
                            body = prepared.plan.bodies[(variant.id, case.id)]
                            output = await client.complete(
                                body, {"eval_case": case.id[:200], "eval_repeat": str(repeat)}
                            )
                            self.spent_usd += output.cost_usd
                        scores = await _score_all(prepared.scorers, case, output, context)
                        cell = Cell(case.id, variant.id, repeat, output, scores)
                        cells[(case.id, variant.id, repeat)] = cell
                        self._pending.append(StoredCell(cell, key))
                        if len(self._pending) >= _FLUSH_CELLS:
                            await self._flush(run_id)
                        progress.update(task, advance=1, cost=self.spent_usd)
                        if on_progress is not None:
                            on_progress(len(cells), total, self.spent_usd)

                workers = max(1, options.concurrency or suite.concurrency)
                with progress:
                    outcomes = await asyncio.gather(
                        *(worker() for _ in range(workers)), return_exceptions=True
                    )
                for outcome in outcomes:
                    if isinstance(outcome, BaseException):
                        raise outcome
        except BaseException:
            status = "interrupted"
            raise
        finally:
            if flusher is not None:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
            await self._flush(run_id)
            if status == "interrupted":
                await asyncio.to_thread(self.store.finish, run_id, "interrupted", None, None, "interrupted")
        if self._stop_reason:
            status = "stopped"
        ordered = sorted(cells.values(), key=lambda c: (c.variant, c.case_id, c.repeat))
        row = await asyncio.to_thread(self.store.run_row, run_id)
        results = RunResults(
            run_id=run_id,
            suite=suite.name,
            created_at=row.created_at,
            status=status,
            cost_usd=self.spent_usd,
            variants=prepared.plan.variants,
            metrics=prepared.metrics,
            cases=prepared.cases,
            cells=ordered,
            note=self._stop_reason,
        )
        if status == "complete":
            alpha = suite.gate.alpha if suite.gate is not None else 0.05
            analyse(results, pairs=prepared.pairs, alpha=alpha)
            if suite.gate is not None and prepared.gate_variants is not None:
                results.gate = evaluate_gate(suite.gate, results, *prepared.gate_variants)
        await asyncio.to_thread(
            self.store.finish,
            run_id,
            status,
            results.summary_json(),
            results.gate.passed if results.gate is not None else None,
            self._stop_reason,
        )
        return results

    async def _flush(self, run_id: str) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.to_thread(self.store.write_cells, run_id, pending)

    async def _flush_periodically(self, run_id: str) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            await self._flush(run_id)


# Scorers that call a model or user code: not tried on an empty answer up front.
_NOT_PRECHECKED = frozenset({"llm_judge", "embedding_similarity", "python"})


async def _check_cases(prepared: _Prepared) -> None:
    """Score an empty answer for every case before any call, so that a case missing what
    a scorer needs (its ``expected``, a schema ...) stops the run before it starts,
    naming the case and line, instead of after money was spent."""
    blank = Output("")
    context = ScoreContext()
    for scorer in prepared.scorers.values():
        if scorer.kind in _NOT_PRECHECKED:
            continue
        for case in prepared.cases:
            try:
                await scorer.score(case, blank, context)
            except InvalidRequest as exc:
                raise InvalidRequest(f"{prepared.suite.dataset.path.name}: {exc.message}") from None
            except Exception:  # anything else is the scorer judging an empty answer
                continue


async def _score_all(
    scorers: dict[str, Scorer], case: Case, output: Output, context: ScoreContext
) -> dict[str, Score]:
    scores: dict[str, Score] = {}
    for name, scorer in scorers.items():
        try:
            scores[name] = await scorer.score(case, output, context)
        except KeelError:
            # Bad input (a case without what the scorer needs), an unreachable judge or a
            # missing embedding model: an error to fix, not a regression to report.
            raise
        except Exception as exc:  # a bug in a custom scorer scores 0, with the reason
            scores[name] = Score(
                0.0, False if scorer.binary else None, f"scorer failed: {type(exc).__name__}: {exc}"
            )
    return scores


def _as_cached(output: Output) -> Output:
    # Latency and cost stay what the original call measured (scorers judge the answer);
    # ``cached`` keeps them out of this run's spend.
    return Output(
        text=output.text,
        tool_calls=output.tool_calls,
        latency_ms=output.latency_ms,
        cost_usd=output.cost_usd,
        input_tokens=output.input_tokens,
        output_tokens=output.output_tokens,
        request_id=output.request_id,
        finish_reason=output.finish_reason,
        cached=True,
    )


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("${task.fields[cost]:.4f}"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
