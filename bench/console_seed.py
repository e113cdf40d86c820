"""Seed a Keel store with a month of logged traffic for the console: teams and keys,
budgets, prompts, and N requests (default 100,000) over 30 days across teams, keys,
models and end users, with costs, errors, cache hits, guard verdicts, prompt versions
and realistic bodies.

    python -m bench.console_seed --database sqlite:////tmp/keel-console.db            # 100k
    python -m bench.console_seed --database sqlite:////tmp/c.db --requests 5000 --days 7

Deterministic for a given ``--seed`` (and ``now``): the browser tests seed a few
thousand rows with it and compare the console's figures with the seeded aggregates.
``seed_drift`` and ``seed_feedback`` add a day of drift results and some feedback with
an annotation queue, for the Drift and Feedback pages (the command seeds both).
The plaintext keys it creates are printed (and returned by ``seed``) so that one can
log in to the console as the admin or as a team.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from keel.access import AccessAdmin, Actor
from keel.evals import Case, Cell, Metric, Output, RunStore, Score, Variant
from keel.evals._run_store import StoredCell, case_to_json
from keel.feedback import (
    FeedbackInput,
    FeedbackStore,
    Giver,
    Side,
    assign,
    create_queue,
    feedback,
    next_items,
    submit_review,
)
from keel.monitor import DriftResult, store_results
from keel.prompts import PromptRegistry
from keel.spend import set_budget
from keel.store import RequestRecord, create_store_engine, insert_records, request_log, upgrade

# (route, provider, deployment, $ per 1M input tokens, $ per 1M output tokens, latency median ms)
MODELS = (
    ("gpt-4o", "openai", "openai-gpt-4o", 2.5, 10.0, 900.0),
    ("gpt-4o-mini", "openai", "openai-gpt-4o-mini", 0.15, 0.6, 450.0),
    ("claude-sonnet", "anthropic", "anthropic-sonnet", 3.0, 15.0, 1100.0),
    ("llama-local", "local", "local-llama", 0.0, 0.0, 300.0),
)
MODEL_WEIGHTS = (0.25, 0.45, 0.2, 0.1)
# Team name -> (share of traffic, guard policy or None, prompt it calls or None)
TEAMS = {
    "search": (0.4, None, "faq-answer"),
    "support": (0.3, "pii-redact", "ticket-summary"),
    "research": (0.2, None, None),
    "growth": (0.1, "strict", None),
}
ERRORS = (  # (status, error_type, share of all requests)
    (429, "rate_limited", 0.012),
    (500, "upstream_error", 0.008),
    (502, "upstream_error", 0.006),
    (504, "timeout", 0.004),
    (400, "invalid_request", 0.004),
)
QUESTIONS = (
    "How do I reset my password?",
    "What is the refund policy for annual plans?",
    "Summarise the attached support ticket about billing.",
    "Translate 'good morning' into French and German.",
    "Which regions does the service run in?",
    "Write a haiku about databases.",
    "Explain the difference between a budget and a rate limit.",
    "Draft a polite reply declining the meeting.",
)


@dataclass
class SeededTeam:
    id: str
    name: str
    admin_key: str  # plaintext of its team_admin key
    member_key: str
    app_key_ids: list[str]


@dataclass
class Seeded:
    admin_key: str
    teams: dict[str, SeededTeam]
    requests: int
    now: datetime
    records: list[RequestRecord] = field(default_factory=list)  # kept only when asked


def seed(
    engine: Engine,
    requests: int = 100_000,
    *,
    days: int = 30,
    now: datetime | None = None,
    rng_seed: int = 7,
    keep_records: bool = False,
    batch: int = 5_000,
) -> Seeded:
    """Create teams, keys, budgets and prompts, then log ``requests`` requests spread over
    the ``days`` before ``now`` (each at least a minute old)."""
    upgrade(engine)
    now = now or datetime.now(UTC)
    rng = random.Random(rng_seed)
    access = AccessAdmin(engine)
    cli = Actor.cli()
    admin_key = access.create_key(cli, name="console-admin", role="admin").secret
    teams: dict[str, SeededTeam] = {}
    for name, (_, policy, _prompt) in TEAMS.items():
        team = access.create_team(cli, name, guard_policy=policy)
        team_admin = access.create_key(cli, name=f"{name}-admin", role="team_admin", team_id=team.id)
        member = access.create_key(cli, name=f"{name}-member", role="member", team_id=team.id)
        apps = [
            access.create_key(cli, name=f"{name}-{app}", role="service", team_id=team.id).key.id
            for app in ("web", "batch", "agent")
        ]
        teams[name] = SeededTeam(team.id, name, team_admin.secret, member.secret, apps)
        set_budget(
            engine, scope="team", scope_id=team.id, period="month", limit_nanos=_usd(400), actor="seed"
        )
        set_budget(engine, scope="team", scope_id=team.id, period="day", limit_nanos=_usd(20), actor="seed")
    prompts = PromptRegistry(engine)
    for name, (_, _, prompt) in TEAMS.items():
        if prompt is None:
            continue
        team_id = teams[name].id
        prompts.create(
            prompt,
            type="chat",
            template=[{"role": "system", "content": "You answer questions about {{product}}."}],
            variables={"product": {"type": "string"}},
            commit_message="first version",
            team_id=team_id,
            actor="seed",
        )
        for n in (2, 3):
            prompts.add_version(
                prompt,
                template=[
                    {"role": "system", "content": f"You answer questions about {{{{product}}}} (v{n})."}
                ],
                variables={"product": {"type": "string"}},
                commit_message=f"version {n}",
                actor="seed",
            )
        prompts.set_label(prompt, "production", 2, actor="seed", admin=True)

    team_names = list(TEAMS)
    team_weights = [TEAMS[t][0] for t in team_names]
    span = timedelta(days=days).total_seconds() - 60
    kept: list[RequestRecord] = []
    pending: list[RequestRecord] = []
    for i in range(requests):
        team_name = rng.choices(team_names, team_weights)[0]
        record = _request(rng, i, now - timedelta(seconds=60 + _moment(rng) * span), teams[team_name])
        pending.append(record)
        if keep_records:
            kept.append(record)
        if len(pending) >= batch:
            insert_records(engine, pending)
            pending = []
    insert_records(engine, pending)
    return Seeded(admin_key, teams, requests, now, kept)


def seed_eval_run(engine: Engine, *, cases: int = 40, rng_seed: int = 7) -> str:
    """One finished eval run comparing two prompt versions on a pass/fail metric (the
    candidate better on some cases, worse on a few); returns its id."""
    rng = random.Random(rng_seed)
    store = RunStore(engine)
    run_id = f"20261120120000-{rng.getrandbits(24):06x}"
    variants = [
        Variant("faq-answer@v2 / gpt-4o-mini", "faq-answer", "faq-answer#2", "gpt-4o-mini"),
        Variant("faq-answer@v3 / gpt-4o-mini", "faq-answer", "faq-answer#3", "gpt-4o-mini"),
    ]
    all_cases = [
        Case(id=f"case-{i:03d}", vars={"question": rng.choice(QUESTIONS)}, expected="yes")
        for i in range(cases)
    ]
    config = {
        "variants": [v.to_json() for v in variants],
        "metrics": [Metric("correct", "exact_match", True).to_json()],
        "cases": [case_to_json(case) for case in all_cases],
        "pairs": [[variants[0].id, variants[1].id]],
    }
    store.create(run_id, "faq-regression", config)
    cells = []
    for case in all_cases:
        for i, variant in enumerate(variants):
            passed = rng.random() < (0.7 if i == 0 else 0.82)
            output = Output(text="yes" if passed else "no", latency_ms=rng.uniform(300, 900), cost_usd=0.0004)
            score = Score(1.0 if passed else 0.0, passed, "matches" if passed else "differs")
            cell = Cell(case.id, variant.id, 0, output, {"correct": score})
            cells.append(StoredCell(cell, f"{run_id}-{case.id}-{i}"))
    store.write_cells(run_id, cells)
    store.finish(run_id, "complete", {"n_cases": cases}, None)
    return run_id


# (signal, kind, detector, reference mean, compare): what seed_drift stores per route.
DRIFT_SIGNALS = (
    ("input_tokens", "numeric", "ks", 920.0, "p_value"),
    ("latency_ms", "numeric", "wasserstein", 700.0, "score"),
    ("error_rate", "categorical", "jensen_shannon", None, "score"),
    ("input_embedding", "embedding", "domain_classifier", None, "score"),
)
DRIFT_THRESHOLDS = {"ks": None, "wasserstein": 0.1, "jensen_shannon": 0.05, "domain_classifier": 0.55}
DRIFT_ROUTE = "gpt-4o-mini"  # drifts in the last hours of seed_drift's day


def seed_drift(engine: Engine, now: datetime, *, hours: int = 24, rng_seed: int = 7) -> list[DriftResult]:
    """Hourly drift results over the ``hours`` before ``now`` for two routes (reference:
    the week before each window), as ``keel.monitor`` stores them. On ``DRIFT_ROUTE``
    ``input_tokens`` and ``input_embedding`` drift in the last quarter of the period;
    the domain classifier's examples are requests of that route's last window."""
    rng = random.Random(rng_seed)
    results: list[DriftResult] = []
    for route in (DRIFT_ROUTE, "gpt-4o"):
        for k in range(hours, 0, -1):
            at = now - timedelta(hours=k - 1)
            start = at - timedelta(hours=1)
            shifted = route == DRIFT_ROUTE and k <= hours // 4
            examples: list[dict[str, object]] = []
            if shifted and k == 1:
                with engine.connect() as connection:
                    ids = connection.execute(
                        select(request_log.c.id)
                        .where(request_log.c.route == route, request_log.c.created_at >= start)
                        .where(request_log.c.created_at <= at)
                        .order_by(request_log.c.id)
                        .limit(5)
                    ).scalars()
                    examples = [{"id": rid, "score": round(0.95 - i * 0.04, 2)} for i, rid in enumerate(ids)]
            for signal, kind, detector, reference, compare in DRIFT_SIGNALS:
                moved = signal in ("input_tokens", "input_embedding") and shifted
                threshold = DRIFT_THRESHOLDS[detector]
                p_value = None
                details: dict[str, object] = {"compare": compare}
                if detector == "ks":  # drift when p < 0.05: D is not compared with a threshold
                    score = rng.uniform(0.25, 0.4) if moved else rng.uniform(0.01, 0.08)
                    p_value = rng.uniform(1e-6, 1e-3) if moved else rng.uniform(0.2, 0.9)
                elif detector == "domain_classifier":  # an AUC: 0.5 is chance
                    score = rng.uniform(0.75, 0.85) if moved else rng.uniform(0.5, 0.54)
                    details["examples"] = examples
                else:  # distances under their thresholds: these signals do not move
                    score = (threshold or 0) * rng.uniform(0.2, 0.85)
                if kind == "categorical":
                    details["moved"] = [{"category": "ok", "reference": 0.966, "current": 0.962}]
                factor = (1.8 if moved else 1.0) + rng.uniform(-0.04, 0.04)
                current = None if reference is None else reference * factor
                results.append(
                    DriftResult(
                        at=at,
                        source="requests",
                        route=route,
                        prompt="",
                        model="",
                        signal=signal,
                        kind=kind,  # type: ignore[arg-type]
                        detector=detector,
                        window_start=start,
                        reference_start=start - timedelta(days=7),
                        reference_end=start,
                        n_reference=rng.randint(2000, 2400),
                        n_current=rng.randint(10, 40),
                        score=score,
                        p_value=p_value,
                        threshold=threshold,
                        drifted=moved,
                        reference_mean=reference,
                        current_mean=current,
                        details=details,
                    )
                )
    store_results(engine, results)
    return results


@dataclass
class SeededFeedback:
    queue: str  # the support team's queue, assigned to its two keys
    reviewers: tuple[str, str]
    other_queue: str  # the search team's
    feedback: int  # feedback given through the API (not reviews)


def seed_feedback(engine: Engine, seeded: Seeded, *, count: int = 150, rng_seed: int = 7) -> SeededFeedback:
    """Thumbs, ratings, corrections and preferences on successful requests of the week
    before ``seeded.now`` (each given within an hour after its request), and two
    annotation queues: the support team's, split between its two keys with two
    reviewers per item and the first four items reviewed by both, and the search team's."""
    rng = random.Random(rng_seed)
    store = FeedbackStore(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            select(request_log.c.id, request_log.c.created_at)
            .where(request_log.c.status == 200, request_log.c.response_body.is_not(None))
            .order_by(request_log.c.id)
        ).all()
    chosen = sorted(rng.sample(rows, min(count, len(rows))))
    for i, (request_id, created_at) in enumerate(chosen):
        kind = rng.choices(["thumbs", "rating", "correction", "preference"], [0.5, 0.3, 0.12, 0.08])[0]
        data = FeedbackInput(
            request_id=request_id, client_id=f"seed-{i}", user=f"user-{rng.randint(1, 200):03d}"
        )
        if kind == "thumbs":
            data = replace(data, score={"thumbs": "up" if rng.random() < 0.7 else "down"})
        elif kind == "rating":
            data = replace(data, score={"rating": rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 4, 3])[0]})
        elif kind == "correction":
            data = replace(data, correction="The answer should cite the refund policy page.")
        else:
            data = replace(
                data, chosen=Side("A shorter, direct answer."), rejected=Side("A long, hedging answer.")
            )
        stored, _ = store.submit(Giver(), data)
        given = min(created_at + timedelta(minutes=rng.uniform(1, 60)), seeded.now - timedelta(seconds=1))
        with engine.begin() as connection:
            connection.execute(update(feedback).where(feedback.c.id == stored.id).values(created_at=given))
    support, search = seeded.teams["support"], seeded.teams["search"]
    since = seeded.now - timedelta(days=2)
    queue = create_queue(
        engine, "support-triage", size=12, team_id=support.id, since=since, reviewers_per_item=2,
        created_by="seed", instructions="Is the answer correct and polite?",
    )  # fmt: skip
    reviewers = ("support-admin", "support-member")
    assign(engine, queue.name, list(reviewers))
    for reviewer in reviewers:
        for n, item in enumerate(next_items(engine, queue.name, reviewer, limit=4)):
            thumbs = "up" if (n % 2 == 0 or reviewer == "support-admin") else "down"
            body = {"request_id": item.request_id, "score": {"thumbs": thumbs, "rating": 3 + (n % 2)}}
            submit_review(engine, queue.name, reviewer, FeedbackInput.from_json(body))
    other = create_queue(
        engine, "search-spot-check", size=5, team_id=search.id, since=since, created_by="seed"
    )
    assign(engine, other.name, ["search-member"])
    return SeededFeedback(queue.name, reviewers, other.name, len(chosen))


