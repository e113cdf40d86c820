"""Guardrails: offline input and output scanners, policies, redaction.

Scanners are small factories registered with ``@guard`` (``pii``, ``secrets``,
``injection``, ``banned_substrings``, ``banned_topics``, ``regex``, ``max_tokens``,
``language``, ``json``, ``refusal``, ``canary``, ``urls``); a ``Policy`` runs a list of
them on a request's input and on the model's output and blocks, redacts or flags.
``keel.guards._eval`` measures them on the labelled sets in ``keel/data/guards``.
"""

# Importing the scanner modules registers them.
from keel.guards import _generic, _injection, _language, _output, _pii, _secrets  # noqa: F401
from keel.guards._language import detect_language
from keel.guards._output import new_canary, plant_canary
from keel.guards._policy import (
    BUILTIN_POLICY,
    Decision,
    Policy,
    PolicyOutcome,
    PolicyScanner,
    build_policies,
    build_policy,
    builtin_policy,
)
from keel.guards._redact import Redactions, StreamRestorer, redact, restore
from keel.guards._redact_json import JsonRedactor
from keel.guards._redteam import Attack, RedteamReport, Target, load_attacks, run_attacks
from keel.guards._registry import build_scanner, guard, guards
from keel.guards._result import GuardResult, RuleScanner, ScanContext, Scanner, Span, Stage, Verdict
from keel.guards._stream import StreamGuard, StreamStep
from keel.guards._text import ensure_text

__all__ = [
    "BUILTIN_POLICY",
    "Attack",
    "Decision",
    "GuardResult",
    "JsonRedactor",
    "Policy",
    "PolicyOutcome",
    "PolicyScanner",
    "Redactions",
    "RedteamReport",
    "RuleScanner",
    "ScanContext",
    "Scanner",
    "Span",
    "Stage",
    "StreamGuard",
    "StreamRestorer",
    "StreamStep",
    "Target",
    "Verdict",
    "build_policies",
    "build_policy",
    "build_scanner",
    "builtin_policy",
    "detect_language",
    "ensure_text",
    "guard",
    "guards",
    "load_attacks",
    "new_canary",
    "plant_canary",
    "redact",
    "restore",
    "run_attacks",
]
