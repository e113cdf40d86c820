"""Placeholder: the local provider is being written."""
