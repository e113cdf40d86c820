"""Shared fixtures. Keep this file small: fixtures for one area belong next to its tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.providers._demo_model import (
    DEFAULT_STEPS,
    DEMO_MODEL_DIRNAME,
    build_demo_model,
    demo_data_hash,
    read_manifest,
)
from tests.databases import bare_engine, database_url, engine, postgres_schema  # noqa: F401 (fixtures)
from tests.fakes import FakeDeployment, FakeUpstream


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    """One fake provider server for the whole session; tests separate by deployment name."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> Iterator[FakeDeployment]:
    """A fresh, uniquely named deployment on the session's fake server.

    ``upstream.base_url`` is the OpenAI-style base URL (…/{name}/v1)."""
    deployment = fake_upstream.deployment(f"d{uuid.uuid4().hex[:12]}")
    yield deployment
    deployment.reset()


# The demo model is built once per session (a couple of minutes of CPU); set
# KEEL_TEST_DEMO_MODEL_DIR to keep it across runs (rebuilt there only when stale).
@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fully trained demo model's directory."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    prebuilt = os.environ.get("KEEL_TEST_DEMO_MODEL_DIR")
    target = Path(prebuilt) if prebuilt else tmp_path_factory.mktemp("demo-model") / DEMO_MODEL_DIRNAME
    manifest = read_manifest(target)
    if (
        manifest is None
        or manifest.get("data_hash") != demo_data_hash()
        or manifest["steps"] != DEFAULT_STEPS
    ):
        build_demo_model(target, progress=False)
    return target


@pytest.fixture(scope="session")
def demo_home(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose ``models/keel-demo`` is the session's demo model, so
    ``ensure_demo_model(demo_home)`` finds it built."""
    home = tmp_path_factory.mktemp("keel-home")
    (home / "models").mkdir()
    (home / "models" / DEMO_MODEL_DIRNAME).symlink_to(demo_model_dir, target_is_directory=True)
    return home