def _moment(rng: random.Random) -> float:
    """A fraction of the period back from now; more traffic in recent days (growth)."""
    return 1 - math.sqrt(rng.random())


def _usd(amount: float) -> int:
    return round(amount * 1e9)


def _request(rng: random.Random, i: int, at: datetime, team: SeededTeam) -> RequestRecord:
    route, provider, deployment, price_in, price_out, median = rng.choices(MODELS, MODEL_WEIGHTS)[0]
    _, policy, prompt = TEAMS[team.name]
    question = rng.choice(QUESTIONS)
    input_tokens = rng.randint(40, 1800)
    output_tokens = rng.randint(10, 700)
    status, error_type = 200, None
    roll = rng.random()
    for code, kind, share in ERRORS:
        if roll < share:
            status, error_type = code, kind
            break
        roll -= share
    stream = rng.random() < 0.3
    latency = median * math.exp(rng.gauss(0, 0.5)) * (1 + output_tokens / 1400)
    cache_status = None
    if route in ("gpt-4o-mini", "gpt-4o"):
        cache_status = "hit" if rng.random() < 0.12 else "miss"
    attempts = 1 if rng.random() > 0.05 else rng.randint(2, 3)
    guards = None
    if policy is not None:
        decision = rng.choices(["allow", "flag", "redact", "block"], [0.9, 0.02, 0.06, 0.02])[0]
        results = [] if decision == "allow" else [{"scanner": "pii", "verdict": decision, "score": 0.97}]
        guards = {
            "input": {
                "policy": policy,
                "stage": "input",
                "decision": decision,
                "results": results,
                "scanners": ["injection", "pii"],
                "redacted": ["EMAIL_1"] if decision == "redact" else [],
            }
        }
        if decision == "block":
            status, error_type = 400, "guard_violation"
    failed = status >= 400
    cost = 0
    saved = None
    if failed:
        output_tokens = 0
        latency = latency * 0.3
    if cache_status == "hit" and not failed:
        saved = round((input_tokens * price_in + output_tokens * price_out) * 1000)
        latency = rng.uniform(2, 12)
    elif not failed:
        cost = round((input_tokens * price_in + output_tokens * price_out) * 1000)  # $/1M tok -> nanos
    prompt_name = prompt_version = None
    if prompt is not None and rng.random() < 0.6:
        prompt_name, prompt_version = prompt, rng.choices([1, 2, 3], [0.2, 0.6, 0.2])[0]
    answer = f"Here is an answer to: {question} " + " ".join(rng.choice(QUESTIONS) for _ in range(2))
    request_body = json.dumps(
        {
            "model": route,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant for the Keel demo."},
                {"role": "user", "content": question},
            ],
            "stream": stream,
        }
    )
    response_body = (
        None
        if failed
        else json.dumps(
            {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "model": route,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens},
            }
        )
    )
    return RequestRecord(
        id=f"req_{i:08d}_{rng.getrandbits(32):08x}",
        created_at=at,
        endpoint="chat.completions",
        requested_model=route,
        status=status,
        stream=stream,
        route=route,
        provider=provider,
        deployment=deployment if attempts == 1 else f"{deployment}-b",
        attempts=attempts,
        error_type=error_type,
        error_message=f"{error_type} from upstream" if error_type else None,
        latency_ms=round(latency, 2),
        ttft_ms=round(latency * rng.uniform(0.15, 0.45), 2) if stream and not failed else None,
        input_tokens=input_tokens,
        cached_input_tokens=0,
        output_tokens=output_tokens,
        usage_source="reported",
        key_id=rng.choice(team.app_key_ids),
        team_id=team.id,
        end_user=f"user-{rng.randint(1, 200):03d}" if rng.random() < 0.7 else None,
        request_body=request_body,
        response_body=response_body,
        extra={"tags": {"feature": rng.choice(["chat", "search", "summary"])}},
        cost_nanos=cost,
        cache_status=cache_status,
        cost_saved_nanos=saved,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        guards=guards,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", required=True, help="SQLAlchemy URL, e.g. sqlite:////tmp/keel.db")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    engine = create_store_engine(args.database)
    started = time.perf_counter()
    seeded = seed(engine, args.requests, days=args.days, rng_seed=args.seed)
    seed_eval_run(engine)
    seed_drift(engine, seeded.now)
    seed_feedback(engine, seeded)
    print(f"seeded {seeded.requests} requests in {time.perf_counter() - started:.1f} s")
    print(f"admin key: {seeded.admin_key}")
    for team in seeded.teams.values():
        print(f"team {team.name} ({team.id}): team_admin key {team.admin_key}  member key {team.member_key}")
    engine.dispose()


if __name__ == "__main__":
    main()
