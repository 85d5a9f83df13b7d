"""/environments: per project and environment, the deployments with their traffic weights and
health, the stable, the standby kept for rollback and the newest rollout; rolling back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from shipyard.domain import TokenRole
from shipyard.errors import NotFound
from shipyard.server.auth import require
from shipyard.server.dashboard.render import page
from shipyard.server.dashboard.session import Browser
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.deployments import EnvironmentView
from shipyard.services.rollouts import RolloutView

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(TokenRole.VIEWER))])
Found = Annotated[Services, Depends(services)]


@dataclass(frozen=True)
class Place:
    """One environment of one project, and its newest rollout (None before the first)."""

    environment: EnvironmentView
    rollout: RolloutView | None


def places(found: Services) -> list[Place]:
    return [Place(e, _newest_rollout(found, e)) for e in found.deployments.environments()]


def _newest_rollout(found: Services, environment: EnvironmentView) -> RolloutView | None:
    try:
        return found.rollouts.get(environment.project, environment.environment)
    except NotFound:
        return None


@router.get("/environments", response_class=HTMLResponse)
async def environments(request: Request, session: Browser, found: Found) -> HTMLResponse:
    shown = await run_in_threadpool(places, found)
    context = {"places": shown, "active": "environments", "live": ""}
    return page(request, "environments.html", session, context)


@router.post(
    "/environments/{project}/{environment}/rollback",
    dependencies=[Depends(require(TokenRole.RELEASER))],
)
async def rollback(project: str, environment: str, found: Found) -> RedirectResponse:
    """All traffic back to the standby; a rollout still going is refused (abort it instead)."""
    await run_in_threadpool(found.deployments.rollback, project, environment)
    return RedirectResponse(f"/environments#env-{project}-{environment}", status_code=303)
