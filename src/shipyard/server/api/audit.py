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
    until: Annotated[datetime | None, Query(description="Events before this time.")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=2**53, description="Events newer than this event id.")
    ] = None,
    before: Annotated[
        int | None, Query(ge=0, le=2**53, description="Events older than this event id.")
    ] = None,
) -> list[EventView]:
    """Who did what to what, and when; ``after`` and ``before`` page by event id."""
    return found.audit.events(
        actor, project, action, since, limit, until=until, after=after, before=before
    )
