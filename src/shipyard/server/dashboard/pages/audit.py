"""/audit: the audit log, newest first, narrowed by actor, project, kind and time, a page at a
time ("older" continues below the last event shown).

Times are typed and shown in UTC, as the store keeps them. A filter the page cannot read is an
error page saying how to write it, never an empty list that looks like "nothing happened".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from shipyard.domain import TokenRole
from shipyard.errors import InvalidInput
from shipyard.server.auth import require
from shipyard.server.dashboard.render import page
from shipyard.server.dashboard.session import Browser
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.audit import MAX_LIMIT, EventView

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(TokenRole.VIEWER))])
Found = Annotated[Services, Depends(services)]
Text = Annotated[str, Query(max_length=200)]
PAGE = 50  # events per page unless the filter asks for another number
RUN_SUBJECT = re.compile(r"(?P<project>[^#:/]+)#(?P<number>\d+)(/.*)?")
ARTIFACT_SUBJECT = re.compile(r"(?P<name>[^#:/]+):(?P<version>[^:/]+)")


@dataclass(frozen=True)
class Filters:
    """What the filter form asks for, as typed (shown back in the form) and as read."""

    actor: str = ""
    project: str = ""
    kind: str = ""
    since: str = ""
    until: str = ""
    limit: str = ""

    def query(self, **more: object) -> str:
        given = {k: v for k, v in vars(self).items() if v}
        return urlencode({**given, **{k: v for k, v in more.items() if v is not None}})

    @property
    def size(self) -> int:
        return _limit(self.limit)

    def events(self, found: Services, before: int | None) -> list[EventView]:
        """The page of events asked for; InvalidInput naming a field that cannot be read."""
        return found.audit.events(
            self.actor or None,
            self.project or None,
            self.kind or None,
            _moment("since", self.since),
            self.size,
            until=_moment("until", self.until),
            before=before,
        )


@dataclass(frozen=True)
class Row:
    event: EventView
    link: str | None  # the run's or artifact's page when the subject names one
    detail: str


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    request: Request,
    session: Browser,
    found: Found,
    actor: Text = "",
    project: Text = "",
    kind: Text = "",
    since: Text = "",
    until: Text = "",
    limit: Text = "",
    before: Text = "",
) -> HTMLResponse:
    filters = Filters(*(v.strip() for v in (actor, project, kind, since, until, limit)))
    older_than = _before(before.strip())
    events = await run_in_threadpool(filters.events, found, older_than)
    older = filters.query(before=events[-1].id) if len(events) == filters.size else None
    context = {
        "filters": filters,
        "rows": [
            Row(event, subject_link(event.subject), compact(event.detail)) for event in events
        ],
        "older": older,
        "newest": filters.query() if older_than is not None else None,
        "max_limit": MAX_LIMIT,
        "active": "audit",
        "live": _scope(filters.project) if older_than is None else None,  # the newest page follows
    }
    return page(request, "audit.html", session, context)


def subject_link(subject: str) -> str | None:
    """``iris#3`` and ``iris#3/build``: the run's page; ``iris:3-1a2b3c4``: the artifact's."""
    if run := RUN_SUBJECT.fullmatch(subject):
        return f"/projects/{quote(run['project'])}/runs/{run['number']}"
    if artifact := ARTIFACT_SUBJECT.fullmatch(subject):
        return f"/artifacts/{quote(artifact['name'])}/{quote(artifact['version'])}"
    return None


def compact(detail: dict[str, Any]) -> str:
    """``key=value`` pairs on one line, the empty ones left out."""
    return ", ".join(f"{key}={value}" for key, value in detail.items() if value not in (None, ""))


def _scope(project: str) -> str:
    return urlencode({"project": project}) if project else ""


def _moment(field: str, text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field} {text!r} is not a date and time.",
            hint="Write it as YYYY-MM-DDTHH:MM in UTC, e.g. 2026-11-29T21:30.",
        ) from None


def _before(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(
            f"before {text!r} is not an event id.", hint="Follow the page's Older link."
        )
    return int(text)


def _limit(text: str) -> int:
    if not text:
        return PAGE
    if not text.isdigit():
        raise InvalidInput(
            f"limit {text!r} is not a number.", hint=f"Ask for 1 to {MAX_LIMIT} events."
        )
    return int(text)  # the service refuses one out of range, saying so
