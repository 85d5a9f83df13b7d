"""People approve: the release and canary gates, decisions, roles, expiry (real SQLite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config.loader import parse_config
from shipyard.domain import ApprovalStatus, Gate, Status, TokenRole
from shipyard.errors import ConfigError, Conflict, Forbidden, InvalidInput
from shipyard.pipeline.context import RunContext
from shipyard.pipeline.stages import production
from shipyard.services import Services
from shipyard.services.approvals import ApprovalView
from shipyard.store import acting_as
from shipyard.store.models import utcnow
from shipyard.wiring import open_adapters

SHA = "ab" * 20
CONFIG = """\
name: tiny
build: {{train: "true"}}
model: {{serve: "tiny_model:Model"}}
environments:
  production: {{port: 18999}}
release: {release}
canary: {canary}
"""
MANUAL = "{approval: manual}"
AUTO = "{approval: auto}"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    adapters = open_adapters(tmp_path / "state")
    adapters.store.ensure_project("tiny", str(tmp_path))
    yield Services(adapters)
    adapters.store.close()


def new_run(services: Services, *, release: str = MANUAL, canary: str = AUTO) -> RunContext:
    """A run of the tiny project, its config saying how its gates are approved."""
    adapters = services.adapters
    run = adapters.store.create_run("tiny", SHA, "main")
    config = parse_config(CONFIG.format(release=release, canary=canary))
    ctx = RunContext(adapters, "tiny", run.number, SHA, "main", Path("."), config)
    ctx.log_path("release").parent.mkdir(parents=True, exist_ok=True)
    return ctx


def parked_at(services: Services, ctx: RunContext, gate: Gate) -> str:
    """Ask the gate, and park the run as the engine does on WAITING; the run's message."""
    outcome = services.approvals.gate(ctx, gate)
    assert outcome is not None and outcome.status is Status.WAITING
    services.runs.park(ctx.project, ctx.number, gate.value, outcome.message)
    return outcome.message


def publish(services: Services, ctx: RunContext) -> None:
    services.adapters.store.add_artifact(
        "tiny", ctx.version, "sha256:" + "0" * 64, 1, {"name": "tiny"}, run_id(services, ctx)
    )


def run_id(services: Services, ctx: RunContext) -> int:
    return services.adapters.store.get_run(ctx.project, ctx.number).id


def events(services: Services, action: str) -> list[tuple[str, dict[str, object]]]:
    found = services.adapters.store.events("tiny#", limit=500)
    return [(e.actor, e.detail) for e in found if e.action == action]


def test_an_auto_gate_lets_the_run_through_and_asks_nobody(services: Services) -> None:
    ctx = new_run(services, release=AUTO)
    assert services.approvals.gate(ctx, Gate.RELEASE) is None
    assert services.approvals.gate(ctx, Gate.CANARY) is None
    assert services.approvals.pending() == []
    assert events(services, "approval.requested") == []


def test_a_manual_release_waits_for_qa_and_says_so_everywhere(services: Services) -> None:
    ctx = new_run(services)
    message = parked_at(services, ctx, Gate.RELEASE)
    assert message == "waiting for approval of release by qa"
    run = services.runs.get("tiny", ctx.number)
    assert run.status is Status.WAITING and run.message == message
    [pending] = services.approvals.pending()
    assert (pending.project, pending.run, pending.gate) == ("tiny", ctx.number, Gate.RELEASE)
    assert pending.approver is TokenRole.QA and pending.status is ApprovalStatus.WAITING
    assert pending.deadline is None
    [(_, detail)] = events(services, "approval.requested")
    assert detail["gate"] == "release" and detail["approver"] == "qa"
    assert "shipyard approve 1" in ctx.log_path("release").read_text()
    # Asked again (a restarted worker), the gate still waits and opens no second request.
    again = services.approvals.gate(ctx, Gate.RELEASE)
    assert again is not None and again.status is Status.WAITING
    assert len(events(services, "approval.requested")) == 1


