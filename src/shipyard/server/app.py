"""The ASGI application: the API under /api/v1 and the webhooks under /hooks."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shipyard.errors import ShipyardError
from shipyard.server import hooks
from shipyard.server.api import (
    approvals,
    artifacts,
    audit,
    environments,
    health,
    notifications,
    projects,
    rollouts,
    runs,
    tokens,
)
from shipyard.services import Services

__all__ = ["create_app"]


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Shipyard",
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.services = services
    app.add_exception_handler(ShipyardError, _error)  # type: ignore[arg-type]
    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(tokens.router)
    app.include_router(rollouts.router)
    app.include_router(environments.router)
    app.include_router(artifacts.router)
    app.include_router(audit.router)
    app.include_router(projects.router)
    app.include_router(hooks.router)
    app.include_router(approvals.router)
    app.include_router(notifications.router)
    return app


async def _error(request: Request, exc: ShipyardError) -> JSONResponse:
    """Shipyard's errors as JSON: the status they carry, the message and the next step."""
    body = {"error": exc.message, "hint": exc.hint}
    headers = {"www-authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)
