"""Notification targets through the API (admin), and the CLI's remote side of approvals and
notifications against a real server on 127.0.0.1."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from shipyard.domain import Gate, NoticeKind, Status, TokenRole
from shipyard.errors import Forbidden
from shipyard.services import Services
from shipyard.services.remote import RemoteServices

from .conftest import Live, bearer
from .test_approvals_api import waiting_at


def test_an_admin_manages_targets_and_nobody_else_sees_them(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    admin, releaser = bearer(tokens[TokenRole.ADMIN]), bearer(tokens[TokenRole.RELEASER])
    body = {"url": "https://chat.example/hook/secret", "events": ["approval.needed"]}
    created = api.post("/api/v1/notifications", headers=admin, json=body)
    assert created.status_code == 201, created.text
    assert (
        created.json()["events"] == ["approval.needed"]
        and created.json()["created_by"] == "admin-token"
    )
    assert api.get("/api/v1/notifications", headers=releaser).status_code == 403
    assert [t["id"] for t in api.get("/api/v1/notifications", headers=admin).json()] == [1]
    wrong_kind = api.post(
        "/api/v1/notifications",
        headers=admin,
        json={"url": "https://x.example", "events": ["deployed"]},
    )
    assert wrong_kind.status_code == 422
    not_http = api.post("/api/v1/notifications", headers=admin, json={"url": "file:///etc/passwd"})
    assert not_http.status_code == 400 and "is not an http(s) URL" in not_http.json()["error"]
    assert api.delete("/api/v1/notifications/1", headers=admin).status_code == 200
    assert api.delete("/api/v1/notifications/1", headers=admin).status_code == 404
    assert services.notifications.list() == []


def test_the_remote_services_approve_and_manage_targets_like_the_local_ones(
    live: Live, tokens: dict[TokenRole, str]
) -> None:
    release, canary = (
        waiting_at(live.services, Gate.RELEASE),
        waiting_at(live.services, Gate.CANARY),
    )
    as_qa = RemoteServices(live.url, tokens[TokenRole.QA])
    assert [(a.run, a.gate) for a in as_qa.approvals.pending()] == [
        (release, Gate.RELEASE),
        (canary, Gate.CANARY),
    ]
    approved = as_qa.approvals.approve("tiny", release, "fine")
    assert (approved.actor, approved.reason) == ("qa-token", "fine")
    with pytest.raises(Forbidden, match="needs the releaser role"):
        as_qa.approvals.reject("tiny", canary, "no")
    as_releaser = RemoteServices(live.url, tokens[TokenRole.RELEASER])
    assert as_releaser.approvals.reject("tiny", canary, "drift").status == "rejected"
    assert live.services.runs.get("tiny", canary).status is Status.QUEUED
    as_admin = RemoteServices(live.url, tokens[TokenRole.ADMIN])
    target = as_admin.notifications.add("https://chat.example/x", [NoticeKind.LIVE], "tiny")
    assert [t.id for t in as_admin.notifications.list()] == [target.id]
    assert as_admin.notifications.remove(target.id).events == [NoticeKind.LIVE]
