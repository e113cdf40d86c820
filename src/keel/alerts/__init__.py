"""Alerting: rules over spend, errors, latency, guards and evals; notifications by
webhook, Slack and email, with de-duplication, a resolved notice and a history.

The server runs one ``AlertEngine`` (``start``/``stop`` in its lifespan); every gateway
process may run one against the same store, and each transition is still notified once.
Rule kinds (``alerts.rules[].kind``): ``budget_used``, ``spend_rate``, ``error_rate``,
``latency_p95``, ``ttft_p95``, ``guard_trigger_rate``, ``eval_gate_failed``, and any
registered with ``@alert_signal``. Channel types: ``webhook``, ``slack``, ``email``, and
any registered with ``@notifier``. Rules may also be managed in the console
(``add_rule``/``delete_rule``: stored in the database, picked up by every engine at its
next evaluation). See docs/alerts.md.
"""

from keel.alerts._channels import slack_payload
from keel.alerts._engine import AlertEngine
from keel.alerts._managed import ManagedRule, add_rule, check_rule, delete_rule, list_managed_rules
from keel.alerts._notify import AlertMessage, Channel, Delivery, Notifier, notifier, notifiers, sample_message
from keel.alerts._rules import build_channels, build_rules
from keel.alerts._signal import (
    AlertRule,
    Observation,
    Signal,
    SignalContext,
    alert_signal,
    alert_signals,
    format_window,
)
from keel.alerts._signals_log import LogFilters
from keel.alerts._signals_store import BudgetFilters
from keel.alerts._store import AlertEvent, SeriesState, active_alerts, alert_history, alert_states
from keel.alerts._tables import alert_events, alert_rules, alert_state

__all__ = [
    "AlertEngine",
    "AlertEvent",
    "AlertMessage",
    "AlertRule",
    "BudgetFilters",
    "Channel",
    "Delivery",
    "LogFilters",
    "ManagedRule",
    "Notifier",
    "Observation",
    "SeriesState",
    "Signal",
    "SignalContext",
    "active_alerts",
    "add_rule",
    "alert_events",
    "alert_history",
    "alert_rules",
    "alert_signal",
    "alert_signals",
    "alert_state",
    "alert_states",
    "build_channels",
    "build_rules",
    "check_rule",
    "delete_rule",
    "format_window",
    "list_managed_rules",
    "notifier",
    "notifiers",
    "sample_message",
    "slack_payload",
]
