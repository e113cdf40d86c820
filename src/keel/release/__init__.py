"""Releasing trained models: a gate (an eval suite on the candidate version against
production), promotion to a canary with a share of a route's traffic, the canary's
live metrics against production, rollout, and rollback (by hand or on a threshold).

- ``plan_gate`` / ``run_gate``: the suite on two gateway routes, one per version; the
  verdict goes to ``model_gates``.
- ``promote`` / ``rollout`` / ``rollback``: ``model_deployments``, audited, with the
  ``release`` change topic bumped so every gateway reloads.
- ``canary_report`` / ``check_canaries``: the comparison and the automatic rollback.
- ``ReleaseWatcher``: the server's task applying deployments to its router and checking
  canaries periodically.
"""

from keel.core._settings_release import ReleaseSettings
from keel.release._canary import CanaryReport, MetricCheck, canary_report, two_proportion_p
from keel.release._deployments import (
    AUDIT_TARGET,
    CHANGE_TOPIC,
    PRODUCTION_ALIAS,
    ModelDeployment,
    RollbackResult,
    RouteRelease,
    active_deployments,
    can_force,
    deployment_history,
    deployment_name,
    promote,
    rollback,
    rollout,
    route_release,
)
from keel.release._gate_run import (
    GATE_LOCAL_PROVIDER,
    GateOutcome,
    GatePlan,
    GateSide,
    gate_route,
    model_suite,
    plan_gate,
    run_gate,
)
from keel.release._gates import GateRecord, latest_gate, list_gates, record_gate
from keel.release._tables import model_deployments, model_gates
from keel.release._watcher import (
    CanaryCheck,
    ReleaseWatcher,
    canary_routes,
    check_canaries,
    release_settings,
)

__all__ = [
    "AUDIT_TARGET",
    "CHANGE_TOPIC",
    "GATE_LOCAL_PROVIDER",
    "PRODUCTION_ALIAS",
    "CanaryCheck",
    "CanaryReport",
    "GateOutcome",
    "GatePlan",
    "GateRecord",
    "GateSide",
    "MetricCheck",
    "ModelDeployment",
    "ReleaseSettings",
    "ReleaseWatcher",
    "RollbackResult",
    "RouteRelease",
    "active_deployments",
    "can_force",
    "canary_report",
    "canary_routes",
    "check_canaries",
    "deployment_history",
    "deployment_name",
    "gate_route",
    "latest_gate",
    "list_gates",
    "model_deployments",
    "model_gates",
    "model_suite",
    "plan_gate",
    "promote",
    "record_gate",
    "release_settings",
    "rollback",
    "rollout",
    "route_release",
    "run_gate",
    "two_proportion_p",
]
