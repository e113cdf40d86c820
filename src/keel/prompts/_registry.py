"""The prompt registry in the store: create prompts and versions, move labels, roll back.

Every change is one transaction that also appends to the audit log and bumps the
``prompts`` change topic, so every gateway's ``PromptCatalog`` reloads within its
refresh interval. Bad input raises before anything is written.

Protected labels (``production`` unless said otherwise) move only for admins. Before a
label moves, every ``LabelGate`` is asked: the extension point for the evaluation gate
(#6), which refuses versions that have not passed the prompt's evals. Rollback skips the
gates: it returns to a version that was already live, and an emergency must not wait
for an evaluation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from keel.core import InvalidRequest, JSONObject, NotFound, PermissionDenied
from keel.prompts._diff import diff_versions
from keel.prompts._rows import version_from_row
from keel.prompts._tables import prompt_label_history, prompt_labels, prompt_versions, prompts
from keel.prompts._template import PromptType
from keel.prompts._version import (
    LATEST,
    PRODUCTION,
    PROTECTED_BY_DEFAULT,
    PromptVersion,
    VersionContent,
    check_label,
    check_prompt_name,
    check_prompt_type,
)
from keel.store import append_audit, bump_change

TOPIC = "prompts"
_T = TypeVar("_T")


class LabelGate(Protocol):
    """Asked before a label moves to a version; raises (``PermissionDenied``) to refuse.
    ``protected`` says whether the label is protected after the move."""

    def check(self, version: PromptVersion, label: str, *, protected: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class Label:
    label: str
    version: int
    protected: bool
    updated_at: datetime
    updated_by: str

    def to_json(self) -> JSONObject:
        return {
            "label": self.label,
            "version": self.version,
            "protected": self.protected,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True, slots=True)
class LabelMove:
    """One entry of a label's history."""

    label: str
    from_version: int | None
    to_version: int
    action: Literal["set", "rollback"]
    at: datetime
    actor: str

    def to_json(self) -> JSONObject:
        return {
            "label": self.label,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "action": self.action,
            "at": self.at.isoformat(),
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class PromptSummary:
    name: str
    type: PromptType
    team_id: str | None
    created_at: datetime
    latest_version: int
    labels: dict[str, Label]

    def to_json(self) -> JSONObject:
        return {
            "name": self.name,
            "type": self.type,
            "team_id": self.team_id,
            "created_at": self.created_at.isoformat(),
            "latest_version": self.latest_version,
            "labels": {name: label.to_json() for name, label in sorted(self.labels.items())},
        }


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What ``push`` did: ``created`` the prompt, added a ``changed`` version, or
    nothing (content equal to the latest version)."""

    version: PromptVersion
    created: bool
    changed: bool


def _now() -> datetime:
    return datetime.now(UTC)


class PromptRegistry:
    """Prompts in the store. Methods block (database I/O): call them from sync code or
    through ``asyncio.to_thread``. ``on_change`` runs after each committed change (the
    composition root passes the local catalog's ``reload``, so the process that made a
    change sees it at once)."""

    def __init__(
        self,
        engine: Engine,
        *,
        gates: Sequence[LabelGate] = (),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.gates = list(gates)
        self._on_change = on_change

    # -- changes ------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        type: str,
        template: object,
        variables: object = None,
        model_config: object = None,
        commit_message: str = "",
        team_id: str | None = None,
        actor: str,
    ) -> PromptVersion:
        """A new prompt with its first version."""
        check_prompt_name(name)
        prompt_type = check_prompt_type(type)
        content = VersionContent.parse(
            prompt_type, template=template, variables=variables, model_config=model_config, prompt=name
        )
        try:
            with self.engine.begin() as connection:
                version = self._create(connection, name, prompt_type, content, commit_message, team_id, actor)
        except IntegrityError:
            raise InvalidRequest(f"Prompt '{name}' already exists.", param="name") from None
        self._changed()
        return version

    def add_version(
        self,
        name: str,
        *,
        template: object,
        variables: object = None,
        model_config: object = None,
        commit_message: str = "",
        actor: str,
    ) -> PromptVersion:
        """A new version (the next number) of an existing prompt."""
        prompt = self._prompt_outside(name)
        content = VersionContent.parse(
            prompt.type, template=template, variables=variables, model_config=model_config, prompt=name
        )
        version = self._with_retry(lambda c: self._add_version(c, name, content, commit_message, actor))
        self._changed()
        return version

    def push(
        self,
        name: str,
        *,
        type: str,
        template: object,
        variables: object = None,
        model_config: object = None,
        commit_message: str = "",
        team_id: str | None = None,
        actor: str,
    ) -> PushOutcome:
        """Create the prompt, or add a version if the content differs from the latest
        one, or do nothing. Prompts-as-code: pushing the same files twice is a no-op."""
        check_prompt_name(name)
        prompt_type = check_prompt_type(type)
        content = VersionContent.parse(
            prompt_type, template=template, variables=variables, model_config=model_config, prompt=name
        )

        def run(connection: Connection) -> PushOutcome:
            row = self._prompt_row(connection, name, lock=True, missing_ok=True)
            if row is None:
                version = self._create(connection, name, prompt_type, content, commit_message, team_id, actor)
                return PushOutcome(version, created=True, changed=True)
            if row.type != prompt_type:
                raise InvalidRequest(
                    f"Prompt '{name}' is a {row.type} prompt; the pushed definition is {prompt_type}.",
                    param="type",
                )
            latest = self._latest_version(connection, row)
            if latest.content == content:
                return PushOutcome(latest, created=False, changed=False)
            version = self._add_version(connection, name, content, commit_message, actor)
            return PushOutcome(version, created=False, changed=True)

        try:
            outcome = self._with_retry(run)
        except IntegrityError:
            raise InvalidRequest(f"Prompt '{name}' was created at the same time; push again.") from None
        if outcome.changed:
            self._changed()
        return outcome

    def set_label(
        self,
        name: str,
        label: str,
        version: int,
        *,
        actor: str,
        admin: bool,
        protected: bool | None = None,
    ) -> Label:
        """Point ``label`` at ``version``. A protected label (or making one protected or
        not) needs ``admin``. Setting a label to where it already points is a no-op."""
        check_label(label)
        if label == LATEST:
            raise InvalidRequest("'latest' is automatic: it always names the highest version.", param="label")
        if protected is not None and not admin:
            raise PermissionDenied("Only an admin can protect or unprotect a label.")
        with self.engine.begin() as connection:
            prompt = self._prompt_row(connection, name, lock=True)
            target = self._version(connection, prompt, version)
            current = self._label_row(connection, prompt.id, label)
            was_protected = current.protected if current is not None else label in PROTECTED_BY_DEFAULT
            now_protected = was_protected if protected is None else protected
            if (was_protected or now_protected) and not admin:
                raise PermissionDenied(
                    f"Label '{label}' of prompt '{name}' is protected: only an admin can move it."
                )
            if current is not None and current.version == version and was_protected == now_protected:
                return _label(current)
            for gate in self.gates:
                gate.check(target, label, protected=now_protected)
            moved = self._move(connection, prompt, label, current, version, now_protected, "set", actor)
        self._changed()
        return moved

    def rollback(self, name: str, label: str, *, actor: str, admin: bool) -> Label:
        """Move ``label`` back to the version it pointed to before its last move (again
        and again: each rollback undoes one more move)."""
        check_label(label)
        with self.engine.begin() as connection:
            prompt = self._prompt_row(connection, name, lock=True)
            current = self._label_row(connection, prompt.id, label)
            if current is None:
                raise NotFound(f"Prompt '{name}' has no label '{label}'.", param="label")
            if current.protected and not admin:
                raise PermissionDenied(
                    f"Label '{label}' of prompt '{name}' is protected: only an admin can move it."
                )
            earlier = _undo_stack(self._history_rows(connection, prompt.id, label))
            if not earlier:
                raise InvalidRequest(
                    f"Label '{label}' of prompt '{name}' has no earlier version to roll back to."
                )
            moved = self._move(
                connection, prompt, label, current, earlier[-1], current.protected, "rollback", actor
            )
        self._changed()
        return moved

    # -- reads --------------------------------------------------------------------

    def list_prompts(self, *, team_id: str | None = None) -> list[PromptSummary]:
        """Every prompt by name (``team_id``: that team's and the organisation-wide ones)."""
        with self.engine.connect() as connection:
            query = select(prompts).order_by(prompts.c.name)
            if team_id is not None:
                query = query.where((prompts.c.team_id == team_id) | prompts.c.team_id.is_(None))
            rows = list(connection.execute(query))
            highest = select(prompt_versions.c.prompt_id, func.max(prompt_versions.c.version))
            latest: dict[str, int] = {
                prompt_id: number
                for prompt_id, number in connection.execute(highest.group_by(prompt_versions.c.prompt_id))
            }
            labels: dict[str, dict[str, Label]] = {}
            for row in connection.execute(select(prompt_labels)):
                labels.setdefault(row.prompt_id, {})[row.label] = _label(row)
        return [_summary(row, latest.get(row.id, 0), labels.get(row.id, {})) for row in rows]

    def get_prompt(self, name: str) -> PromptSummary:
        with self.engine.connect() as connection:
            row = self._prompt_row(connection, name)
            latest = self._latest_version(connection, row).version
            labels = {
                r.label: _label(r)
                for r in connection.execute(select(prompt_labels).where(prompt_labels.c.prompt_id == row.id))
            }
        return _summary(row, latest, labels)

    def list_versions(self, name: str) -> list[PromptVersion]:
        """Oldest first."""
        with self.engine.connect() as connection:
            prompt = self._prompt_row(connection, name)
            rows = connection.execute(
                select(prompt_versions)
                .where(prompt_versions.c.prompt_id == prompt.id)
                .order_by(prompt_versions.c.version)
            )
            return [version_from_row(prompt, row) for row in rows]

    def get_version(
        self, name: str, *, label: str | None = None, version: int | None = None
    ) -> PromptVersion:
        """By ``version``, or by ``label`` (``latest`` included); neither: ``production``."""
        if label is not None and version is not None:
            raise InvalidRequest("Name a label or a version, not both.")
        with self.engine.connect() as connection:
            prompt = self._prompt_row(connection, name)
            if version is not None:
                return self._version(connection, prompt, version)
            label = label or PRODUCTION
            if label == LATEST:
                return self._latest_version(connection, prompt)
            row = self._label_row(connection, prompt.id, label)
            if row is None:
                raise NotFound(f"Prompt '{name}' has no label '{label}'.", param="label")
            return self._version(connection, prompt, row.version)

    def label_history(self, name: str, label: str | None = None) -> list[LabelMove]:
        """Oldest first."""
        with self.engine.connect() as connection:
            prompt = self._prompt_row(connection, name)
            query = (
                select(prompt_label_history)
                .where(prompt_label_history.c.prompt_id == prompt.id)
                .order_by(prompt_label_history.c.id)
            )
            if label is not None:
                query = query.where(prompt_label_history.c.label == label)
            return [
                LabelMove(r.label, r.from_version, r.to_version, r.action, r.at, r.actor)
                for r in connection.execute(query)
            ]

    def diff(self, name: str, a: int, b: int) -> str:
        """A unified diff from version ``a`` to ``b`` (empty when their content is equal)."""
        return diff_versions(self.get_version(name, version=a), self.get_version(name, version=b))

    # -- internals ----------------------------------------------------------------

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _with_retry(self, run: Callable[[Connection], _T]) -> _T:
        # Two writers taking the same next version number: the loser retries with the next.
        for attempt in range(3):
            try:
                with self.engine.begin() as connection:
                    return run(connection)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _prompt_outside(self, name: str) -> Any:
        with self.engine.connect() as connection:
            return self._prompt_row(connection, name)

    def _prompt_row(
        self, connection: Connection, name: str, *, lock: bool = False, missing_ok: bool = False
    ) -> Any:
        query = select(prompts).where(prompts.c.name == name)
        if lock:
            # Serialises changes to one prompt on PostgreSQL (SQLite has one writer anyway).
            query = query.with_for_update()
        row = connection.execute(query).first()
        if row is None and not missing_ok:
            raise NotFound(f"Unknown prompt '{name}'.", param="name")
        return row

    def _version(self, connection: Connection, prompt: Row[Any], version: int) -> PromptVersion:
        row = connection.execute(
            select(prompt_versions).where(
                (prompt_versions.c.prompt_id == prompt.id) & (prompt_versions.c.version == version)
            )
        ).first()
        if row is None:
            raise NotFound(f"Prompt '{prompt.name}' has no version {version}.", param="version")
        return version_from_row(prompt, row)

    def _latest_version(self, connection: Connection, prompt: Row[Any]) -> PromptVersion:
        row = connection.execute(
            select(prompt_versions)
            .where(prompt_versions.c.prompt_id == prompt.id)
            .order_by(prompt_versions.c.version.desc())
            .limit(1)
        ).one()
        return version_from_row(prompt, row)

    def _label_row(self, connection: Connection, prompt_id: str, label: str) -> Any:
        return connection.execute(
            select(prompt_labels).where(
                (prompt_labels.c.prompt_id == prompt_id) & (prompt_labels.c.label == label)
            )
        ).first()

    def _history_rows(self, connection: Connection, prompt_id: str, label: str) -> list[Row[Any]]:
        return list(
            connection.execute(
                select(prompt_label_history)
                .where(
                    (prompt_label_history.c.prompt_id == prompt_id) & (prompt_label_history.c.label == label)
                )
                .order_by(prompt_label_history.c.id)
            )
        )

    def _create(
        self,
        connection: Connection,
        name: str,
        prompt_type: PromptType,
        content: VersionContent,
        commit_message: str,
        team_id: str | None,
        actor: str,
    ) -> PromptVersion:
        now = _now()
        prompt_id = uuid.uuid4().hex
        connection.execute(
            insert(prompts).values(id=prompt_id, name=name, type=prompt_type, team_id=team_id, created_at=now)
        )
        prompt = self._prompt_row(connection, name)
        version = self._insert_version(connection, prompt, 1, content, commit_message, actor, now)
        append_audit(
            connection,
            actor=actor,
            action="prompt.create",
            target_type="prompt",
            target_id=name,
            team_id=team_id,
            after={"type": prompt_type, "version": 1, "commit_message": commit_message},
        )
        bump_change(connection, TOPIC)
        return version

    def _add_version(
        self, connection: Connection, name: str, content: VersionContent, commit_message: str, actor: str
    ) -> PromptVersion:
        prompt = self._prompt_row(connection, name, lock=True)
        highest = connection.execute(
            select(func.max(prompt_versions.c.version)).where(prompt_versions.c.prompt_id == prompt.id)
        ).scalar_one()
        number = (highest or 0) + 1
        version = self._insert_version(connection, prompt, number, content, commit_message, actor, _now())
        append_audit(
            connection,
            actor=actor,
            action="prompt.version.create",
            target_type="prompt",
            target_id=name,
            team_id=prompt.team_id,
            after={"version": number, "commit_message": commit_message},
        )
        bump_change(connection, TOPIC)
        return version

    def _insert_version(
        self,
        connection: Connection,
        prompt: Row[Any],
        number: int,
        content: VersionContent,
        commit_message: str,
        actor: str,
        now: datetime,
    ) -> PromptVersion:
        if not isinstance(commit_message, str):
            raise InvalidRequest("'commit_message' must be a string.", param="commit_message")
        values = {
            "prompt_id": prompt.id,
            "version": number,
            "template": content.template,
            "variables": [v.to_json() for v in content.variables],
            "model_config": content.model_config,
            "commit_message": commit_message,
            "author": actor[:255],
            "created_at": now,
        }
        connection.execute(insert(prompt_versions).values(**values))
        return PromptVersion(
            prompt_name=prompt.name,
            prompt_type=prompt.type,
            version=number,
            template=content.template,
            variables=content.variables,
            model_config=content.model_config,
            commit_message=commit_message,
            author=actor[:255],
            created_at=now,
            team_id=prompt.team_id,
        )

    def _move(
        self,
        connection: Connection,
        prompt: Row[Any],
        label: str,
        current: Row[Any] | None,
        version: int,
        protected: bool,
        action: Literal["set", "rollback"],
        actor: str,
    ) -> Label:
        now = _now()
        values = {"version": version, "protected": protected, "updated_at": now, "updated_by": actor[:255]}
        if current is None:
            connection.execute(insert(prompt_labels).values(prompt_id=prompt.id, label=label, **values))
        else:
            connection.execute(
                update(prompt_labels)
                .where((prompt_labels.c.prompt_id == prompt.id) & (prompt_labels.c.label == label))
                .values(**values)
            )
        before = (
            None
            if current is None
            else {"label": label, "version": current.version, "protected": current.protected}
        )
        connection.execute(
            insert(prompt_label_history).values(
                prompt_id=prompt.id,
                label=label,
                from_version=None if current is None else current.version,
                to_version=version,
                action=action,
                at=now,
                actor=actor[:255],
            )
        )
        append_audit(
            connection,
            actor=actor,
            action=f"prompt.label.{action}",
            target_type="prompt",
            target_id=prompt.name,
            team_id=prompt.team_id,
            before=before,
            after={"label": label, "version": version, "protected": protected},
        )
        bump_change(connection, TOPIC)
        return Label(label, version, protected, now, actor[:255])


def _undo_stack(history: Sequence[Row[Any]]) -> list[int]:
    """The versions a label can be rolled back to, the next one last: each move pushes
    where the label was, each rollback pops it."""
    stack: list[int] = []
    for row in history:
        if row.action == "rollback":
            if stack:
                stack.pop()
        elif row.from_version is not None:
            stack.append(row.from_version)
    return stack


def _label(row: Row[Any]) -> Label:
    return Label(row.label, row.version, row.protected, row.updated_at, row.updated_by)


def _summary(row: Row[Any], latest: int, labels: dict[str, Label]) -> PromptSummary:
    return PromptSummary(row.name, row.type, row.team_id, row.created_at, latest, labels)
