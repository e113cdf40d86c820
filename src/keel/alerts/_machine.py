"""The state machine of one series: ok → pending (while ``for`` has not passed) →
firing → ok again (resolved). Pure: it plans ``Change``s from what the store held and
what the rule observes now; ``_store.apply_change`` records them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from keel.alerts._signal import AlertRule, Observation
from keel.alerts._store import Change, SeriesState, fingerprint


def breached(rule: AlertRule, observation: Observation) -> bool:
    """Bad when the value reaches the threshold (the rule's, else the series' own)."""
    threshold = rule.threshold if rule.threshold is not None else observation.threshold
    return observation.value is not None and threshold is not None and observation.value >= threshold


def plan(
    rule: AlertRule,
    observations: Sequence[Observation],
    states: Mapping[tuple[str, str], SeriesState],
    now: datetime,
) -> list[Change]:
    """The changes one evaluation of ``rule`` makes. A series the rule no longer
    observes (a deleted budget, a team without traffic) counts as fine."""
    changes: list[Change] = []
    seen: set[str] = set()
    for observation in observations:
        key = fingerprint(observation.labels)
        if key in seen:  # a signal that repeats a series: the first one counts
            continue
        seen.add(key)
        change = _step(rule, key, observation, states.get((rule.name, key)), now)
        if change is not None:
            changes.append(change)
    for (name, key), previous in states.items():
        if name == rule.name and key not in seen and previous.state != "ok":
            gone = Observation(
                previous.labels, None, f"no data now (was: {previous.summary})", previous.team_id
            )
            change = _step(rule, key, gone, previous, now)
            if change is not None:
                changes.append(change)
    return changes


def _step(
    rule: AlertRule, key: str, observation: Observation, previous: SeriesState | None, now: datetime
) -> Change | None:
    was = previous.state if previous is not None else "ok"
    bad = breached(rule, observation)
    if was == "ok" and not bad:
        return None
    threshold = rule.threshold if rule.threshold is not None else observation.threshold
    pending_since = previous.pending_since if previous is not None else None
    started_at = previous.started_at if previous is not None else None
    resolved_at = previous.resolved_at if previous is not None else None

    def change(state: str, **changed: object) -> Change:
        values: dict[str, object] = {
            "rule": rule.name,
            "kind": rule.kind,
            "fingerprint": key,
            "labels": dict(observation.labels),
            "state": state,
            "severity": rule.severity,
            "team_id": observation.team_id,
            "value": observation.value,
            "threshold": threshold,
            "summary": observation.summary,
            "pending_since": pending_since,
            "started_at": started_at,
            "resolved_at": resolved_at,
            "event": None,
            "expected": previous.version if previous is not None else None,
        }
        values.update(changed)
        return Change(**values)  # type: ignore[arg-type]

    if bad:
        if was == "ok" and rule.for_.total_seconds() > 0:
            return change("pending", pending_since=now)
        if was == "ok" or (
            was == "pending" and pending_since is not None and now - pending_since >= rule.for_
        ):
            return change(
                "firing",
                pending_since=pending_since if was == "pending" else now,
                started_at=now,
                resolved_at=None,
                event="firing",
            )
        return change(was, refresh=True)  # still pending, or still firing: no message
    if was == "pending":
        return change("ok", pending_since=None)
    return change("ok", pending_since=None, resolved_at=now, event="resolved")
