"""Tokens and roles, checked in one place: every route of the app against every role.

The routes are read from the app itself, so a route added later is covered without a change
here; each must declare its least role with ``require``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import BaseRoute

from shipyard.domain import TokenRole
from shipyard.server.auth import Require
from shipyard.services import Services
from shipyard.store.models import Event

from .conftest import Seed, bearer

OPEN = {"/api/v1/health", "/api/v1/openapi.json", "/api/v1/docs", "/api/v1/docs/oauth2-redirect"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def needed_role(route: APIRoute) -> TokenRole | None:
    """The role the route's ``require`` asks for; None when it has none."""
    found = [d.call.role for d in route.dependant.dependencies if isinstance(d.call, Require)]
    assert len(found) <= 1, f"{route.path} requires twice"
    return found[0] if found else None


def api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    """Every route of the app, including those of included routers (FastAPI keeps them
    nested, each router's routes already carrying its prefix and dependencies)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from api_routes(nested.routes)
        elif isinstance(route, APIRoute):
            yield route


def api_calls(api: TestClient) -> list[tuple[str, str, TokenRole]]:
    """(method, concrete path, least role) for every route under /api/v1 but the open ones."""
    calls = []
    for route in api_routes(api.app.routes):  # type: ignore[attr-defined]
        if not route.path.startswith("/api/v1"):
            continue
        if route.path in OPEN:
            continue
        role = needed_role(route)
        assert role is not None, f"{route.path} does not declare the role it needs"
        path = re.sub(r"\{number\}", "1", route.path)
        path = re.sub(r"\{[a-z_]+\}", "x", path)
        calls += [(method, path, role) for method in sorted(route.methods)]
    return calls


def call(api: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body = {"json": {}} if method in MUTATING else {}
    return api.request(method, path, headers=headers, **body).status_code  # type: ignore[arg-type]


def test_every_api_route_but_health_declares_the_least_role_it_needs(api: TestClient) -> None:
    calls = api_calls(api)
    assert ("GET", "/api/v1/runs", TokenRole.VIEWER) in calls
    assert ("POST", "/api/v1/runs/x/1/cancel", TokenRole.DEVELOPER) in calls
    assert ("POST", "/api/v1/tokens", TokenRole.ADMIN) in calls


def test_health_needs_no_token(api: TestClient) -> None:
    answer = api.get("/api/v1/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer shy_not-a-real-token", "shy_x"],
)
def test_no_token_or_a_bad_one_is_401_on_every_route(
    api: TestClient, tokens: dict[TokenRole, str], header: str | None
) -> None:
    headers = {"authorization": header} if header is not None else {}
    for method, path, _ in api_calls(api):
        answer = api.request(method, path, headers=headers)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]


def test_a_role_below_the_route_s_is_403_and_one_at_or_above_it_passes(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    checked = 0
    for method, path, needed in api_calls(api):
        for role, secret in tokens.items():
            status = call(api, method, path, bearer(secret))
            if role.allows(needed):
                assert status not in (401, 403), (method, path, role, status)
            else:
                assert status == 403, (method, path, role, status)
            checked += 1
    assert checked >= 5 * 6


def test_the_403_names_the_token_its_role_and_the_role_needed(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    answer = api.get("/api/v1/tokens", headers=bearer(tokens[TokenRole.RELEASER]))
    assert answer.status_code == 403
    assert answer.json()["error"] == (
        "Token 'releaser-token' has role releaser; this needs admin or above."
    )


def test_a_revoked_token_is_401(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    viewer = bearer(tokens[TokenRole.VIEWER])
    assert api.get("/api/v1/runs", headers=viewer).status_code == 200
    admin = bearer(tokens[TokenRole.ADMIN])
    assert api.delete("/api/v1/tokens/viewer-token", headers=admin).status_code == 200
    answer = api.get("/api/v1/runs", headers=viewer)
    assert answer.status_code == 401
    assert answer.json()["error"] == "The API token is unknown or revoked."


def test_every_mutating_call_is_audited_with_the_token_s_name(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number = seed(finished=False)
    developer, admin = bearer(tokens[TokenRole.DEVELOPER]), bearer(tokens[TokenRole.ADMIN])
    assert api.post(f"/api/v1/runs/tiny/{number}/cancel", headers=developer).status_code == 200
    body = {"name": "ci", "role": "developer"}
    assert api.post("/api/v1/tokens", headers=admin, json=body).status_code == 201
    assert api.delete("/api/v1/tokens/ci", headers=admin).status_code == 200
    with services.adapters.store.session() as s:
        events = {(e.action, e.subject): e.actor for e in s.scalars(select(Event))}
    assert events[("run.cancel-requested", f"tiny#{number}")] == "developer-token"
    assert events[("run.cancelled", f"tiny#{number}")] == "developer-token"
    assert events[("token.created", "ci")] == "admin-token"
    assert events[("token.revoked", "ci")] == "admin-token"
    # Reads are not audited, and nothing an API call did is put on the server's OS user.
    assert events[("token.created", "viewer-token")] == "root"
