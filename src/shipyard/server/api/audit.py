"""/api/v1/audit: the audit log, newest first (viewer)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from shipyard.domain import TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.audit import MAX_LIMIT, EventView
from shipyard.services.tokens import TokenView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def audit_events(
    _: Annotated[TokenView, Depends(require(TokenRole.VIEWER))],
    found: Annotated[Services, Depends(services)],
    actor: str | None = None,
    project: str | None = None,
    action: Annotated[
        str | None, Query(description="An action (rollout.abort) or its family (rollout).")
    ] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> list[EventView]:
    """Who did what to what, and when."""
    return found.audit.events(actor, project, action, since, limit)
