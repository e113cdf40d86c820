"""Promotion, rollout and rollback: the runtime deployments of registered model
versions on the gateway's routes (``model_deployments``).

Every change happens in one transaction that also appends to the audit log and bumps
the ``release`` change topic, so every gateway process reloads its routes
(``ReleaseWatcher``) within about ``release.refresh_interval``.

- ``promote``: the version becomes the route's canary with ``share`` of its traffic;
  refused (``PermissionDenied``) unless its newest gate passed, except with ``force``
  by the operator or an admin key (audited as an override).
- ``rollout``: the canary becomes live (share 1.0); the live one it replaces is retired.
- ``rollback``: undoes one step: a canary is retired (production keeps the traffic);
  without a canary, the live one is retired and the one it replaced (or the
  configuration) serves again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from keel.access import Actor
from keel.core import InvalidRequest, NotFound, PermissionDenied
from keel.release._gates import latest_gate
from keel.release._tables import model_deployments
from keel.store import append_audit, bump_change

log = logging.getLogger("keel.release")

CHANGE_TOPIC = "release"
AUDIT_TARGET = "model_release"
PRODUCTION_ALIAS = "production"


@dataclass(frozen=True, slots=True)
class ModelDeployment:
    """A runtime deployment of one model version on a route (the gateway's
    ``RuntimeDeployment``)."""

    id: str
    route: str
    name: str
    model: str
    version: int
    path: str
    provider: str | None
    share: float
    state: str  # canary | live | retired
    created_at: datetime
    updated_at: datetime
    created_by: str
    previous_id: str | None = None
    previous_alias_version: int | None = None
    gate_id: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "path": self.path,
            "provider": self.provider,
            "share": self.share,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "created_by": self.created_by,
            "previous_id": self.previous_id,
            "previous_alias_version": self.previous_alias_version,
            "gate_id": self.gate_id,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class RouteRelease:
    """What serves a route beyond its configuration: a live and a canary deployment."""

    route: str
    live: ModelDeployment | None
    canary: ModelDeployment | None

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "live": self.live.to_json() if self.live else None,
            "canary": self.canary.to_json() if self.canary else None,
        }


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """``retired``: the deployment taken off; ``restored``: the live one serving again
    (None: the route's configured deployments, or the production alongside a canary)."""

    route: str
    retired: ModelDeployment
    restored: ModelDeployment | None
    alias_restored_to: int | None = None


def deployment_name(model: str, version: int) -> str:
    """The name a model version's deployment has in the gateway and the request log."""
    return f"{model}@v{version}"


def active_deployments(engine: Engine) -> list[ModelDeployment]:
    """Every canary and live deployment (what the gateway overlays on its routes)."""
    query = select(model_deployments).where(model_deployments.c.state.in_(("canary", "live")))
    with engine.connect() as connection:
        return [_deployment(row) for row in connection.execute(query.order_by(model_deployments.c.route))]


def route_release(connection: Connection | Engine, route: str) -> RouteRelease:
    if isinstance(connection, Engine):
        with connection.connect() as conn:
            return route_release(conn, route)
    rows = connection.execute(
        select(model_deployments).where(
            model_deployments.c.route == route, model_deployments.c.state.in_(("canary", "live"))
        )
    )
    found = {row.state: _deployment(row) for row in rows}
    return RouteRelease(route, found.get("live"), found.get("canary"))


def deployment_history(engine: Engine, route: str | None = None, *, limit: int = 50) -> list[ModelDeployment]:
    """Deployments (retired ones too), newest change first."""
    query = select(model_deployments).order_by(model_deployments.c.updated_at.desc()).limit(limit)
    if route is not None:
        query = query.where(model_deployments.c.route == route)
    with engine.connect() as connection:
        return [_deployment(row) for row in connection.execute(query)]


def can_force(actor: Actor) -> bool:
    """The operator at the command line (who holds the database) or an admin key."""
    return actor.principal is None or actor.principal.is_admin


def promote(
    engine: Engine,
    *,
    route: str,
    model: str,
    version: int,
    path: str,
    share: float,
    actor: Actor,
    force: bool = False,
    provider: str | None = None,
) -> ModelDeployment:
    """Make ``model`` version ``version`` (its model directory ``path``) the canary of
    ``route`` with ``share`` of its traffic. A canary of another version is retired
    (replaced); the same version's canary only changes its share."""
    if not 0 < share <= 1:
        raise InvalidRequest(f"share must be in (0, 1], not {share:g}", param="share")
    if force and not can_force(actor):
        raise PermissionDenied("Only an admin can promote a model version without a passing gate.")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        gate = latest_gate(connection, model, version)
        refusal = None
        if gate is None:
            refusal = (
                f"{model} v{version} has no gate verdict: "
                f"run `keel models gate {model} --candidate {version} --suite SUITE`"
            )
        elif not gate.passed:
            why = "; ".join(gate.failures()) or gate.note or "the gate failed"
            refusal = (
                f"{model} v{version} failed its gate (suite {gate.suite}, eval run {gate.eval_run_id}): {why}"
            )
        if refusal is not None and not force:
            raise PermissionDenied(f"Promotion refused: {refusal}. An admin may override it with --force.")
        before = route_release(connection, route)
        if before.live is not None and (before.live.model, before.live.version) == (model, version):
            raise InvalidRequest(f"{model} v{version} is already live on {route!r}")
        name = deployment_name(model, version)
        canary = before.canary
        if canary is not None and (canary.model, canary.version) == (model, version):
            connection.execute(
                update(model_deployments)
                .where(model_deployments.c.id == canary.id)
                .values(share=share, updated_at=now)
            )
            deployment_id = canary.id
        else:
            if canary is not None:
                _retire(connection, canary.id, now, f"replaced by {name}")
            deployment_id = uuid.uuid4().hex
            connection.execute(
                insert(model_deployments).values(
                    id=deployment_id,
                    route=route,
                    name=name,
                    model=model,
                    version=version,
                    path=path,
                    provider=provider,
                    share=share,
                    state="canary",
                    created_at=now,
                    updated_at=now,
                    created_by=actor.label[:255],
                    gate_id=gate.id if gate is not None else None,
                )
            )
        after = route_release(connection, route)
        append_audit(
            connection,
            actor=actor.label,
            action="model.promote.forced" if refusal is not None else "model.promote",
            target_type=AUDIT_TARGET,
            target_id=route,
            before=before.to_json(),
            after=after.to_json() | ({"override": refusal} if refusal is not None else {}),
        )
        bump_change(connection, CHANGE_TOPIC)
    if refusal is not None:
        log.warning("%s promoted %s on %s without a passing gate: %s", actor.label, name, route, refusal)
    assert after.canary is not None and after.canary.id == deployment_id
    return after.canary


def rollout(engine: Engine, route: str, *, actor: Actor, tracking_uri: str | None = None) -> ModelDeployment:
    """Make the route's canary live (share 1.0), retiring the live one it replaces.
    With ``tracking_uri``, the model's ``production`` alias moves to its version."""
    previous_alias: int | None = None
    current = route_release(engine, route)
    if current.canary is None:
        raise NotFound(f"route {route!r} has no canary to roll out")
    if tracking_uri is not None:
        previous_alias = _alias_version(current.canary.model, tracking_uri)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        before = route_release(connection, route)
        canary = before.canary
        if canary is None or canary.id != current.canary.id:
            raise InvalidRequest(f"the canary of {route!r} changed meanwhile: look again")
        if before.live is not None:
            _retire(connection, before.live.id, now, f"replaced by {canary.name}")
        connection.execute(
            update(model_deployments)
            .where(model_deployments.c.id == canary.id)
            .values(
                state="live",
                share=1.0,
                updated_at=now,
                previous_id=before.live.id if before.live is not None else None,
                previous_alias_version=previous_alias,
            )
        )
        after = route_release(connection, route)
        append_audit(
            connection,
            actor=actor.label,
            action="model.rollout",
            target_type=AUDIT_TARGET,
            target_id=route,
            before=before.to_json(),
            after=after.to_json(),
        )
        bump_change(connection, CHANGE_TOPIC)
    assert after.live is not None
    if tracking_uri is not None:
        from keel.training import set_alias

        set_alias(after.live.model, PRODUCTION_ALIAS, after.live.version, tracking_uri=tracking_uri)
    return after.live


def rollback(
    engine: Engine,
    route: str,
    *,
    actor: Actor,
    reason: str = "",
    tracking_uri: str | None = None,
    automatic: bool = False,
    only_canary: str | None = None,
) -> RollbackResult:
    """Undo the route's last release step (see the module doc). ``only_canary``: roll
    back only if that canary (by id) is still the route's canary (the watcher's guard
    against rolling back a newer one)."""
    now = datetime.now(UTC)
    note = f"rolled back by {actor.label}" + (f": {reason}" if reason else "")
    with engine.begin() as connection:
        before = route_release(connection, route)
        restored: ModelDeployment | None = None
        if before.canary is not None:
            retired = before.canary
        elif only_canary is not None:
            raise NotFound(f"route {route!r} has no canary to roll back")
        elif before.live is not None:
            retired = before.live
            if retired.previous_id is not None:
                connection.execute(
                    update(model_deployments)
                    .where(model_deployments.c.id == retired.previous_id)
                    .values(state="live", share=1.0, updated_at=now, note=None)
                )
        else:
            raise NotFound(f"route {route!r} has no canary or live model deployment to roll back")
        if only_canary is not None and retired.id != only_canary:
            raise InvalidRequest(f"the canary of {route!r} changed meanwhile: not rolled back")
        _retire(connection, retired.id, now, note)
        after = route_release(connection, route)
        restored = after.live if retired.state == "live" else None
        append_audit(
            connection,
            actor=actor.label,
            action="model.rollback.auto" if automatic else "model.rollback",
            target_type=AUDIT_TARGET,
            target_id=route,
            before=before.to_json(),
            after=after.to_json() | ({"reason": reason} if reason else {}),
        )
        bump_change(connection, CHANGE_TOPIC)
    alias_to = None
    if tracking_uri is not None and retired.state == "live" and retired.previous_alias_version is not None:
        from keel.training import set_alias

        set_alias(retired.model, PRODUCTION_ALIAS, retired.previous_alias_version, tracking_uri=tracking_uri)
        alias_to = retired.previous_alias_version
    return RollbackResult(route, retired, restored, alias_to)


def _alias_version(model: str, tracking_uri: str) -> int | None:
    from keel.training import resolve_model

    try:
        return resolve_model(model, PRODUCTION_ALIAS, tracking_uri=tracking_uri).version
    except NotFound:
        return None


def _retire(connection: Connection, deployment_id: str, now: datetime, note: str) -> None:
    connection.execute(
        update(model_deployments)
        .where(model_deployments.c.id == deployment_id)
        .values(state="retired", updated_at=now, note=note[:2000])
    )


def _deployment(row: Any) -> ModelDeployment:
    return ModelDeployment(
        id=row.id,
        route=row.route,
        name=row.name,
        model=row.model,
        version=row.version,
        path=row.path,
        provider=row.provider,
        share=float(row.share),
        state=row.state,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        previous_id=row.previous_id,
        previous_alias_version=row.previous_alias_version,
        gate_id=row.gate_id,
        note=row.note,
    )
