"""/projects: every project with its last runs, the version live in each environment, and
the runs waiting for someone's approval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from shipyard.domain import TokenRole
from shipyard.server.auth import require
from shipyard.server.dashboard.render import page
from shipyard.server.dashboard.session import Browser
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.approvals import ApprovalView
from shipyard.services.views import RunView

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(TokenRole.VIEWER))])
Found = Annotated[Services, Depends(services)]
RECENT = 8  # runs shown per project


@dataclass
class ProjectRow:
    name: str
    runs: list[RunView]
    live: dict[str, str] = field(default_factory=dict)  # environment -> stable version
    waiting: list[ApprovalView] = field(default_factory=list)


def overview(found: Services) -> list[ProjectRow]:
    rows = {
        project.name: ProjectRow(project.name, found.runs.list(project.name, RECENT))
        for project in found.projects.list(every=True)
    }
    for environment in found.deployments.environments():
        if environment.project in rows and environment.stable:
            rows[environment.project].live[environment.environment] = environment.stable
    for approval in found.approvals.pending():
        if approval.project in rows:
            rows[approval.project].waiting.append(approval)
    return list(rows.values())


@router.get("/projects", response_class=HTMLResponse)
async def projects(request: Request, session: Browser, found: Found) -> HTMLResponse:
    rows = await run_in_threadpool(overview, found)
    runnable = await run_in_threadpool(found.projects.list)  # registered: the run form's choice
    context = {"projects": rows, "runnable": runnable, "active": "projects", "live": ""}
    return page(request, "projects.html", session, context)
