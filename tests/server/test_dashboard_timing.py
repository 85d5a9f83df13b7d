"""Dashboard responses say how long the server spent on them (Server-Timing); the API's and
the static files' do not carry the header."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from shipyard.domain import TokenRole

from .conftest import bearer
from .test_dashboard_session import sign_in


def test_a_dashboard_page_says_how_long_the_server_spent_on_it(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/projects")
    found = re.fullmatch(r"app;dur=(\d+\.\d)", page.headers["server-timing"])
    assert found, page.headers["server-timing"]
    assert 0 < float(found.group(1)) < 60_000


def test_error_pages_and_redirects_are_timed_too(api: TestClient) -> None:
    answer = api.get("/projects", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["server-timing"].startswith("app;dur=")


def test_the_api_and_static_files_carry_no_server_timing(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    assert "server-timing" not in api.get("/api/v1/health").headers
    runs = api.get("/api/v1/runs", headers=bearer(tokens[TokenRole.VIEWER]))
    assert runs.status_code == 200 and "server-timing" not in runs.headers
    script = api.get("/static/live.js")
    assert script.status_code == 200 and "server-timing" not in script.headers
