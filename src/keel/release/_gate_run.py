"""``keel models gate``: an eval suite (keel.evals) run on a candidate model version
against a baseline version (by default the one the ``production`` alias names), both
served by a gateway as ``local`` deployments, and its verdict recorded.

The gateway is the caller's (keel.server is above this package): ``plan_gate`` returns
the settings with two extra routes, one per version; the caller serves them (e.g.
``keel.server.embedded_gateway``) and passes the base URL to ``run_gate``. The suite's
``models`` become the two routes, its prompts the one its gate's baseline uses (what
production traffic is sent with), and its gate compares the two routes with its own
rules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from keel.core import (
    ConfigError,
    ConfigProblem,
    DeploymentSettings,
    KeelSettings,
    ProviderSettings,
    RouteSettings,
)
from keel.evals import Runner, RunOptions, RunResults, Suite, load_suite, prepare
from keel.release._gates import GateRecord, record_gate

# The provider entry serving the gate's routes when the configuration has no ``local`` one.
GATE_LOCAL_PROVIDER = "keel-gate-local"


@dataclass(frozen=True, slots=True)
class GateSide:
    """One model version to serve: ``path`` is its model directory (or, with a
    configured ``provider``, the model id that provider knows). ``provider`` overrides
    the plan's for this side."""

    version: int
    path: str
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class GatePlan:
    model: str
    baseline: GateSide
    candidate: GateSide
    baseline_route: str
    candidate_route: str
    settings: KeelSettings


@dataclass(frozen=True, slots=True)
class GateOutcome:
    record: GateRecord
    results: RunResults


def gate_route(model: str, version: int) -> str:
    """The route a version is served on during its gate (and named by in the eval run)."""
    return f"gate:{model}@v{version}"


def plan_gate(
    settings: KeelSettings,
    model: str,
    *,
    candidate: GateSide,
    baseline: GateSide,
    provider: str | None = None,
) -> GatePlan:
    """``settings`` plus a route for each version (served by ``provider``, a configured
    provider entry, or a local one), without access control: the gate's gateway is the
    operator's own and listens on 127.0.0.1 only."""
    if candidate.version == baseline.version:
        raise ConfigError(
            [ConfigProblem("--candidate", f"the candidate is the baseline (v{candidate.version})")]
        )
    providers = dict(settings.providers)
    models = dict(settings.models)
    routes = []
    for side in (baseline, candidate):
        serving = side.provider or provider
        if serving is None:
            serving = next((n for n, p in providers.items() if p.type == "local"), None)
            if serving is None:
                serving = GATE_LOCAL_PROVIDER
                providers[serving] = ProviderSettings(type="local")
        elif serving not in providers:
            raise ConfigError([ConfigProblem("--provider", f"unknown provider {serving!r}")])
        route = gate_route(model, side.version)
        deployment = DeploymentSettings(provider=serving, model=side.path, name=route)
        models[route] = RouteSettings(deployments=[deployment])
        routes.append(route)
    access = settings.access.model_copy(update={"enabled": False, "create_first_admin": False})
    served = settings.model_copy(update={"providers": providers, "models": models, "access": access})
    return GatePlan(model, baseline, candidate, routes[0], routes[1], served)


def model_suite(suite: Suite, baseline_route: str, candidate_route: str) -> Suite:
    """``suite`` comparing the two routes: one prompt (the gate baseline's, else the
    candidate's, else the first), both routes as its models, its gate between them."""
    if suite.gate is None:
        raise ConfigError(
            [ConfigProblem(f"{suite.path}: gate", "a model gate needs the suite's gate: rules")]
        )
    gate = suite.gate
    prompts = suite.prompts
    prefix = "messages"
    if prompts:
        labels = [(s or "").split(" / ")[0] for s in (gate.baseline, gate.candidate)]
        chosen = next((p for label in labels for p in prompts if p.label == label), prompts[0])
        prompts = (chosen,)
        prefix = chosen.label
    baseline, candidate = f"{prefix} / {baseline_route}", f"{prefix} / {candidate_route}"
    source: dict[str, Any] = dict(suite.source)
    source["models"] = [baseline_route, candidate_route]
    source["model_gate"] = {"baseline": baseline_route, "candidate": candidate_route, "prompt": prefix}
    return dataclasses.replace(
        suite,
        prompts=prompts,
        models=(baseline_route, candidate_route),
        gate=gate.model_copy(update={"baseline": baseline, "candidate": candidate}),
        source=source,
    )


async def run_gate(
    engine: Engine,
    suite: Suite | Path,
    plan: GatePlan,
    *,
    base_url: str,
    actor: str,
    api_key: str | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> GateOutcome:
    """Run the suite on the plan's two routes through the gateway at ``base_url`` and
    record the verdict. A run that stops early (cost cap) is recorded as failed."""
    from keel.prompts import PromptRegistry

    loaded = suite if isinstance(suite, Suite) else load_suite(suite)
    rewritten = model_suite(loaded, plan.baseline_route, plan.candidate_route)
    prepared = prepare(rewritten, PromptRegistry(engine).get_version)
    options = RunOptions(base_url=base_url, api_key=api_key, progress=progress, use_cache=use_cache)
    results = await Runner(engine, options).run(prepared)
    checks: list[dict[str, Any]] = []
    note = ""
    if results.status != "complete":
        note = f"the eval run did not finish ({results.status}): {results.note}"
    elif results.gate is None:
        note = "the eval run has no gate verdict"
    else:
        checks = [check.to_json() for check in results.gate.checks]
    passed = not note and results.gate is not None and results.gate.passed
    record = record_gate(
        engine,
        model=plan.model,
        version=plan.candidate.version,
        baseline_version=plan.baseline.version,
        suite=loaded.name,
        eval_run_id=results.run_id,
        passed=passed,
        checks=checks,
        actor=actor,
        note=note,
    )
    return GateOutcome(record, results)
