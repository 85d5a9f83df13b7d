"""The rollouts page(s): to be built (issue 10); an empty router until then."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
