"""/api/v1/notifications: where the server posts its notices (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from shipyard.domain import NoticeKind, TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.notifications import TargetView

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/notifications",
    tags=["notifications"],
    dependencies=[Depends(require(TokenRole.ADMIN))],
)
TargetId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class NewTarget(BaseModel):
    url: str = Field(max_length=2000, description="An http(s) URL that takes a JSON POST.")
    events: list[NoticeKind] = Field(default_factory=list, description="Empty: every kind.")
    project: str | None = Field(default=None, max_length=64, description="None: every project.")


@router.get("")
def list_targets(found: Services = Depends(services)) -> list[TargetView]:
    return found.notifications.list()


@router.post("", status_code=201)
def add_target(target: NewTarget, found: Services = Depends(services)) -> TargetView:
    return found.notifications.add(target.url, target.events, target.project)


@router.delete("/{target}")
def remove_target(target: TargetId, found: Services = Depends(services)) -> TargetView:
    return found.notifications.remove(target)
