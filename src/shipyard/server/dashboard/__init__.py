"""The web dashboard (ARCHITECTURE.md 8): server-rendered pages over the same services and
roles as the API. Jinja2 templates, htmx and a little plain JavaScript, all served from this
package (``static/vendor`` holds the front-end libraries, copied from their npm packages by
``make vendor``); no build step and nothing from a CDN.

Each page module holds an ``APIRouter``; ``mount`` adds them all, the sign-in pages, the
live change feed and the static files to the app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from shipyard.server.auth import SESSION_COOKIE
from shipyard.server.dashboard import feed, pages, session

__all__ = ["SESSION_COOKIE", "STATIC", "mount"]

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    app.include_router(session.router)
    app.include_router(feed.router)
    for router in pages.routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
