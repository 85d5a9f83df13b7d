"""The dashboard's sign-in: a token becomes an HttpOnly, SameSite=Strict session; pages need
one; changes need the session's CSRF token; the session ends with its token."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

from shipyard.domain import TokenRole
from shipyard.server.auth import SESSION_COOKIE
from shipyard.services import Services
from shipyard.store import acting_as

from .conftest import Live, Seed, bearer


def sign_in(api: TestClient, secret: str) -> str:
    """Sign in and return the page's CSRF token."""
    done = api.post("/login", data={"token": secret, "next": "/projects"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/projects"
    page = api.get("/projects")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_a_page_without_a_session_sends_the_browser_to_sign_in(api: TestClient) -> None:
    answer = api.get("/projects", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/projects"
    assert "Sign in" in api.get(answer.headers["location"]).text


def test_signing_in_sets_a_strict_httponly_cookie_that_holds_no_token(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    done = api.post("/login", data={"token": tokens[TokenRole.VIEWER]}, follow_redirects=False)
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=shs_")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert tokens[TokenRole.VIEWER] not in cookie


def test_a_wrong_token_is_refused_on_the_sign_in_page(api: TestClient) -> None:
    answer = api.post("/login", data={"token": "shy_not-a-token"})
    assert answer.status_code == 401
    assert "unknown or revoked" in answer.text
    assert SESSION_COOKIE not in api.cookies


def test_sign_in_only_returns_to_a_path_of_this_server(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    for target in ("//evil.example/", "https://evil.example/", "javascript:alert(1)"):
        done = api.post(
            "/login",
            data={"token": tokens[TokenRole.VIEWER], "next": target},
            follow_redirects=False,
        )
        assert done.headers["location"] == "/projects", target


def test_the_projects_page_shows_each_project_and_its_runs(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    seed("tiny")
    seed("tiny", upto="qa", finished=False)
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/projects")
    assert 'id="project-tiny"' in page.text
    assert (
        'href="/projects/tiny/runs/1"' in page.text and 'href="/projects/tiny/runs/2"' in page.text
    )
    assert "content-security-policy" in page.headers
    assert page.headers["x-frame-options"] == "DENY"


def test_a_change_without_the_csrf_token_is_refused_and_with_it_goes_through(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    csrf = sign_in(api, tokens[TokenRole.VIEWER])
    forged = api.post("/logout", follow_redirects=False)
    assert forged.status_code == 403
    assert "CSRF" in forged.text
    assert api.get("/projects").status_code == 200  # still signed in
    done = api.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert api.get("/projects", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_its_sessions(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    sign_in(api, tokens[TokenRole.DEVELOPER])
    with acting_as("root"):
        services.tokens.revoke(f"{TokenRole.DEVELOPER}-token")
    assert api.get("/projects", follow_redirects=False).status_code == 303


def test_the_api_accepts_the_session_cookie_for_reads_but_not_unsigned_writes(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number = seed("tiny", upto="build", finished=False)
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    assert api.get("/api/v1/runs/tiny/latest").json()["number"] == number
    assert api.post(f"/api/v1/runs/tiny/{number}/cancel").status_code == 403
    done = api.post(f"/api/v1/runs/tiny/{number}/cancel", headers={"x-csrf-token": csrf})
    assert done.status_code == 200, done.text


def test_an_address_the_dashboard_cannot_read_gets_an_error_page_naming_the_field(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    answer = api.get("/projects/tiny/runs/not-a-number")
    assert answer.status_code == 400
    assert "text/html" in answer.headers["content-type"]
    assert "could not be read" in answer.text and "number" in answer.text
    assert api.get("/api/v1/runs/tiny/not-a-number").status_code == 422  # the API as before


def test_the_feed_starts_from_the_change_a_page_was_rendered_at(
    live: Live, tokens: dict[TokenRole, str]
) -> None:
    store = live.services.adapters.store
    rendered_at = store.generation()
    store.record_event("test.changed", "tiny", "root")  # made before the page's feed connects
    headers = bearer(tokens[TokenRole.VIEWER])
    url = f"{live.url}/events?project=tiny&after={rendered_at}"
    with httpx.stream("GET", url, headers=headers, timeout=10) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data:"):
                assert "test.changed" in line
                break
