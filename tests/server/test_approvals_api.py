"""Approvals through the API: the inbox, approve and reject, each gate's role, audited names."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from shipyard.config.loader import parse_config
from shipyard.domain import Gate, Status, TokenRole
from shipyard.pipeline.context import RunContext
from shipyard.services import Services

from .conftest import SHA, bearer

CONFIG = """\
name: tiny
build: {train: "true"}
model: {serve: "tiny_model:Model"}
environments: {production: {port: 18998}}
release: {approval: manual}
canary: {approval: manual}
"""


def waiting_at(services: Services, gate: Gate) -> int:
    """A run of ``tiny`` parked at ``gate`` the way the engine parks it."""
    store = services.adapters.store
    store.ensure_project("tiny", "/repos/tiny")
    number = store.create_run("tiny", SHA, "main").number
    ctx = RunContext(
        services.adapters, "tiny", number, SHA, "main", Path("."), parse_config(CONFIG)
    )
    ctx.log_path(gate.value).parent.mkdir(parents=True, exist_ok=True)
    outcome = services.approvals.gate(ctx, gate)
    assert outcome is not None and outcome.status is Status.WAITING
    services.runs.park("tiny", number, gate.value, outcome.message)
    return number


def test_the_inbox_lists_waiting_runs_with_who_may_approve(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    release, canary = waiting_at(services, Gate.RELEASE), waiting_at(services, Gate.CANARY)
    answer = api.get("/api/v1/approvals", headers=bearer(tokens[TokenRole.VIEWER]))
    assert answer.status_code == 200
    inbox = [(a["run"], a["gate"], a["approver"], a["status"]) for a in answer.json()]
    assert inbox == [
        (release, "release", "qa", "waiting"),
        (canary, "canary", "releaser", "waiting"),
    ]
    run = api.get(f"/api/v1/runs/tiny/{canary}", headers=bearer(tokens[TokenRole.VIEWER])).json()
    assert (
        run["status"] == "waiting"
        and run["message"] == "waiting for approval of canary by releaser"
    )
    other = api.get("/api/v1/approvals?project=other", headers=bearer(tokens[TokenRole.VIEWER]))
    assert other.json() == []


def test_qa_approves_a_release_as_itself_and_the_run_is_queued_again(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = waiting_at(services, Gate.RELEASE)
    answer = api.post(
        f"/api/v1/runs/tiny/{number}/approve",
        headers=bearer(tokens[TokenRole.QA]),
        json={"reason": "qa report read"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["actor"], body["reason"]) == (
        "approved",
        "qa-token",
        "qa report read",
    )
    assert services.runs.get("tiny", number).status is Status.QUEUED
    [event] = [
        e for e in services.adapters.store.events("tiny#") if e.action == "approval.approved"
    ]
    assert event.actor == "qa-token"


def test_the_canary_gate_refuses_qa_with_a_sentence_and_takes_a_releaser(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = waiting_at(services, Gate.CANARY)
    path = f"/api/v1/runs/tiny/{number}/approve"
    refused = api.post(path, headers=bearer(tokens[TokenRole.QA]))
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        "Deciding at the canary gate needs the releaser role or above; this token's role is qa."
    )
    assert services.runs.get("tiny", number).status is Status.WAITING
    assert api.post(path, headers=bearer(tokens[TokenRole.RELEASER])).status_code == 200


def test_a_rejection_needs_a_reason_and_fails_nothing_without_one(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = waiting_at(services, Gate.RELEASE)
    path, qa = f"/api/v1/runs/tiny/{number}/reject", bearer(tokens[TokenRole.QA])
    assert api.post(path, headers=qa).status_code == 422
    assert api.post(path, headers=qa, json={"reason": ""}).status_code == 422
    assert services.runs.get("tiny", number).status is Status.WAITING
    answer = api.post(path, headers=qa, json={"reason": "wrong labels in the holdout"})
    assert answer.status_code == 200 and answer.json()["status"] == "rejected"


def test_deciding_for_a_run_that_waits_for_nobody_is_409_and_an_unknown_run_404(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = waiting_at(services, Gate.RELEASE)
    qa = bearer(tokens[TokenRole.QA])
    assert api.post(f"/api/v1/runs/tiny/{number}/approve", headers=qa).status_code == 200
    again = api.post(f"/api/v1/runs/tiny/{number}/approve", headers=qa)
    assert again.status_code == 409
    assert "not waiting for an approval: it is queued" in again.json()["error"]
    assert api.post("/api/v1/runs/tiny/999/approve", headers=qa).status_code == 404
    assert api.post("/api/v1/runs/tiny/0/approve", headers=qa).status_code == 422
