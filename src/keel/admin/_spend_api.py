"""Admin API routes: budgets, prices, rate limits, usage."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