def test_an_approval_records_who_when_and_why_and_resumes_the_run(services: Services) -> None:
    ctx = new_run(services)
    publish(services, ctx)
    parked_at(services, ctx, Gate.RELEASE)
    with acting_as("alice"):
        view = services.approvals.approve("tiny", ctx.number, "  looked at the qa report ")
    assert view.status is ApprovalStatus.APPROVED
    assert (view.actor, view.reason) == ("alice", "looked at the qa report")
    assert view.decided_at is not None
    run = services.runs.get("tiny", ctx.number)
    assert run.status is Status.QUEUED  # a worker takes it again, from the release stage
    assert services.adapters.store.get_run("tiny", ctx.number).resume_from == "release"
    assert services.approvals.pending() == []
    [(actor, detail)] = events(services, "approval.approved")
    assert actor == "alice" and detail == {"gate": "release", "reason": "looked at the qa report"}
    info = services.adapters.store.get_artifact("tiny", ctx.version).build_info
    [entry] = info["approvals"]
    assert entry["gate"] == "release" and entry["decision"] == "approved"
    assert entry["actor"] == "alice" and entry["reason"] == "looked at the qa report"
    assert entry["at"].startswith(view.decided_at.isoformat()[:16])
    # The stage runs again from its start: the gate now lets it through, and says who approved.
    assert services.approvals.gate(ctx, Gate.RELEASE) is None
    assert "approved by alice" in ctx.log_path("release").read_text()


def test_a_rejection_fails_the_stage_with_who_and_why(services: Services) -> None:
    ctx = new_run(services)
    publish(services, ctx)
    parked_at(services, ctx, Gate.RELEASE)
    with pytest.raises(InvalidInput, match="needs a reason"):
        services.approvals.reject("tiny", ctx.number, "   ")
    with acting_as("bob"):
        services.approvals.reject("tiny", ctx.number, "accuracy dropped on class 2")
    assert services.runs.get("tiny", ctx.number).status is Status.QUEUED
    outcome = services.approvals.gate(ctx, Gate.RELEASE)
    assert outcome is not None and outcome.status is Status.FAILED
    assert outcome.message == "rejected by bob: accuracy dropped on class 2"
    [(actor, _)] = events(services, "approval.rejected")
    assert actor == "bob"
    [entry] = services.adapters.store.get_artifact("tiny", ctx.version).build_info["approvals"]
    assert entry["decision"] == "rejected" and entry["actor"] == "bob"


def test_each_gate_needs_its_role(services: Services) -> None:
    release = new_run(services)
    parked_at(services, release, Gate.RELEASE)
    with pytest.raises(Forbidden, match="needs the qa role"):
        services.approvals.approve("tiny", release.number, role=TokenRole.DEVELOPER)
    assert services.approvals.approve("tiny", release.number, role=TokenRole.QA).actor

    canary = new_run(services, release=AUTO, canary=MANUAL)
    assert parked_at(services, canary, Gate.CANARY) == "waiting for approval of canary by releaser"
    with pytest.raises(
        Forbidden, match="needs the releaser role or above; this token's role is qa"
    ):
        services.approvals.reject("tiny", canary.number, "no", role=TokenRole.QA)
    assert services.approvals.pending()[0].status is ApprovalStatus.WAITING  # nothing changed
    assert events(services, "approval.rejected") == []
    view = services.approvals.approve("tiny", canary.number, role=TokenRole.RELEASER)
    assert view.gate is Gate.CANARY and view.status is ApprovalStatus.APPROVED


