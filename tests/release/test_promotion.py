"""Promotion is gated; overrides are for admins and audited; rollout and rollback move
the route's deployments (store level: what the gateway reloads)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from keel.access import Actor, Principal
from keel.core import InvalidRequest, NotFound, PermissionDenied
from keel.release import (
    active_deployments,
    deployment_history,
    promote,
    record_gate,
    rollback,
    rollout,
    route_release,
)
from keel.store import read_audit, read_changes
from tests.release.conftest import OPERATOR, passing_gate


def _promote(engine: Engine, version: int, **kwargs: object) -> object:
    args: dict[str, object] = {
        "route": "chat",
        "model": "m",
        "version": version,
        "path": f"/models/m-v{version}",
        "share": 0.2,
        "actor": OPERATOR,
    }
    return promote(engine, **(args | kwargs))  # type: ignore[arg-type]


def _failing_gate(engine: Engine, version: int) -> None:
    record_gate(
        engine,
        model="m",
        version=version,
        baseline_version=1,
        suite="faq",
        eval_run_id="run-1",
        passed=False,
        checks=[
            {
                "rule": "accuracy must not drop by more than 0.02 (p < 0.05)",
                "passed": False,
                "detail": "0.9 → 0.6",
            },
            {"rule": "safe must pass", "passed": True, "detail": "all passed"},
        ],
        actor="test",
    )


def test_promotion_needs_a_passing_gate(engine: Engine) -> None:
    with pytest.raises(PermissionDenied, match="no gate verdict"):
        _promote(engine, 2)
    _failing_gate(engine, 2)
    with pytest.raises(PermissionDenied) as refused:
        _promote(engine, 2)
    assert "failed its gate (suite faq, eval run run-1)" in refused.value.message
    assert "0.9 → 0.6" in refused.value.message and "safe must pass" not in refused.value.message
    assert active_deployments(engine) == []
    assert read_audit(engine, target_type="model_release") == []
    # The newest verdict counts: a later pass allows it.
    passing_gate(engine, "m", 2)
    deployment = _promote(engine, 2)
    assert deployment.state == "canary" and deployment.share == 0.2 and deployment.name == "m@v2"  # type: ignore[attr-defined]


def test_force_is_for_admins_and_is_audited(engine: Engine) -> None:
    _failing_gate(engine, 2)
    member = Actor.of_key(Principal("k1", "dev", "member", "team-1"))
    team_admin = Actor.of_key(Principal("k2", "lead", "team_admin", "team-1"))
    for actor in (member, team_admin):
        with pytest.raises(PermissionDenied, match="Only an admin"):
            _promote(engine, 2, force=True, actor=actor)
    version_before = read_changes(engine).get("release", 0)
    admin = Actor.of_key(Principal("k3", "root", "admin", None))
    deployment = _promote(engine, 2, force=True, actor=admin)
    assert deployment.state == "canary"  # type: ignore[attr-defined]
    assert read_changes(engine)["release"] == version_before + 1
    [entry] = read_audit(engine, target_type="model_release")
    assert entry.action == "model.promote.forced"
    assert entry.actor == admin.label and entry.target_id == "chat"
    assert entry.before == {"route": "chat", "live": None, "canary": None}
    assert entry.after is not None and entry.after["canary"]["name"] == "m@v2"
    assert "failed its gate" in entry.after["override"]
    # The operator at the command line may force too.
    _failing_gate(engine, 3)
    _promote(engine, 3, force=True, actor=OPERATOR)
    assert read_audit(engine, target_type="model_release")[0].actor.startswith("cli:")


def test_rollout_and_rollback_walk_the_route_back(engine: Engine) -> None:
    for version in (2, 3, 4):
        passing_gate(engine, "m", version)
    _promote(engine, 2)
    live2 = rollout(engine, "chat", actor=OPERATOR)
    assert (live2.state, live2.share, live2.previous_id) == ("live", 1.0, None)
    _promote(engine, 3, share=0.5)
    live3 = rollout(engine, "chat", actor=OPERATOR)
    assert live3.previous_id == live2.id
    _promote(engine, 4)
    # A second promotion of another version replaces the canary; the same version only
    # changes its share.
    again = _promote(engine, 4, share=0.4)
    assert again.share == 0.4  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest, match="already live"):
        _promote(engine, 3)

    # 1: the canary goes; the live v3 stays.
    undone = rollback(engine, "chat", actor=OPERATOR, reason="looks off")
    assert undone.retired.name == "m@v4" and undone.restored is None
    release = route_release(engine, "chat")
    assert release.canary is None and release.live is not None and release.live.name == "m@v3"
    # 2: live v3 goes, v2 is live again.
    undone = rollback(engine, "chat", actor=OPERATOR)
    assert undone.retired.name == "m@v3" and undone.restored is not None and undone.restored.name == "m@v2"
    assert [d.name for d in active_deployments(engine)] == ["m@v2"]
    # 3: v2 goes; the configuration serves again.
    rollback(engine, "chat", actor=OPERATOR)
    assert active_deployments(engine) == []
    with pytest.raises(NotFound):
        rollback(engine, "chat", actor=OPERATOR)
    actions = [e.action for e in read_audit(engine, target_type="model_release")]
    assert actions == [
        "model.rollback", "model.rollback", "model.rollback", "model.promote", "model.promote",
        "model.rollout", "model.promote", "model.rollout", "model.promote",
    ]  # fmt: skip
    history = deployment_history(engine, "chat")
    assert {d.state for d in history} == {"retired"}
    assert any(d.note and "looks off" in d.note for d in history)


def test_bad_share_and_a_missing_canary(engine: Engine) -> None:
    passing_gate(engine, "m", 2)
    for share in (0.0, 1.5):
        with pytest.raises(InvalidRequest, match="share"):
            _promote(engine, 2, share=share)
    with pytest.raises(NotFound, match="no canary"):
        rollout(engine, "chat", actor=OPERATOR)
