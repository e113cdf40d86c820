"""The response cache: exact and semantic."""

__all__: list[str] = []