def test_a_decision_meant_for_another_gate_changes_nothing(services: Services) -> None:
    ctx = new_run(services)
    parked_at(services, ctx, Gate.RELEASE)
    with pytest.raises(Conflict, match="waits at the release gate, not at canary"):
        services.approvals.approve("tiny", ctx.number, gate=Gate.CANARY)
    assert services.approvals.pending()[0].status is ApprovalStatus.WAITING
    assert events(services, "approval.approved") == []
    view = services.approvals.approve("tiny", ctx.number, gate=Gate.RELEASE)
    assert view.status is ApprovalStatus.APPROVED


def test_the_latest_decisions_come_newest_first_with_who_and_why(services: Services) -> None:
    first, second = new_run(services), new_run(services)
    parked_at(services, first, Gate.RELEASE)
    parked_at(services, second, Gate.RELEASE)
    assert services.approvals.decided() == []  # nothing decided while both wait
    with acting_as("alice"):
        services.approvals.approve("tiny", first.number, "read the report")
    with acting_as("bob"):
        services.approvals.reject("tiny", second.number, "drift on class 2")
    latest = services.approvals.decided()
    assert [(d.run, d.status, d.actor, d.reason) for d in latest] == [
        (second.number, ApprovalStatus.REJECTED, "bob", "drift on class 2"),
        (first.number, ApprovalStatus.APPROVED, "alice", "read the report"),
    ]
    assert [d.run for d in services.approvals.decided(limit=1)] == [second.number]


def test_approving_a_run_that_waits_for_nothing_is_a_conflict_naming_what_it_does(
    services: Services,
) -> None:
    ctx = new_run(services)
    services.adapters.store.set_run_status("tiny", ctx.number, Status.RUNNING, "building")
    with pytest.raises(Conflict, match=r"not waiting for an approval: it is running \(building\)"):
        services.approvals.approve("tiny", ctx.number)
    # Parked for its deploy turn is waiting too, but not for a person.
    services.runs.park("tiny", ctx.number, "staging", "waiting for run #1")
    with pytest.raises(Conflict, match="waiting for run #1"):
        services.approvals.approve("tiny", ctx.number)
    # Decided once, it cannot be decided again.
    other = new_run(services)
    parked_at(services, other, Gate.RELEASE)
    services.approvals.approve("tiny", other.number)
    with pytest.raises(Conflict, match="it is queued"):
        services.approvals.reject("tiny", other.number, "too late")


def test_an_unanswered_request_expires_and_fails_the_run_with_the_timeout(
    services: Services,
) -> None:
    ctx = new_run(services, release="{approval: manual, approval_timeout: 0.3s}")
    publish(services, ctx)
    parked_at(services, ctx, Gate.RELEASE)
    assert services.approvals.pending()[0].deadline is not None
    assert services.approvals.expire_overdue() == []  # not yet
    deadline = time.monotonic() + 10
    expired = []
    while len(expired) < 2 and time.monotonic() < deadline:  # each on its own deadline
        expired += services.approvals.expire_overdue()
        time.sleep(0.05)
    [view] = expired
    assert view.status is ApprovalStatus.EXPIRED and view.actor is None
    assert services.runs.get("tiny", ctx.number).status is Status.QUEUED
    outcome = services.approvals.gate(ctx, Gate.RELEASE)
    assert outcome is not None and outcome.status is Status.FAILED
    assert outcome.message == "approval timed out after 0.3s"
    [(_, detail)] = events(services, "approval.expired")
    assert detail["reason"] == "approval timed out after 0.3s"
    [entry] = services.adapters.store.get_artifact("tiny", ctx.version).build_info["approvals"]
    assert entry["decision"] == "expired"
    assert services.approvals.expire_overdue() == []  # once only


def test_a_decision_after_the_deadline_does_not_count(services: Services) -> None:
    ctx = new_run(services, release="{approval: manual, approval_timeout: 0.2s}")
    parked_at(services, ctx, Gate.RELEASE)
    deadline = time.monotonic() + 10
    while services.approvals.pending()[0].deadline > utcnow() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(Conflict, match=r"timed out after 0\.2s"):
        services.approvals.approve("tiny", ctx.number, "sorry, late")
    assert events(services, "approval.approved") == []
    assert len(events(services, "approval.expired")) == 1
    assert services.runs.get("tiny", ctx.number).status is Status.QUEUED  # to fail at its gate


