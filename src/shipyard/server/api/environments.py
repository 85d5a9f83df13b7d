"""/api/v1/environments and /api/v1/deployments: what runs where (viewer); deploying and
rolling back (releaser)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from shipyard.domain import TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.deployments import DeploymentView, EnvironmentView, LiveView
from shipyard.services.tokens import TokenView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["environments"])

Viewer = Annotated[TokenView, Depends(require(TokenRole.VIEWER))]
Releaser = Annotated[TokenView, Depends(require(TokenRole.RELEASER))]
Found = Annotated[Services, Depends(services)]


class DeployRequest(BaseModel):
    version: str


@router.get("/environments")
def list_environments(_: Viewer, found: Found, project: str | None = None) -> list[EnvironmentView]:
    """Each environment with its deployments and their weights, the stable and the standby."""
    return found.deployments.environments(project)


@router.get("/deployments")
def list_deployments(
    _: Viewer, found: Found, project: str | None = None, environment: str | None = None
) -> list[DeploymentView]:
    """The deployments meant to run, with their observed state."""
    return found.deployments.list(project, environment)


@router.post("/environments/{project}/{environment}/deploy")
def deploy(
    project: str, environment: str, body: DeployRequest, _: Releaser, found: Found
) -> LiveView:
    """All traffic to ``project:version`` (production takes only `release` artifacts)."""
    return found.deployments.deploy(project, body.version, environment)


@router.post("/environments/{project}/{environment}/rollback")
def rollback(project: str, environment: str, _: Releaser, found: Found) -> LiveView:
    """All traffic back to the standby; 409 while a rollout is going (abort it instead)."""
    return found.deployments.rollback(project, environment)
