"""/api/v1/rollouts: see a canary rollout (viewer) and steer it (releaser)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from shipyard.domain import RolloutAction, TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.rollouts import RolloutView
from shipyard.services.tokens import TokenView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"])

RolloutId = Annotated[
    int | None, Query(alias="id", description="Rollout id (default: the newest).")
]


@router.get("/{project}/{environment}")
def get_rollout(
    project: str,
    environment: str,
    _: Annotated[TokenView, Depends(require(TokenRole.VIEWER))],
    found: Annotated[Services, Depends(services)],
    rollout_id: RolloutId = None,
) -> RolloutView:
    """Where a rollout is: its status, step, weight, plan and the judge's verdicts."""
    return found.rollouts.get(project, environment, rollout_id)


@router.post("/{project}/{environment}/{action}")
def steer_rollout(
    project: str,
    environment: str,
    action: RolloutAction,
    _: Annotated[TokenView, Depends(require(TokenRole.RELEASER))],
    found: Annotated[Services, Depends(services)],
    rollout_id: RolloutId = None,
) -> RolloutView:
    """Promote, pause, resume or abort; 409 when the rollout's status does not allow it."""
    return found.rollouts.steer(project, environment, action, rollout_id)
