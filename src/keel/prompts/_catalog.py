"""The gateway's in-memory copy of every prompt version and label.

``resolve`` reads memory only. A background task polls the ``prompts`` change topic
(one small query) every ``refresh_interval`` seconds and reloads everything when it
moved, so a label move reaches every gateway process within about one interval plus
the time of one reload. Versions are immutable: a reload keeps the already-compiled
``PromptVersion`` objects it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from keel.core import InvalidRequest, NotFound
from keel.prompts._rows import version_from_row
from keel.prompts._tables import prompt_labels, prompt_versions, prompts
from keel.prompts._version import LATEST, PRODUCTION, PromptVersion
from keel.store import read_changes

log = logging.getLogger("keel.prompts")

TOPIC = "prompts"


@dataclass(frozen=True, slots=True)
class _Prompt:
    versions: dict[int, PromptVersion]
    labels: dict[str, int]
    latest: PromptVersion


class PromptCatalog:
    """Every prompt, in memory. Call ``load()`` (or ``await start()``) before ``resolve``."""

    def __init__(self, engine: Engine, refresh_interval: float = 1.0) -> None:
        self.engine = engine
        self.refresh_interval = refresh_interval
        self._prompts: dict[str, _Prompt] = {}
        self._seen: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # one reload at a time (poller and on_change)

    @property
    def loaded(self) -> bool:
        return self._seen is not None

    def resolve(self, name: str, label: str | None = None, version: int | None = None) -> PromptVersion:
        """A version by number, by label (``latest`` is automatic), or without either the
        ``production`` one. Memory only; an unknown prompt, label or version is NotFound."""
        prompt = self._prompts.get(name)
        if prompt is None:
            raise NotFound(f"Unknown prompt '{name}'.", param="prompt")
        if version is not None:
            if label is not None:
                raise InvalidRequest("Name a prompt label or a version, not both.", param="prompt")
            found = prompt.versions.get(version)
            if found is None:
                raise NotFound(f"Prompt '{name}' has no version {version}.", param="prompt")
            return found
        label = label or PRODUCTION
        if label == LATEST:
            return prompt.latest
        number = prompt.labels.get(label)
        if number is None:
            raise NotFound(f"Prompt '{name}' has no label '{label}'.", param="prompt")
        return prompt.versions[number]

    def names(self) -> list[str]:
        return sorted(self._prompts)

    # -- loading ------------------------------------------------------------------

    def load(self) -> None:
        """Read everything from the store now (blocking)."""
        with self._lock:
            self._load()

    reload = load

    def refresh(self) -> bool:
        """Reload if the ``prompts`` topic moved since the last load (blocking); True if
        it did."""
        with self._lock:
            if read_changes(self.engine).get(TOPIC, 0) == self._seen:
                return False
            self._load()
            return True

    def _load(self) -> None:
        # The change version is read before the data: a change committed in between is
        # loaded now or, at the latest, on the next refresh.
        seen = read_changes(self.engine).get(TOPIC, 0)
        with self.engine.connect() as connection:
            prompt_rows = {row.id: row for row in connection.execute(select(prompts))}
            version_rows = list(connection.execute(select(prompt_versions)))
            label_rows = list(connection.execute(select(prompt_labels)))
        old = self._prompts
        versions: dict[str, dict[int, PromptVersion]] = {}
        for row in version_rows:
            prompt = prompt_rows[row.prompt_id]
            kept = old.get(prompt.name)
            known = kept.versions.get(row.version) if kept is not None else None
            versions.setdefault(prompt.name, {})[row.version] = known or version_from_row(prompt, row)
        labels: dict[str, dict[str, int]] = {}
        for row in label_rows:
            labels.setdefault(prompt_rows[row.prompt_id].name, {})[row.label] = row.version
        self._prompts = {
            name: _Prompt(by_number, labels.get(name, {}), by_number[max(by_number)])
            for name, by_number in versions.items()
        }
        self._seen = seen

    # -- background refresh -------------------------------------------------------

    async def start(self) -> None:
        """Load (if not yet loaded) and start polling for changes."""
        if not self.loaded:
            await asyncio.to_thread(self.load)
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="keel-prompt-catalog")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:
                # Keep serving what is loaded; the store may be back next time.
                log.warning("prompt catalog refresh failed: %s", _short(exc))


def _short(exc: Any) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
