"""Fixtures for the CLI tests: a SQLite store of its own for each test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where KEEL_DATABASE_URL points (a SQLite file not yet created); no config file is in
    reach, and tables are printed wide enough to read."""
    path = tmp_path / "home" / "keel.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_CONFIG", raising=False)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEL_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("COLUMNS", "250")
    return path
