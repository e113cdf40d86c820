"""Fixtures for training tests: a data directory per test whose demo model is the
session's (built once, see tests/conftest.py), and the ``keel train``/``keel models``
commands on an app of their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from keel.providers._demo_model import DEMO_MODEL_DIRNAME


@pytest.fixture
def train_home(tmp_path: Path, demo_model_dir: Path) -> Path:
    """A fresh data directory (own MLflow store) with the demo model in place."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / DEMO_MODEL_DIRNAME).symlink_to(demo_model_dir, target_is_directory=True)
    return home


@pytest.fixture
def bare_home(tmp_path: Path) -> Path:
    """A data directory without a demo model (for tests that must fail before one is needed)."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture(scope="session")
def cli_app() -> typer.Typer:
    from keel.cli import _models, _train

    app = typer.Typer(no_args_is_help=True)
    _train.register(app)
    _models.register(app)
    return app


def fake_model_dir(path: Path, marker: str = "x") -> Path:
    """A directory that passes for a Hugging Face model in the registry (it is never loaded)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "marker": marker}))
    return path
