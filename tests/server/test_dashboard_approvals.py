"""The approvals inbox in process: what waits, who may decide, Approve and Reject from the page,
the gate's role checked again on the server, CSRF, and the audit event naming the deciding token.

Runs are parked at their gate the way the engine parks them (the gate opens a request, the run
waits), on real SQLite; no worker runs, so an approved run stays queued for one.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from shipyard.config.loader import parse_config
from shipyard.domain import ApprovalStatus, Gate, Status, TokenRole
from shipyard.pipeline.context import RunContext
from shipyard.services import Services

from .test_auth import api_routes, needed_role
from .test_dashboard_session import sign_in

SHA = "cd" * 20
CONFIG = """\
name: {name}
build: {{train: "true"}}
model: {{serve: "m:Model"}}
environments:
  production: {{port: 18999}}
release: {release}
canary: {canary}
"""
MANUAL, AUTO = "{approval: manual}", "{approval: auto}"
BUTTON = re.compile(r"<button\b[^>]*>([^<]*)</button>")


def parked(services: Services, project: str, gate: Gate, release: str = MANUAL) -> int:
    """A run of ``project`` waiting at ``gate``; its number."""
    adapters = services.adapters
    adapters.store.ensure_project(project, f"/repos/{project}")
    number = adapters.store.create_run(project, SHA, "main").number
    manual = {Gate.RELEASE: (release, AUTO), Gate.CANARY: (AUTO, MANUAL)}[gate]
    config = parse_config(CONFIG.format(name=project, release=manual[0], canary=manual[1]))
    ctx = RunContext(adapters, project, number, SHA, "main", Path("."), config)
    ctx.log_path(gate.value).parent.mkdir(parents=True, exist_ok=True)
    outcome = services.approvals.gate(ctx, gate)
    assert outcome is not None and outcome.status is Status.WAITING
    services.runs.park(project, number, gate.value, outcome.message)
    return number


def buttons(html: str) -> list[str]:
    return [label.strip() for label in BUTTON.findall(html)]


def decisions(services: Services, action: str) -> list[tuple[str, str, dict[str, object]]]:
    found = services.audit.events(action=action)
    return [(e.actor, e.subject, e.detail) for e in found]


def test_each_route_declares_its_least_role_once_reading_for_viewers_deciding_for_qa(
    api: TestClient,
) -> None:
    declared = {
        (method, route.path): needed_role(route)
        for route in api_routes(api.app.routes)  # type: ignore[attr-defined]
        if route.path.startswith(("/approvals", "/audit"))
        for method in route.methods
    }
    assert declared == {
        ("GET", "/approvals"): TokenRole.VIEWER,
        ("POST", "/approvals/{project}/{number}/{gate}/approve"): TokenRole.QA,
        ("POST", "/approvals/{project}/{number}/{gate}/reject"): TokenRole.QA,
        ("GET", "/audit"): TokenRole.VIEWER,
    }


def test_the_inbox_shows_each_waiting_run_its_gate_who_decides_and_its_deadline(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    release = parked(services, "tiny", Gate.RELEASE, "{approval: manual, approval_timeout: 1h}")
    canary = parked(services, "other", Gate.CANARY)
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/approvals")
    assert page.status_code == 200
    html = page.text
    first = html.index(f'id="approval-tiny-{release}-release"')
    second = html.index(f'id="approval-other-{canary}-canary"')
    assert first < second  # oldest first
    row = html[first:second]
    assert f'href="/projects/tiny/runs/{release}"' in row and "qa or above" in row
    assert "fails 1h after the request" in row and "UTC" in row
    assert "releaser or above" in html[second:]
    assert "No decision yet." in html
    assert 'data-live=""' in html  # follows every project's changes
    assert buttons(html) == ["Sign out"]  # a viewer decides nothing


def test_qa_approves_from_the_inbox_the_run_moves_on_and_the_audit_log_names_the_qa_token(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = parked(services, "tiny", Gate.RELEASE)
    csrf = sign_in(api, tokens[TokenRole.QA])
    assert buttons(api.get("/approvals").text) == ["Sign out", "Approve", "Reject"]
    done = api.post(
        f"/approvals/tiny/{number}/release/approve",
        data={"csrf": csrf, "reason": "read the QA report"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/approvals"
    assert services.runs.get("tiny", number).status is Status.QUEUED  # back to a worker
    assert services.approvals.pending() == []
    assert decisions(services, "approval.approved") == [
        ("qa-token", f"tiny#{number}", {"gate": "release", "reason": "read the QA report"})
    ]
    html = api.get("/approvals").text
    assert f'id="approval-tiny-{number}-release"' not in html
    assert "No run waits for an approval." in html
    latest = html[html.index("Latest decisions") :]
    assert "approved" in latest and "qa-token" in latest and "read the QA report" in latest


def test_a_developer_sees_no_buttons_and_a_decision_posted_anyway_is_refused(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = parked(services, "tiny", Gate.RELEASE)
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    html = api.get("/approvals").text
    assert buttons(html) == ["Sign out"] and "needs qa" in html
    for decision in ("approve", "reject"):
        refused = api.post(
            f"/approvals/tiny/{number}/release/{decision}", data={"csrf": csrf, "reason": "x"}
        )
        assert refused.status_code == 403
        assert "this needs qa or above" in refused.text
    assert services.approvals.pending()[0].status is ApprovalStatus.WAITING
    assert services.runs.get("tiny", number).status is Status.WAITING
    assert (
        decisions(services, "approval.approved") == decisions(services, "approval.rejected") == []
    )


def test_qa_may_not_decide_at_the_canary_gate_which_needs_a_releaser(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = parked(services, "tiny", Gate.CANARY)
    csrf = sign_in(api, tokens[TokenRole.QA])
    html = api.get("/approvals").text
    assert buttons(html) == ["Sign out"] and "needs releaser" in html
    refused = api.post(f"/approvals/tiny/{number}/canary/approve", data={"csrf": csrf})
    assert refused.status_code == 403
    assert "needs the releaser role or above" in refused.text
    assert services.runs.get("tiny", number).status is Status.WAITING

    api.cookies.clear()
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    assert buttons(api.get("/approvals").text) == ["Sign out", "Approve", "Reject"]
    done = api.post(f"/approvals/tiny/{number}/canary/approve", data={"csrf": csrf})
    assert done.status_code == 200  # followed back to the inbox
    assert [actor for actor, _, _ in decisions(services, "approval.approved")] == ["releaser-token"]


def test_a_rejection_needs_a_reason_and_then_fails_the_gate_with_it(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = parked(services, "tiny", Gate.RELEASE)
    csrf = sign_in(api, tokens[TokenRole.QA])
    refused = api.post(
        f"/approvals/tiny/{number}/release/reject", data={"csrf": csrf, "reason": "   "}
    )
    assert refused.status_code == 400
    assert "A rejection needs a reason." in refused.text
    assert services.approvals.pending() != []
    done = api.post(
        f"/approvals/tiny/{number}/release/reject",
        data={"csrf": csrf, "reason": "drift on class 2"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    [decision] = services.approvals.decided()
    assert (decision.status, decision.actor, decision.reason) == (
        ApprovalStatus.REJECTED,
        "qa-token",
        "drift on class 2",
    )
    assert [actor for actor, _, _ in decisions(services, "approval.rejected")] == ["qa-token"]


def test_a_decision_without_the_sessions_csrf_token_is_refused(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = parked(services, "tiny", Gate.RELEASE)
    sign_in(api, tokens[TokenRole.ADMIN])
    for data in ({"reason": "ok"}, {"reason": "ok", "csrf": "forged"}):
        forged = api.post(f"/approvals/tiny/{number}/release/approve", data=data)
        assert forged.status_code == 403
        assert "CSRF" in forged.text
    assert services.runs.get("tiny", number).status is Status.WAITING
    assert (
        decisions(services, "approval.approved") == decisions(services, "approval.rejected") == []
    )


def test_a_decision_for_a_gate_the_run_does_not_wait_at_changes_nothing(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = parked(services, "tiny", Gate.RELEASE)
    csrf = sign_in(api, tokens[TokenRole.ADMIN])
    other = api.post(f"/approvals/tiny/{number}/canary/approve", data={"csrf": csrf})
    assert other.status_code == 409
    assert "waits at the release gate, not at canary" in other.text
    unknown = api.post(f"/approvals/tiny/{number}/deploy/approve", data={"csrf": csrf})
    assert unknown.status_code == 404
    assert "There is no gate" in unknown.text and "release, canary" in unknown.text
    missing = api.post("/approvals/nope/1/release/approve", data={"csrf": csrf})
    assert missing.status_code == 404 and "There is no run nope#1" in missing.text
    assert services.runs.get("tiny", number).status is Status.WAITING
