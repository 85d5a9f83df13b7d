"""/api/v1/projects: register, list, show and remove projects; start a run of one by hand."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from shipyard.domain import TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.projects import NewProject, ProjectView
from shipyard.services.tokens import TokenView
from shipyard.services.views import RunView

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


class ProjectAdd(BaseModel):
    name: str = Field(max_length=63, description="The project's name, as in its shipyard.yaml.")
    repo: str = Field(max_length=2000, description="The remote: a URL or a path on the server.")
    branches: list[str] = Field(
        default=["main"], max_length=100, description="Branches (globs) whose pushes run."
    )
    webhook_secret: str | None = Field(
        default=None, max_length=512, description="Made for you when left out."
    )
    poll_interval: float | str | None = Field(
        default=None, description="Poll the remote this often (e.g. 1m); off when left out."
    )


class RunRequest(BaseModel):
    ref: str = Field(default="main", max_length=255, description="A branch, tag or full sha.")


@router.get("")
def list_projects(
    _: TokenView = Depends(require(TokenRole.VIEWER)),
    found: Services = Depends(services),
    every: bool = False,
) -> list[ProjectView]:
    """The registered projects; with ``every``, also those only ever run from a CLI."""
    return found.projects.list(every=every)


@router.get("/{name}")
def show_project(
    name: str,
    _: TokenView = Depends(require(TokenRole.VIEWER)),
    found: Services = Depends(services),
) -> ProjectView:
    return found.projects.get(name)


@router.post("", status_code=201)
def add_project(
    body: ProjectAdd,
    _: TokenView = Depends(require(TokenRole.ADMIN)),
    found: Services = Depends(services),
) -> NewProject:
    """Register a project; the answer carries its webhook secret, which is never shown again."""
    project, secret = found.projects.add(
        body.name,
        body.repo,
        branches=body.branches,
        webhook_secret=body.webhook_secret,
        poll_interval=body.poll_interval,
    )
    return NewProject(project=project, webhook_secret=secret)


@router.delete("/{name}")
def remove_project(
    name: str,
    _: TokenView = Depends(require(TokenRole.ADMIN)),
    found: Services = Depends(services),
) -> ProjectView:
    return found.projects.remove(name)


@router.post("/{name}/runs", status_code=202)
def run_project(
    name: str,
    body: RunRequest,
    _: TokenView = Depends(require(TokenRole.DEVELOPER)),
    found: Services = Depends(services),
) -> RunView:
    return found.projects.run(name, body.ref, trigger="api")