def test_a_decided_run_left_parked_is_resumed_by_the_server_loop(services: Services) -> None:
    ctx = new_run(services)
    parked_at(services, ctx, Gate.RELEASE)
    services.approvals.approve("tiny", ctx.number)
    # The deciding process died between the decision and the re-queue: the run is parked again.
    services.runs.park("tiny", ctx.number, "release", "waiting for approval of release by qa")
    assert services.approvals.expire_overdue() == []
    assert services.runs.get("tiny", ctx.number).status is Status.QUEUED


def test_the_canary_gate_holds_a_first_release_before_production_sees_it(
    services: Services,
) -> None:
    ctx = new_run(services, release=AUTO, canary=MANUAL)
    outcome = production.canary(ctx)
    assert outcome.status is Status.WAITING
    assert outcome.message == "waiting for approval of canary by releaser"
    assert services.adapters.store.deployments("tiny") == []  # nothing started
    services.runs.park("tiny", ctx.number, "canary", outcome.message)
    services.approvals.approve("tiny", ctx.number, "go")
    skipped = production.canary(ctx)
    assert skipped.status is Status.SKIPPED and "first release" in skipped.message


def test_an_approval_timeout_needs_manual_approval() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.format(release="{approval_timeout: 1h}", canary=AUTO))
    assert "expected `approval: manual` with `approval_timeout`" in str(caught.value.problems)
    config = parse_config(
        CONFIG.format(release=AUTO, canary="{approval: manual, approval_timeout: 2h}")
    )
    assert config.canary is not None and config.canary.approval_timeout == 7200


def test_a_run_cancelled_while_it_waited_is_left_cancelled_when_its_request_expires(
    services: Services,
) -> None:
    ctx = new_run(services, release="{approval: manual, approval_timeout: 0.2s}")
    parked_at(services, ctx, Gate.RELEASE)
    late = new_run(services, release="{approval: manual, approval_timeout: 0.2s}")
    parked_at(services, late, Gate.RELEASE)
    assert services.runs.cancel("tiny", ctx.number).status is Status.CANCELLED
    assert [p.run for p in services.approvals.pending()] == [late.number]
    deadline = time.monotonic() + 10
    expired: list[ApprovalView] = []
    while len(expired) < 2 and time.monotonic() < deadline:  # each on its own deadline
        expired += services.approvals.expire_overdue()
        time.sleep(0.05)
    assert sorted(view.run for view in expired) == [ctx.number, late.number]
    assert services.runs.get("tiny", ctx.number).status is Status.CANCELLED
    assert services.runs.get("tiny", late.number).status is Status.QUEUED  # to fail at its gate


def test_a_runs_approvals_are_listed_with_who_decided_in_the_order_asked(
    services: Services,
) -> None:
    ctx = new_run(services, release=MANUAL, canary=MANUAL)
    other = new_run(services, release=MANUAL)
    parked_at(services, ctx, Gate.RELEASE)
    parked_at(services, other, Gate.RELEASE)
    with acting_as("quinn"):
        services.approvals.approve("tiny", ctx.number, "looks right", role=TokenRole.QA)
    parked_at(services, ctx, Gate.CANARY)
    found = services.approvals.of_run("tiny", ctx.number)
    assert [(a.gate, a.status, a.actor, a.reason) for a in found] == [
        (Gate.RELEASE, ApprovalStatus.APPROVED, "quinn", "looks right"),
        (Gate.CANARY, ApprovalStatus.WAITING, None, None),
    ]
    assert services.approvals.of_run("tiny", other.number)[0].status is ApprovalStatus.WAITING
    assert services.approvals.of_run("tiny", 99) == []
