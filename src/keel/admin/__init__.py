"""The admin API (FastAPI): teams, keys, budgets, prices, prompts, usage."""

from keel.admin._app import create_admin_app

__all__ = ["create_admin_app"]
