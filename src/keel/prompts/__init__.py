"""The prompt registry: versioned prompts, labels, templating."""

__all__: list[str] = []
