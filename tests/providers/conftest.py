"""Fixtures for the local provider (the trained demo model is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.providers._demo_model import build_demo_model


@pytest.fixture(scope="session")
def untrained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo-shaped model after two training steps: well-formed, quick to build, and
    it babbles until its token limit (it has not learned to stop)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_demo_model(tmp_path_factory.mktemp("untrained") / "model", steps=2, progress=False)
