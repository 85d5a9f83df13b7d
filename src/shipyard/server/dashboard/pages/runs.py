"""/projects/{project}/runs/{number}: one run, its stages left to right like Jenkins' stage view,
the selected stage's log (followed live by static/run.js), and what the run's reports say.

Actions: start a run of a registered project (developer, from the projects page) and cancel a
run that has not finished (developer). The services decide; this module only asks and renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from shipyard.domain import STAGES, Status, TokenRole
from shipyard.errors import InvalidInput
from shipyard.server.auth import require
from shipyard.server.dashboard.render import SECURITY_HEADERS, page
from shipyard.server.dashboard.session import Browser
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.approvals import ApprovalView
from shipyard.services.reports import REPORT_FILES, FindingsReport, JUnitReport, QaReport
from shipyard.services.views import RunView, StageView

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(TokenRole.VIEWER))])
developer = [Depends(require(TokenRole.DEVELOPER))]
Found = Annotated[Services, Depends(services)]
RunNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass(frozen=True)
class RunPage:
    run: RunView
    stage: StageView  # the selected one
    tests: JUnitReport | None
    findings: FindingsReport | None
    qa: QaReport | None
    approvals: list[ApprovalView]

    def ran(self, name: str) -> bool:
        """Whether stage ``name`` is over (passed, failed, skipped...)."""
        return any(stage.name == name and stage.status.finished for stage in self.run.stages)


def selected(run: RunView, wanted: str | None) -> StageView:
    """The stage asked for; else the running one, the first failed, or the last that ran."""
    if wanted is not None:
        if wanted not in STAGES:
            raise InvalidInput(
                f"There is no stage {wanted!r}.", hint=f"Stages: {', '.join(STAGES)}."
            )
        return next(stage for stage in run.stages if stage.name == wanted)
    for status in (Status.RUNNING, Status.WAITING, Status.FAILED):
        found = [stage for stage in run.stages if stage.status is status]
        if found:
            return found[0]
    started = [stage for stage in run.stages if stage.started_at is not None]
    return started[-1] if started else run.stages[0]


def gather(found: Services, project: str, number: int, stage: str | None) -> RunPage:
    run = found.runs.get(project, number)
    return RunPage(
        run=run,
        stage=selected(run, stage),
        tests=found.runs.test_report(project, number),
        findings=found.runs.findings(project, number),
        qa=found.runs.qa_report(project, number),
        approvals=found.approvals.of_run(project, number),
    )


@router.get("/projects/{project}/runs/{number}", response_class=HTMLResponse)
async def run_page(
    request: Request,
    session: Browser,
    found: Found,
    project: str,
    number: RunNumber,
    stage: str | None = None,
) -> HTMLResponse:
    view = await run_in_threadpool(gather, found, project, number, stage)
    context = {"view": view, "stages": STAGES, "active": "projects", "live": f"project={project}"}
    return page(request, "run.html", session, context)


@router.get("/projects/{project}/runs/{number}/files/{name}")
async def report_file(found: Found, project: str, number: RunNumber, name: str) -> FileResponse:
    path = await run_in_threadpool(found.runs.report_file, project, number, name)
    download = f"{project}-{number}-{name}"
    response = FileResponse(path, media_type=REPORT_FILES[name], filename=download)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.post("/runs", dependencies=developer)
async def start_run(
    found: Found,
    project: Annotated[str, Form(max_length=100)],
    ref: Annotated[str, Form(max_length=200)] = "",
) -> RedirectResponse:
    """Run a commit of a registered project: ``ref`` (a branch, tag or sha) of its remote."""

    def start() -> RunView:
        wanted = ref.strip() or found.projects.get(project).default_ref
        return found.projects.run(project, wanted, trigger="dashboard")

    run = await run_in_threadpool(start)
    return RedirectResponse(f"/projects/{run.project}/runs/{run.number}", status_code=303)


@router.post("/projects/{project}/runs/{number}/cancel", dependencies=developer)
async def cancel_run(found: Found, project: str, number: RunNumber) -> RedirectResponse:
    await run_in_threadpool(found.runs.cancel, project, number)
    return RedirectResponse(f"/projects/{project}/runs/{number}", status_code=303)
