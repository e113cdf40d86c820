"""``keel demo loop``: the improvement loop end to end on the built-in demo model, in a
few minutes on a CPU: serve traffic, collect (simulated) feedback through
``POST /v1/feedback``, export a preference dataset, train DPO, register the model,
gate it against production, run it as a canary, and roll it out, saying what happened
at each step and where to look in the console.

The simulated users ask the demo FAQ's questions (of one entry in two), give every
answer a thumbs up or down by how much of the FAQ answer it says, and pick the
gateway's answer (or the FAQ's, when the answer was wrong) over an unhelpful one (an
evasion, or the answer cut after its first sentence). Preferring a right answer over
the right answer to *another* question would teach the model to avoid that answer, and
the gate would catch the regression.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from keel.cli._common import ConfigOption, fail, load_settings_for_cli, reported_errors
from keel.core import (
    AccessSettings,
    DeploymentSettings,
    KeelSettings,
    NotFound,
    ProviderSettings,
    RequestLogSettings,
    RouteSettings,
)

demo_app = typer.Typer(name="demo", help="Demos on Keel's built-in demo model.", no_args_is_help=True)

ROUTE = "chat"
MODEL = "keel-demo"
EVASIONS = (
    "I don't know.",
    "Sorry, I can't help with that.",
    "Please check the documentation.",
    "That is not something I can answer.",
)
_WORD = re.compile(r"[a-z0-9]+")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app)


@dataclass
class LoopResult:
    """What the loop did (for tests): ids, versions and counts by step."""

    home: Path
    traffic: list[str] = field(default_factory=list)
    feedback: int = 0
    dataset: Path | None = None
    dataset_rows: dict[str, int] = field(default_factory=dict)
    reward_accuracy: float | None = None
    baseline_version: int = 0
    candidate_version: int = 0
    gate_passed: bool = False
    gate_run_id: str | None = None
    canary_requests: int = 0
    production_requests: int = 0
    rolled_out: bool = False


def demo_settings(home: Path) -> KeelSettings:
    """One route, ``chat``, served by the demo model in process; no keys."""
    return KeelSettings(
        home=home,
        providers={"local": ProviderSettings(type="local", device="cpu")},
        models={ROUTE: RouteSettings(deployments=[DeploymentSettings(provider="local", model=MODEL)])},
        access=AccessSettings(enabled=False, create_first_admin=False),
        request_log=RequestLogSettings(flush_interval=0.05),
    )


def _chat(base_url: str, question: str, temperature: float = 0.0) -> tuple[str, str]:
    """(request id, answer) of one chat call."""
    body = {
        "model": ROUTE,
        "messages": [{"role": "user", "content": question}],
        "temperature": temperature,
        "max_tokens": 64,
    }
    request = urllib.request.Request(
        f"{base_url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        payload = json.loads(response.read())
        return response.headers["x-request-id"], str(payload["choices"][0]["message"]["content"] or "")


def overlap(answer: str, reference: str) -> float:
    """Token F1 of ``answer`` against ``reference`` (the simulated user's judgement)."""
    a, b = _WORD.findall(answer.lower()), _WORD.findall(reference.lower())
    if not a or not b:
        return 0.0
    common = sum(min(a.count(w), b.count(w)) for w in set(a))
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def unhelpful(answer: str, rng: random.Random) -> str:
    """A worse answer than ``answer``: an evasion, or its first sentence alone."""
    first = answer.split(". ")[0].rstrip(".") + "."
    return first if first != answer and rng.random() < 0.5 else rng.choice(EVASIONS)


def run_loop(
    home: Path,
    *,
    console: Console,
    suite: Path | None = None,
    train_steps: int = 40,
    canary_share: float = 0.5,
    canary_requests: int = 60,
    threads: int | None = None,
    rollout: bool = True,
    seed: int = 0,
) -> LoopResult:
    """The loop in ``home`` (its ``models/keel-demo`` is the base model; built there
    when missing). Steps print to ``console``."""
    from keel.access import Actor
    from keel.client import FeedbackClient
    from keel.pipelines import export_dataset
    from keel.providers import demo_examples, ensure_demo_model
    from keel.release import (
        GateSide,
        ReleaseSettings,
        active_deployments,
        canary_report,
        plan_gate,
        promote,
        run_gate,
    )
    from keel.release import rollout as roll_out
    from keel.server import embedded_gateway
    from keel.store import create_store_engine, upgrade
    from keel.training import (
        TAG_BASE_MODEL,
        TAG_KIND,
        TrainConfig,
        default_tracking_uri,
        register_model,
        resolve_model,
        train_dpo,
    )

    result = LoopResult(home)
    settings = demo_settings(home)
    _write_config(home)
    uri = default_tracking_uri(home)
    engine = create_store_engine(settings.database_url)
    upgrade(engine)
    actor = Actor.cli()
    rng = random.Random(seed)
    examples = demo_examples()
    asked = examples[::2]

    _step(console, 1, "Register the demo model as production")
    base_dir = ensure_demo_model(home, progress=True)
    try:
        base = resolve_model(MODEL, "production", tracking_uri=uri)
    except NotFound:
        base = register_model(
            base_dir,
            MODEL,
            tracking_uri=uri,
            tags={TAG_KIND: "base", TAG_BASE_MODEL: str(base_dir)},
            aliases=("production",),
        )
    result.baseline_version = base.version
    console.print(f"  {MODEL} v{base.version} \\[production] in MLflow ({uri})")

    with embedded_gateway(settings) as (app, base_url):
        _step(console, 2, f"Serve traffic on route {ROUTE!r}")
        started = time.monotonic()
        served: list[tuple[str, str, Any]] = []
        for example in asked:
            for question in (example.question, *example.paraphrases):
                request_id, answer = _chat(base_url, question)
                served.append((request_id, answer, example))
        result.traffic = [r for r, _, _ in served]
        console.print(
            f"  {len(served)} chat requests in {time.monotonic() - started:.1f}s → /ui/requests?model={ROUTE}"
        )

        _step(console, 3, "Collect feedback through POST /v1/feedback (simulated users)")
        feedback = FeedbackClient(base_url, "demo")
        ups = 0
        for request_id, answer, example in served:
            good = overlap(answer, example.answer) >= 0.5
            ups += good
            feedback.send(
                request_id, id=f"thumb-{request_id}", thumbs="up" if good else "down", user="demo-user"
            )
            chosen = {"request_id": request_id} if good else example.answer
            wrong = unhelpful(example.answer, rng)
            feedback.send(
                request_id, id=f"pick-{request_id}", chosen=chosen, rejected=wrong, user="demo-user"
            )
            result.feedback += 2
        console.print(
            f"  {result.feedback} feedback items: {ups} thumbs up, {len(served) - ups} down, "
            f"{len(served)} preferences"
        )

        _step(console, 4, "Export a preference dataset")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        out = home / "datasets" / f"prefs-{stamp}"
        exported = export_dataset(engine, out, kind="preference", route=ROUTE, eval_fraction=0.2, seed=seed)
        manifest = exported.manifest
        result.dataset, result.dataset_rows = out, dict(manifest["counts"])
        console.print(f"  {out}: {manifest['counts']} (id {str(manifest['id'])[:19]}…)")

        _step(console, 5, "Train DPO on it and register the model")
        trained = train_dpo(
            TrainConfig(
                kind="dpo",
                base_model=str(base_dir),
                dataset=out,
                home=home,
                max_steps=train_steps,
                learning_rate=2e-4,
                batch_size=8,
                eval_batch_size=32,
                max_length=128,
                eval_steps=max(1, train_steps // 2),
                save_steps=max(1, train_steps // 2),
                threads=threads,
                seed=seed,
                model_name=MODEL,
                aliases=("candidate",),
                progress=True,
            )
        )
        assert trained.model is not None
        candidate = trained.model
        result.candidate_version = candidate.version
        result.reward_accuracy = trained.eval_metrics.get("eval_rewards/accuracies")
        console.print(
            f"  {trained.global_step} steps in {trained.seconds:.0f}s; reward accuracy on the eval split "
            f"{result.reward_accuracy if result.reward_accuracy is not None else '-'}; "
            f"registered {MODEL} v{candidate.version} \\[candidate] (MLflow run {trained.mlflow_run_id})"
        )

        _step(console, 6, f"Gate v{candidate.version} against production v{base.version}")
        suite_path = suite or _write_suite(home / "gate", examples)
        plan = plan_gate(
            settings,
            MODEL,
            candidate=GateSide(candidate.version, str(trained.model_dir)),
            baseline=GateSide(base.version, str(base_dir)),
        )
        with embedded_gateway(plan.settings) as (_, gate_url):
            import asyncio

            outcome = asyncio.run(run_gate(engine, suite_path, plan, base_url=gate_url, actor=actor.label))
        result.gate_passed, result.gate_run_id = outcome.record.passed, outcome.record.eval_run_id
        for check in outcome.record.checks:
            console.print(f"  {'✓' if check['passed'] else '✗'} {check['rule']}: {check['detail']}")
        console.print(
            f"  gate {'passed' if outcome.record.passed else 'FAILED'} "
            f"→ /ui/evals/{outcome.record.eval_run_id}"
        )
        if not outcome.record.passed:
            console.print(
                "  [red]the candidate is not promoted[/red] (`keel models promote --force` would override)"
            )
            return result

        _step(console, 7, f"Canary: v{candidate.version} takes {canary_share:.0%} of {ROUTE!r}")
        promote(
            engine,
            route=ROUTE,
            model=MODEL,
            version=candidate.version,
            path=str(trained.model_dir),
            share=canary_share,
            actor=actor,
        )
        # This process's gateway applies it now; a `keel serve` picks it up by polling.
        app.gateway.router.set_overlays(active_deployments(engine))
        for _ in range(canary_requests):
            example = rng.choice(asked)
            request_id, answer = _chat(base_url, rng.choice((example.question, *example.paraphrases)))
            good = overlap(answer, example.answer) >= 0.5
            feedback.send(request_id, thumbs="up" if good else "down", user="demo-user")
        _wait_logged(app)
        report = canary_report(engine, ROUTE, ReleaseSettings(min_requests=10))
        result.canary_requests, result.production_requests = (
            report.canary_requests,
            report.production_requests,
        )
        console.print(
            f"  {report.canary_requests} requests to the canary, {report.production_requests} to production "
            f"(observed share {report.observed_share or 0:.0%})"
        )
        for c in report.checks:
            console.print(
                f"  {c.name}: canary {_num(c.canary)} vs production {_num(c.production)} "
                f"(p={_num(c.p_value)})"
            )
        console.print(f"  verdict: {report.verdict} → keel models canary status {ROUTE}")

        if rollout and report.verdict != "rollback":
            _step(console, 8, "Promote: the canary goes live")
            live = roll_out(engine, ROUTE, actor=actor, tracking_uri=uri)
            app.gateway.router.set_overlays(active_deployments(engine))
            result.rolled_out = True
            console.print(f"  {live.name} serves all of {ROUTE!r}; {MODEL}@production → v{live.version}")
            console.print(f"  undo with: keel -c {home / 'keel.yaml'} models rollback {ROUTE}")
    engine.dispose()
    console.rule("Where to look")
    console.print(f"  keel -c {home / 'keel.yaml'} admin init     # an admin key to sign in to the console")
    console.print(f"  keel -c {home / 'keel.yaml'} serve          # then open http://127.0.0.1:4000/ui/")
    console.print(
        f"  /ui/requests?model={ROUTE}   the traffic, by deployment; /ui/evals   the gate's eval run"
    )
    console.print(
        f"  keel -c {home / 'keel.yaml'} models deployments --all; keel -c {home / 'keel.yaml'} audit"
    )
    console.print(f"  mlflow ui --backend-store-uri {uri}   # the training run and the registered versions")
    return result


def _step(console: Console, number: int, title: str) -> None:
    console.rule(f"[bold]{number}. {title}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _wait_logged(app: Any) -> None:
    """Until the request log writer has written everything it was given."""
    for _ in range(400):
        if app.writer.settled():
            return
        time.sleep(0.025)


def _write_config(home: Path) -> None:
    """keel.yaml in ``home``, so ``keel -c HOME/keel.yaml serve`` serves the demo's data."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "keel.yaml").write_text(
        "# Written by `keel demo loop`: the demo's route and data directory.\n"
        f"home: {json.dumps(str(home))}\n"
        "providers:\n  local: {type: local, device: cpu}\n"
        f"models:\n  {ROUTE}:\n    deployments: [{{provider: local, model: {MODEL}}}]\n",
        encoding="utf-8",
    )


def _write_suite(folder: Path, examples: Any) -> Path:
    """The gate's suite: every demo FAQ question, the answer must share most of its
    words with the FAQ's (ROUGE-L F ≥ 0.5) and not drop against production."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"faq-{i:02d}", "question": e.question, "expected": e.answer} for i, e in enumerate(examples)
    ]
    (folder / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    suite = folder / "suite.yaml"
    suite.write_text(
        "name: demo-release\n"
        "dataset: faq.jsonl\n"
        "prompts:\n  - name: plain\n    messages: [{role: user, content: '{{ question }}'}]\n"
        "params: {temperature: 0, max_tokens: 64}\n"
        "concurrency: 4\n"
        "scorers:\n  - name: answer_match\n    rouge_l: {threshold: 0.5}\n  - name: rouge\n    rouge_l: {}\n"
        "gate:\n  baseline: plain\n  candidate: plain\n  rules:\n"
        "    - {metric: answer_match, max_drop: 0.05}\n    - {metric: rouge, max_drop: 0.05}\n",
        encoding="utf-8",
    )
    return suite


@demo_app.command("loop")
def loop(
    home: Annotated[
        Path | None, typer.Option(help="Data directory for the demo (default: a new one under the data dir).")
    ] = None,
    suite: Annotated[Path | None, typer.Option(help="The gate's eval suite (default: the demo FAQ).")] = None,
    steps: Annotated[int, typer.Option(min=1, help="DPO training steps.")] = 40,
    share: Annotated[float, typer.Option(min=0.01, max=1.0, help="The canary's share of traffic.")] = 0.5,
    canary_requests: Annotated[int, typer.Option(min=1, help="Requests sent during the canary.")] = 60,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for training.")] = None,
    config: ConfigOption = None,
) -> None:
    """Serve → feedback → dataset → DPO → registry → gate → canary → rollout, on the
    demo model, in a few minutes."""
    console = Console()
    with reported_errors():
        settings = load_settings_for_cli(config)
        if home is None:
            home = settings.home / f"demo-loop-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        if home.exists() and any(home.iterdir()):
            fail(f"{home} is not empty: give a new or empty --home")
        # The demo model is built (once) in the configured data directory and shared.
        from keel.providers import ensure_demo_model

        built = ensure_demo_model(settings.home, progress=True)
        (home / "models").mkdir(parents=True, exist_ok=True)
        (home / "models" / MODEL).symlink_to(built, target_is_directory=True)
        started = time.monotonic()
        result = run_loop(
            home,
            console=console,
            suite=suite,
            train_steps=steps,
            canary_share=share,
            canary_requests=canary_requests,
            threads=threads,
        )
    console.print(f"done in {time.monotonic() - started:.0f}s; data in {result.home}")
    if not result.gate_passed:
        raise typer.Exit(3)
