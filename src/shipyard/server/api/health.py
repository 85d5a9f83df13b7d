"""/api/v1/health: is the server up (no token, for load balancers and `shipyard` clients)."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.services.views import View

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["health"])


class Health(View):
    status: str


@router.get("/health")
def health() -> Health:
    return Health(status="ok")
