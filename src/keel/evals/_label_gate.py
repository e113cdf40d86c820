"""The prompt registry's evaluation gate: with ``prompts.require_eval_gate`` on, a
protected label (``production``) moves only to a version that passed an eval gate, i.e.
a complete ``keel eval run`` whose gate passed with that version as its candidate
(``keel eval run SUITE --candidate support-answer#3``). Rollback is not gated: it returns
to a version that was already live (see ``PromptRegistry``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from keel.core import PermissionDenied
from keel.evals._tables import eval_runs
from keel.prompts import PromptVersion

# Enough history to find the gate of any version still worth promoting.
_RECENT_RUNS = 2000


class EvalLabelGate:
    """A ``keel.prompts.LabelGate``; ``suite`` limits the evidence to one suite's runs."""

    def __init__(self, engine: Engine, *, suites: dict[str, str] | None = None) -> None:
        self.engine = engine
        self.suites = dict(suites or {})

    def check(self, version: PromptVersion, label: str, *, protected: bool) -> None:
        if not protected:
            return
        suite = self.suites.get(version.prompt_name)
        if self.passing_run(version, suite) is None:
            where = f" of suite {suite!r}" if suite else ""
            raise PermissionDenied(
                f"Label '{label}' is protected: version {version.ref} has not passed an eval gate{where}. "
                f"Run `keel eval run SUITE --candidate {version.ref}` and move the label once it passes."
            )

    def passing_run(self, version: PromptVersion, suite: str | None = None) -> str | None:
        """The id of the newest complete run whose gate passed with ``version`` as its
        candidate, or None."""
        query = (
            select(eval_runs.c.id, eval_runs.c.config)
            .where(eval_runs.c.status == "complete", eval_runs.c.gate_passed.is_(True))
            .order_by(eval_runs.c.created_at.desc())
            .limit(_RECENT_RUNS)
        )
        if suite is not None:
            query = query.where(eval_runs.c.suite == suite)
        with self.engine.connect() as connection:
            for run_id, config in connection.execute(query):
                if _candidate_version(config) == version.ref:
                    return str(run_id)
        return None


def _candidate_version(config: Any) -> str | None:
    if not isinstance(config, dict):
        return None
    chosen = config.get("gate_variants")
    if not chosen or len(chosen) != 2:
        return None
    for variant in config.get("variants", []):
        if variant.get("id") == chosen[1]:
            return str(variant.get("prompt_version"))
    return None
