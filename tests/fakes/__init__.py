"""Test doubles that stand in for external services (never imported by src/)."""

from tests.fakes.upstream import FakeDeployment, FakeUpstream, Fault, ReceivedRequest, embedding_for

__all__ = ["FakeDeployment", "FakeUpstream", "Fault", "ReceivedRequest", "embedding_for"]
