"""Tokens: shown once, kept only as a digest, refused once revoked; the CLI and /api/v1/tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from shipyard.cli.app import app
from shipyard.domain import TokenRole
from shipyard.services import Services
from shipyard.store.models import Token

from .conftest import bearer

runner = CliRunner()


def database_bytes(services: Services) -> bytes:
    """Every byte SQLite holds for the state: the database and its write-ahead log."""
    database = Path(services.adapters.state.database)
    return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def test_token_create_prints_the_secret_once_and_keeps_only_its_digest(
    services: Services, no_server_env: None
) -> None:
    state = services.adapters.state.root
    done = runner.invoke(
        app, ["token", "create", "ci-bot", "--role", "developer", "--state", state]
    )
    assert done.exit_code == 0, done.output
    first, secret = done.output.strip().splitlines()
    assert first == "token ci-bot (developer) created; it will not be shown again:"
    assert secret.startswith("shy_") and len(secret) > 40
    assert secret.encode() not in database_bytes(services)
    with services.adapters.store.session() as s:
        row = s.scalar(select(Token).where(Token.name == "ci-bot"))
        assert row is not None and row.digest == hashlib.sha256(secret.encode()).hexdigest()
    listed = runner.invoke(app, ["token", "list", "--state", state])
    assert "ci-bot" in listed.output and "developer" in listed.output
    assert secret not in listed.output
    assert services.tokens.authenticate(secret) is not None


def test_token_revoke_refuses_the_token_from_then_on(
    api: TestClient, services: Services, tokens: dict[TokenRole, str], no_server_env: None
) -> None:
    state = services.adapters.state.root
    done = runner.invoke(app, ["token", "revoke", "qa-token", "--state", state])
    assert done.exit_code == 0 and done.output.startswith("token qa-token revoked at ")
    answer = api.get("/api/v1/runs", headers=bearer(tokens[TokenRole.QA]))
    assert answer.status_code == 401
    listed = services.tokens.list()
    assert [t.name for t in listed if t.revoked_at] == ["qa-token"]


def test_an_unknown_role_is_refused_with_the_roles_there_are(
    services: Services, no_server_env: None
) -> None:
    state = services.adapters.state.root
    done = runner.invoke(app, ["token", "create", "x", "--role", "god", "--state", state])
    assert done.exit_code == 2
    assert "viewer" in done.output and "admin" in done.output


def test_the_api_creates_a_token_whose_secret_is_in_the_answer_only(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    admin = bearer(tokens[TokenRole.ADMIN])
    created = api.post("/api/v1/tokens", headers=admin, json={"name": "dash", "role": "viewer"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert created.json()["token"]["role"] == "viewer"
    assert secret.encode() not in database_bytes(services)
    listed = api.get("/api/v1/tokens", headers=admin)
    assert secret not in listed.text and "dash" in listed.text
    assert api.get("/api/v1/runs", headers=bearer(secret)).status_code == 200
    again = api.post("/api/v1/tokens", headers=admin, json={"name": "dash", "role": "viewer"})
    assert again.status_code == 409 and "already a token named 'dash'" in again.json()["error"]
