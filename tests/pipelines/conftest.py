"""The feedback tests' stack (gateway + feedback API) for the end-to-end export test."""

from tests.feedback.conftest import make_stack, stack  # noqa: F401 (fixtures)
