"""Shared fixtures. Keep this file small: fixtures for one area belong next to its tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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
