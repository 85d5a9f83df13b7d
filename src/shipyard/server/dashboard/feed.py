"""The live change feed: Server-Sent Events that tell an open page something it shows changed.

Every change in Shipyard writes an audit event (``Store.record``), so the newest event id is a
change counter. The feed looks at it a few times a second (one tiny query, shared by nothing
else: each connection asks on its own) and, when it moved, sends one ``change`` event naming
the actions since the last one; a page scoped to a project hears only that project's. The page
then re-fetches what it shows (``static/live.js``). Each event's id is the newest event id, so
a browser that reconnects sends it back as ``Last-Event-ID`` and misses nothing; a page
starts the feed from the change it was rendered at (``after``), so nothing made between its
rendering and the feed's start is missed either.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from shipyard.domain import TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
LOOK_EVERY = 0.2  # seconds: a page hears of a change well within a second
KEEP_ALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream
LIFETIME = 600.0  # seconds; the browser reconnects by itself, so no stream lives forever


@router.get("/events", dependencies=[Depends(require(TokenRole.VIEWER))])
async def events(
    request: Request,
    project: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**53)] = None,
    found: Services = Depends(services),
) -> StreamingResponse:
    start = next(
        (mark for mark in (last_event_id, after) if mark is not None),
        found.adapters.store.generation(),
    )
    return StreamingResponse(
        _changes(request, found, project, start),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _changes(
    request: Request, found: Services, project: str | None, seen: int
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    began = quiet = time.monotonic()
    while time.monotonic() - began < LIFETIME and not await request.is_disconnected():
        newest = found.adapters.store.generation()
        if newest > seen:
            changed = await run_in_threadpool(
                found.audit.events, project=project, after=seen, limit=100
            )
            seen = newest
            if changed:
                actions = sorted({event.action for event in changed})
                yield f"event: change\nid: {seen}\ndata: {json.dumps({'actions': actions})}\n\n"
                quiet = time.monotonic()
        if time.monotonic() - quiet > KEEP_ALIVE:
            yield ": still here\n\n"
            quiet = time.monotonic()
        await asyncio.sleep(LOOK_EVERY)
