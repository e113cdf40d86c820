"""Admin API routes: teams, keys, audit."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
