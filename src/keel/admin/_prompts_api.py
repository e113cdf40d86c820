"""Admin API routes: prompts, versions, labels."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
