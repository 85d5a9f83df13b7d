"""The API routes over rollouts, environments, artifacts and the audit log, driven through
the real app with real tokens: who may read, who may steer, and what a refusal looks like."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.domain import Role, TokenRole
from shipyard.server.app import create_app
from shipyard.services import Services
from shipyard.store.models import Deployment

from .conftest import PASSING, published, rollout_in

ROLES = list(TokenRole)


@pytest.fixture
def client(found: Services) -> Iterator[TestClient]:
    with TestClient(create_app(found)) as opened:
        yield opened


@pytest.fixture
def tokens(found: Services) -> dict[TokenRole, dict[str, str]]:
    """An Authorization header per role, for tokens named after their role."""
    headers = {}
    for role in ROLES:
        _, secret = found.tokens.create(f"the-{role}", role)
        headers[role] = {"authorization": f"Bearer {secret}"}
    return headers


def below(role: TokenRole) -> list[TokenRole]:
    return ROLES[: ROLES.index(role)]


def test_reading_a_rollout_needs_a_token_and_any_role_will_do(
    client: TestClient, adapters: Adapters, tokens: dict[TokenRole, dict[str, str]]
) -> None:
    rollout = rollout_in(adapters)
    path = "/api/v1/rollouts/iris/production"
    anonymous = client.get(path)
    assert anonymous.status_code == 401 and anonymous.json()["hint"]
    bad = client.get(path, headers={"authorization": "Bearer shy_not-a-token"})
    assert bad.status_code == 401
    seen = client.get(path, headers=tokens[TokenRole.VIEWER])
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["id"], body["status"], body["weight"], body["driven"]) == (
        rollout.id,
        "running",
        20,
        False,
    )
    assert body["steps"] == [{"weight": 20, "pause": 60.0}, {"weight": 50, "pause": "manual"}]
    by_id = client.get(f"{path}?id={rollout.id}", headers=tokens[TokenRole.VIEWER])
    assert by_id.json() == body
    missing = client.get(f"{path}?id=99", headers=tokens[TokenRole.VIEWER])
    assert missing.status_code == 404
    assert missing.json()["error"] == "There is no rollout 99 in iris/production."


def test_steering_a_rollout_is_a_releasers_call_and_audited_with_the_tokens_name(
    client: TestClient, adapters: Adapters, tokens: dict[TokenRole, dict[str, str]]
) -> None:
    rollout = rollout_in(adapters)
    path = "/api/v1/rollouts/iris/production/pause"
    for role in below(TokenRole.RELEASER):
        refused = client.post(path, headers=tokens[role])
        assert refused.status_code == 403, role
        assert refused.json()["error"] == (
            f"Token 'the-{role}' has role {role}; this needs releaser or above."
        )
    assert records.find_rollout(adapters.store, "iris", "production").status == records.RUNNING
    paused = client.post(path, headers=tokens[TokenRole.RELEASER])
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == records.PAUSED
    events = client.get(
        "/api/v1/audit?action=rollout&project=iris", headers=tokens[TokenRole.VIEWER]
    )
    assert [(e["action"], e["actor"]) for e in events.json()] == [
        ("rollout.pause", "the-releaser"),
        ("rollout.started", events.json()[-1]["actor"]),
    ]
    again = client.post(path, headers=tokens[TokenRole.ADMIN])
    assert again.status_code == 409
    assert again.json() == {
        "error": f"Rollout {rollout.id} is paused; `pause` applies to a rollout that is"
        " running or waiting.",
        "hint": "`shipyard rollout status` shows where it is.",
    }
    unknown = client.post("/api/v1/rollouts/iris/production/hurry", headers=tokens[TokenRole.ADMIN])
    assert unknown.status_code == 422


def test_environments_and_deployments_are_read_by_a_viewer(
    client: TestClient, adapters: Adapters, tokens: dict[TokenRole, dict[str, str]]
) -> None:
    adapters.store.ensure_project("iris", "/repos/iris")
    artifact = adapters.store.add_artifact("iris", "1", "1" * 64, 1234, {"run": 1}, None)
    row = Deployment(
        project="iris",
        environment="production",
        version="1",
        artifact_id=artifact.id,
        role=Role.STABLE,
        weight=100,
        state="ready",
        endpoint="http://127.0.0.1:1",
        pid=os.getpid(),
    )
    adapters.store.save_deployment(row, "started")
    viewer = tokens[TokenRole.VIEWER]
    environments = client.get("/api/v1/environments?project=iris", headers=viewer).json()
    assert [(e["environment"], e["stable"], e["standby"]) for e in environments] == [
        ("production", "1", None)
    ]
    listed = client.get("/api/v1/deployments?environment=production", headers=viewer).json()
    assert [(d["version"], d["state"], d["health"]) for d in listed] == [("1", "ready", "up")]
    assert client.get("/api/v1/deployments?project=other", headers=viewer).json() == []


def test_rollback_and_deploy_are_a_releasers_and_say_what_is_wrong(
    client: TestClient,
    adapters: Adapters,
    tokens: dict[TokenRole, dict[str, str]],
    tmp_path: Path,
) -> None:
    artifact = published(adapters, tmp_path, PASSING)
    rollback = "/api/v1/environments/iris/production/rollback"
    deploy = "/api/v1/environments/iris/production/deploy"
    body = {"version": artifact.version}
    for role in below(TokenRole.RELEASER):
        assert client.post(rollback, headers=tokens[role]).status_code == 403
        assert client.post(deploy, json=body, headers=tokens[role]).status_code == 403
    nothing = client.post(rollback, headers=tokens[TokenRole.RELEASER])
    assert nothing.status_code == 404
    assert "no previous version kept ready" in nothing.json()["error"]
    unreleased = client.post(deploy, json=body, headers=tokens[TokenRole.RELEASER])
    assert unreleased.status_code == 400
    assert (
        unreleased.json()["hint"] == f"Promote it first: shipyard promote iris:{artifact.version}"
    )
    assert adapters.store.deployments("iris") == []


def test_artifacts_are_searched_and_shown_by_a_viewer_and_promoted_by_a_releaser(
    client: TestClient,
    adapters: Adapters,
    tokens: dict[TokenRole, dict[str, str]],
    tmp_path: Path,
) -> None:
    artifact = published(adapters, tmp_path, {**PASSING, "qa": "passed"})
    viewer, releaser = tokens[TokenRole.VIEWER], tokens[TokenRole.RELEASER]
    found = client.get("/api/v1/artifacts?name=iris&repository=dev", headers=viewer)
    assert [a["version"] for a in found.json()] == [artifact.version]
    bad = client.get("/api/v1/artifacts?property=no-equals-sign", headers=viewer)
    assert bad.status_code == 400 and "is not key=value" in bad.json()["error"]
    path = f"/api/v1/artifacts/iris/{artifact.version}"
    shown = client.get(path, headers=viewer).json()
    assert shown["digest"] == artifact.digest and shown["signatures"] == []
    assert client.post(f"{path}/promote", json={}, headers=tokens[TokenRole.QA]).status_code == 403
    override = {"override": True, "reason": "hurry"}
    refused = client.post(f"{path}/promote", json=override, headers=releaser)
    assert refused.status_code == 403 and "needs the admin role" in refused.json()["error"]
    promoted = client.post(f"{path}/promote", json={"reason": "QA signed off"}, headers=releaser)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["repositories"] == ["dev", "release"]
    signatures = client.get(path, headers=viewer).json()["signatures"]
    assert [s["verified"] for s in signatures] == [True]
    audit = client.get("/api/v1/audit?actor=the-releaser", headers=viewer).json()
    assert [e["action"] for e in audit] == [
        "artifact.promoted",
        "artifact.published",
        "artifact.signed",
    ]


def test_the_audit_log_checks_its_query(
    client: TestClient, tokens: dict[TokenRole, dict[str, str]]
) -> None:
    viewer = tokens[TokenRole.VIEWER]
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit?limit=0", headers=viewer).status_code == 422
    assert client.get("/api/v1/audit?since=yesterday", headers=viewer).status_code == 422
    created = client.get("/api/v1/audit?action=token.created&limit=2", headers=viewer).json()
    assert [e["subject"] for e in created] == ["the-admin", "the-releaser"]
