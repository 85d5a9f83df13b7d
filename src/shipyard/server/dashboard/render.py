"""Rendering a dashboard page: the templates, what every page gets, and the security headers.

Every page is rendered by ``page()`` with the signed-in session, so each template can show or
hide an action by role with ``can('developer')`` (the route checks the role again) and put the
session's CSRF token into its forms (``csrf``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shipyard.domain import TokenRole
from shipyard.services.tokens import SessionView

__all__ = ["SECURITY_HEADERS", "page", "templates"]

# Scripts only from this server; styles inline too (uPlot and the weight bars set them).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt name in a template fails its test, not silently
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=environment)


def ago(moment: datetime | None) -> str:
    """'3 min ago' for a naive UTC time, '' for None."""
    if moment is None:
        return ""
    seconds = (datetime.now(UTC).replace(tzinfo=None) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def duration(start: datetime | None, end: datetime | None) -> str:
    """'1m 05s' between two times; from ``start`` to now while ``end`` is None."""
    if start is None:
        return ""
    stop = end or datetime.now(UTC).replace(tzinfo=None)
    seconds = max(0, int((stop - start).total_seconds()))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


environment.filters["ago"] = ago
environment.globals["duration"] = duration


def page(
    request: Request,
    template: str,
    session: SessionView,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    role = session.token.role

    def can(needed: str) -> bool:
        return role.allows(TokenRole(needed))

    values = {
        "session": session,
        "csrf": session.csrf,
        "can": can,
        "active": "",  # the navigation entry to mark as the current page
        "live": None,  # the change feed's query ("project=iris", "" for all) on a live page
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "since": getattr(request.state, "generation", 0),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
