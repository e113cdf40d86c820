"""Guardrails: offline input and output scanners, policies."""

__all__: list[str] = []
