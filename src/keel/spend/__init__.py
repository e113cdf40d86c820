"""Spend control: prices, the spend ledger, budgets, rate limits."""

__all__: list[str] = []
