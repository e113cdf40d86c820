"""``AlertEngine``: evaluates every rule every ``alerts.interval`` and notifies.

The rules are keel.yaml's plus those managed in the console (``_managed``): each
evaluation first reads the store's change topics and reloads the managed rules when the
``alerts`` topic has moved, so a rule added or deleted in any process counts from the
next round on.

One evaluation: read every series' state, observe each rule (in worker threads: signals
query the store), plan the transitions (``_machine``), claim and record each one
(``_store.apply_change``: exactly one process records a transition), then send what this
process recorded to the rule's channels, concurrently, and write the outcome of each
into the event's history row. A rule whose signal fails is logged and left as it was
for this round; a channel that fails is retried and recorded, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from keel.alerts._machine import plan
from keel.alerts._managed import TOPIC, build_managed_rules, list_managed_rules
from keel.alerts._notify import AlertMessage, Channel, Delivery, sample_message
from keel.alerts._rules import build_channels, build_rules
from keel.alerts._signal import AlertRule, SignalContext
from keel.alerts._store import (
    AlertEvent,
    Change,
    SeriesState,
    apply_change,
    load_states,
    record_notifications,
)
from keel.core import AlertSettings, NotFound
from keel.spend import BudgetState
from keel.store import read_changes

log = logging.getLogger("keel.alerts")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Recorded:
    change: Change
    event: AlertEvent
    rule: AlertRule | None  # None: a rule no longer configured (nobody to tell)


class AlertEngine:
    """Periodic evaluation (``start``/``stop``), or one evaluation (``evaluate_once``)."""

    def __init__(
        self, settings: AlertSettings, engine: Engine, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        # Bad rules or channels stop start-up here, every problem located.
        self.configured: list[AlertRule] = build_rules(settings)
        # keel.yaml's rules, then the managed ones as of ``_managed_version``.
        self.rules: list[AlertRule] = list(self.configured)
        self._managed_version: int | None = None
        self.channels: dict[str, Channel] = build_channels(settings)
        self.settings = settings
        self.engine = engine
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        # Even without keel.yaml rules: one may be added in the console at any time.
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="keel-alerts")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def budget_crossed(self, state: BudgetState) -> None:
        """The spend ledger's ``on_budget_alert``: log the crossing and evaluate now
        rather than at the next tick, so a budget alert goes out within seconds."""
        budget = state.budget
        what = "reached its limit" if state.limit_crossed else "crossed its alert threshold"
        log.warning(
            "budget %s (%s %s, %s) %s: %d of %d nano-USD spent or reserved",
            budget.id,
            budget.scope,
            budget.scope_id,
            budget.period,
            what,
            state.spent + state.reserved,
            budget.limit_nanos,
        )
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.evaluate_once()
            except Exception:  # the store may be briefly unreachable: try again next time
                log.exception("alert evaluation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.interval)

    async def evaluate_once(self, now: datetime | None = None) -> list[AlertEvent]:
        """Evaluate every rule once at ``now`` (default: the clock); returns the firing
        and resolved events this process recorded, after notifying them."""
        async with self._lock:
            at = now or self._clock()
            await self._reload_managed()
            states = await asyncio.to_thread(load_states, self.engine)
            recorded: list[_Recorded] = []
            for rule in self.rules:
                try:
                    observed = await asyncio.to_thread(
                        rule.signal.observe, SignalContext(self.engine, at, rule)
                    )
                except Exception:
                    log.exception("alert rule %s: evaluating failed; its state is unchanged", rule.name)
                    continue
                recorded += await self._apply(plan(rule, observed, states, at), rule, at)
            recorded += await self._apply(self._retired(states, at), None, at)
            return await self._notify(recorded)

    async def _reload_managed(self) -> None:
        """Rebuild the rule list when the managed rules changed since the last read."""

        def reload() -> None:
            version = read_changes(self.engine).get(TOPIC, 0)
            if version == self._managed_version:
                return
            managed = build_managed_rules(list_managed_rules(self.engine), self.settings)
            self.rules = [*self.configured, *managed]
            self._managed_version = version

        try:
            await asyncio.to_thread(reload)
        except Exception:  # keep the rules as they were; read again next round
            log.exception("reading the managed alert rules failed")

    def _retired(self, states: dict[tuple[str, str], SeriesState], now: datetime) -> list[Change]:
        """Resolve what is pending or firing for rules no longer in the configuration."""
        names = {rule.name for rule in self.rules}
        changes = []
        for (name, key), previous in states.items():
            if name in names or previous.state == "ok":
                continue
            changes.append(
                Change(
                    rule=name,
                    kind=previous.kind,
                    fingerprint=key,
                    labels=previous.labels,
                    state="ok",
                    severity=previous.severity,
                    team_id=previous.team_id,
                    value=None,
                    threshold=previous.threshold,
                    summary=f"rule {name} is no longer configured (was: {previous.summary})",
                    pending_since=None,
                    started_at=previous.started_at,
                    resolved_at=now if previous.state == "firing" else previous.resolved_at,
                    event="resolved" if previous.state == "firing" else None,
                    expected=previous.version,
                )
            )
        return changes

    async def _apply(
        self, changes: Sequence[Change], rule: AlertRule | None, now: datetime
    ) -> list[_Recorded]:
        def run() -> list[_Recorded]:
            out = []
            for change in changes:
                try:
                    event = apply_change(self.engine, change, now)
                except Exception:  # recorded ones are still told; this one is retried next time
                    log.exception("alert %s: recording a change failed", change.rule)
                    continue
                if event is not None:
                    out.append(_Recorded(change, event, rule))
            return out

        return await asyncio.to_thread(run) if changes else []

    async def _notify(self, recorded: Sequence[_Recorded]) -> list[AlertEvent]:
        async def one(item: _Recorded) -> AlertEvent:
            if item.rule is None or not item.rule.channels:
                return item.event
            message = self.message(item.change)
            names = item.rule.channels
            outcomes = await asyncio.gather(*(self.channels[name].deliver(message) for name in names))
            notifications = {name: outcome.as_json() for name, outcome in zip(names, outcomes, strict=True)}
            try:
                await asyncio.to_thread(record_notifications, self.engine, item.event.id, notifications)
            except Exception:
                log.exception("alert %s: recording its notifications failed", item.event.rule)
            return dataclasses.replace(item.event, notifications=notifications)

        return list(await asyncio.gather(*(one(item) for item in recorded)))

    def message(self, change: Change) -> AlertMessage:
        assert change.event is not None
        return AlertMessage(
            alert=change.rule,
            kind=change.kind,
            state=change.event,
            severity=change.severity,
            summary=change.summary,
            value=change.value,
            threshold=change.threshold,
            labels=dict(change.labels),
            team_id=change.team_id,
            started_at=change.started_at,
            resolved_at=change.resolved_at if change.event == "resolved" else None,
            url=self.settings.console_url,
        )

    async def send_test(self, channel: str) -> Delivery:
        """Send a test message to ``channel`` (``keel alerts test``)."""
        if channel not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none are configured"
            raise NotFound(f"No alert channel {channel!r} (known: {known}).", param="channel")
        message = sample_message(channel, self._clock(), self.settings.console_url)
        return await self.channels[channel].deliver(message)
