"""Signing in and out: a token pasted once becomes an HttpOnly, SameSite=Strict session cookie.

``browser`` is the dependency of every page: the live session behind the cookie, or
Unauthorized, which the app's error handler turns into a redirect to the sign-in page.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shipyard.domain import TokenRole
from shipyard.errors import ShipyardError, Unauthorized
from shipyard.server.auth import SESSION_COOKIE, require
from shipyard.server.dashboard.render import SECURITY_HEADERS, templates
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.tokens import SESSION_HOURS, SessionView

__all__ = ["Browser", "browser", "router", "sign_in_url"]

router = APIRouter(include_in_schema=False)
Found = Annotated[Services, Depends(services)]


async def browser(request: Request, found: Found) -> SessionView:
    cookie = request.cookies.get(SESSION_COOKIE)
    session = found.tokens.session(cookie) if cookie else None
    if session is None:
        raise Unauthorized("Sign in to see the dashboard.")
    # The change the page is read at, before it reads anything: its live feed starts here.
    request.state.generation = found.adapters.store.generation()
    return session


Browser = Annotated[SessionView, Depends(browser)]


def sign_in_url(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"


def _local(next_path: str) -> str:
    """Only a path of this server: never another site (``//evil``, ``https://...``)."""
    if not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/projects"
    return next_path


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/projects", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/projects") -> HTMLResponse:
    return _login(request, _local(next))


def _login(request: Request, next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    context = {"next": next_path, "error": error}
    response = templates.TemplateResponse(request, "login.html", context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    found: Found,
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/projects",
) -> Response:
    try:
        _, cookie = found.tokens.sign_in(token.strip())
    except ShipyardError as exc:
        return _login(request, _local(next), exc.message, exc.status_code)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", dependencies=[Depends(require(TokenRole.VIEWER))])
async def logout(request: Request, found: Found) -> RedirectResponse:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found.tokens.sign_out(cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
