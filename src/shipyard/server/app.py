"""The ASGI application: the API under /api/v1, the webhooks under /hooks, and the dashboard
(every other path: ``dashboard/``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response

from shipyard.errors import InvalidInput, ShipyardError, Unauthorized
from shipyard.server import dashboard, hooks
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
from shipyard.server.dashboard.timing import ServerTiming
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
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
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
    dashboard.mount(app)
    app.add_middleware(ServerTiming, skip=(*MACHINE_PATHS, "/static/"))
    return app


MACHINE_PATHS = ("/api/", "/hooks/")


async def _error(request: Request, exc: ShipyardError) -> Response:
    """Shipyard's errors as JSON for the API and webhooks (the status they carry, the message
    and the next step); for the dashboard, the sign-in page or an error page."""
    if not request.url.path.startswith(MACHINE_PATHS):
        return _page_error(request, exc)
    body = {"error": exc.message, "hint": exc.hint}
    headers = {"www-authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    """A request FastAPI could not read: the API answers 422 as FastAPI does; the dashboard
    shows its error page naming each field and what is wrong with it."""
    if request.url.path.startswith(MACHINE_PATHS):
        return await request_validation_exception_handler(request, exc)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'][1:]) or error['loc'][0]}: {error['msg']}"
        for error in exc.errors()
    )
    return _page_error(
        request,
        InvalidInput(f"This request could not be read ({problems}).", hint="Check the address."),
    )


def _page_error(request: Request, exc: ShipyardError) -> Response:
    from shipyard.server.dashboard.render import SECURITY_HEADERS, page
    from shipyard.server.dashboard.session import sign_in_url

    if isinstance(exc, Unauthorized) or request.cookies.get(dashboard.SESSION_COOKIE) is None:
        target = sign_in_url(request.url.path if request.method == "GET" else "/projects")
        if request.headers.get("hx-request"):  # htmx follows this header, not a redirect
            return Response(status_code=401, headers={"hx-redirect": target})
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    session = request.app.state.services.tokens.session(request.cookies[dashboard.SESSION_COOKIE])
    if session is None:
        return RedirectResponse(sign_in_url(request.url.path), status_code=303)
    context = {"status_code": exc.status_code, "message": exc.message, "hint": exc.hint or ""}
    return page(request, "error.html", session, context, status_code=exc.status_code)
