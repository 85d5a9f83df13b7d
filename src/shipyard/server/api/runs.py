"""/api/v1/runs: list and show runs, cancel one, stream a stage's log (Server-Sent Events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from shipyard.domain import TokenRole
from shipyard.server.answers import answer
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.views import LogChunk, RunView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
viewer = Depends(require(TokenRole.VIEWER))
POLL = 0.25  # seconds between looks at a log that has not finished
# Bounds that keep a client's numbers inside what SQLite and a file offset can hold.
RunNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
Offset = Annotated[int, Query(ge=0, le=2**53)]
RUN = TypeAdapter(RunView)
RUNS = TypeAdapter(list[RunView])


@router.get("", dependencies=[viewer], response_model=list[RunView])
async def list_runs(
    request: Request,
    project: str | None = None,
    limit: int = Query(20, ge=1, le=1000),
    found: Services = Depends(services),
) -> Response:
    """The newest runs first, of one project or all."""
    return await answer(
        request, ("runs", project, limit), lambda: found.runs.list(project, limit), RUNS
    )


@router.get("/{project}/latest", dependencies=[viewer], response_model=RunView)
async def latest_run(
    request: Request, project: str, found: Services = Depends(services)
) -> Response:
    return await answer(request, ("run", project, None), lambda: found.runs.get(project), RUN)


@router.get("/{project}/{number}", dependencies=[viewer], response_model=RunView)
async def get_run(
    request: Request, project: str, number: RunNumber, found: Services = Depends(services)
) -> Response:
    return await answer(
        request, ("run", project, number), lambda: found.runs.get(project, number), RUN
    )


@router.post("/{project}/{number}/cancel", dependencies=[Depends(require(TokenRole.DEVELOPER))])
def cancel_run(project: str, number: RunNumber, found: Services = Depends(services)) -> RunView:
    """Stop the run: its driver stops the running command; a run nobody drives ends here."""
    return found.runs.cancel(project, number)


@router.get(
    "/{project}/{number}/stages/{stage}/log",
    dependencies=[viewer],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "LogChunk events"}},
)
async def stage_log(
    project: str,
    number: RunNumber,
    stage: str,
    offset: Offset = 0,
    follow: bool = True,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**53)] = None,
    found: Services = Depends(services),
) -> StreamingResponse:
    """The stage's log as Server-Sent Events, each a ``LogChunk`` in JSON (event ``log``).

    With ``follow`` the stream stays open until the stage is over; without it, it sends what
    there is now and ends. Each event's id is its offset: a client that reconnects sends it
    back as ``Last-Event-ID`` and goes on from there.
    """
    start = last_event_id if last_event_id is not None else offset
    # The first read happens before the answer starts, so an unknown run is a plain 404.
    first = await run_in_threadpool(found.runs.log, project, number, stage, start)
    return StreamingResponse(
        _events(found, project, number, stage, first, follow),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _events(
    found: Services, project: str, number: int, stage: str, chunk: LogChunk, follow: bool
) -> AsyncIterator[str]:
    while True:
        if chunk.text or chunk.finished or not follow:
            yield f"event: log\nid: {chunk.offset}\ndata: {chunk.model_dump_json()}\n\n"
        if chunk.finished or not follow:
            return
        if not chunk.text:
            await asyncio.sleep(POLL)
        chunk = await run_in_threadpool(found.runs.log, project, number, stage, chunk.offset)
