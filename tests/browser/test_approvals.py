"""The approvals inbox and the audit log in Chromium: a qa user approves a run that waits at
its release gate and it goes on; a viewer sees no action button anywhere, and a decision forged
from the viewer's own session is refused whether or not it carries the page's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shipyard.domain import Gate, Status, TokenRole
from shipyard.services import Services
from shipyard.services.runs import run_lease

from ..server.queue_projects import commit, loosen_release_policy, wait_for, write_project
from ..server.test_dashboard_approvals import parked
from .conftest import PHONE, Dashboard, serious_violations, start_dashboard

# Buttons that change nothing: signing out, and the audit log's filter form.
HARMLESS = {"Sign out", "Filter"}


def gated_project(repo: Path) -> None:
    """The tiny queue-test project, its release approved by a person."""
    write_project(repo, "tiny")
    config = repo / "shipyard.yaml"
    config.write_text(config.read_text() + "release: {approval: manual}\n")
    commit(repo, "release: {approval: manual}")


@pytest.fixture
def waiting_run(tmp_path: Path) -> Iterator[Dashboard]:
    """A server whose workers take run #1 of a real project up to its release gate."""

    def prepare(services: Services) -> None:
        loosen_release_policy(services.adapters)
        gated_project(tmp_path / "tiny")
        services.runs.queue(tmp_path / "tiny")

    one = start_dashboard(tmp_path / "state", prepare)
    yield one
    one.stop()


def run_status(dashboard: Dashboard, number: int) -> Status:
    services = dashboard.services()
    try:
        return services.runs.get("tiny", number).status
    finally:
        services.adapters.store.close()


def test_qa_approves_a_waiting_run_from_the_inbox_and_it_goes_on(
    page: Page, waiting_run: Dashboard, shoot: Callable[[Page, str], Path]
) -> None:
    dashboard = waiting_run
    wait_for(lambda: run_status(dashboard, 1) is Status.WAITING, "the run to wait", 180)
    dashboard.sign_in(page, TokenRole.QA, "/approvals")
    row = page.locator("#approval-tiny-1-release")
    expect(row).to_be_visible()
    expect(row.get_by_role("link", name="tiny #1")).to_have_attribute(
        "href", "/projects/tiny/runs/1"
    )
    expect(row).to_contain_text("qa or above")
    assert serious_violations(page) == []
    reason = row.get_by_label(re.compile("Reason for tiny #1"))
    row.get_by_role("button", name="Reject").click()  # no reason: the browser keeps the form
    assert reason.evaluate("input => input.validity.valueMissing")
    expect(page).to_have_url(f"{dashboard.url}/approvals")
    assert run_status(dashboard, 1) is Status.WAITING
    reason.fill("read the QA report")
    shoot(page, "approvals")
    row.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(f"{dashboard.url}/approvals")
    expect(page.locator("#approval-tiny-1-release")).to_have_count(0)
    decisions = page.locator("table.decisions tbody tr")
    expect(decisions.first).to_contain_text("approved")
    expect(decisions.first).to_contain_text("read the QA report")
    wait_for(lambda: run_status(dashboard, 1) is not Status.WAITING, "the run to move on", 30)
    wait_for(lambda: run_status(dashboard, 1) is Status.PASSED, "the run to pass", 180)

    page.goto(f"{dashboard.url}/audit?kind=approval.approved")
    event = page.locator("table.audit tbody tr").first
    expect(event).to_contain_text("qa")
    expect(event).to_contain_text("reason=read the QA report")
    expect(event.get_by_role("link", name="tiny#1")).to_have_attribute(
        "href", "/projects/tiny/runs/1"
    )
    page.goto(f"{dashboard.url}/audit")
    assert serious_violations(page) == []
    shoot(page, "audit")


@pytest.fixture
def parked_run(tmp_path: Path) -> Iterator[Dashboard]:
    """A server with run tiny#1 parked at its release gate (no pipeline needed)."""
    one = start_dashboard(
        tmp_path / "state", lambda services: parked(services, "tiny", Gate.RELEASE)
    )
    yield one
    one.stop()


def test_a_viewer_sees_no_action_button_and_a_forged_decision_is_refused(
    page: Page, parked_run: Dashboard
) -> None:
    dashboard = parked_run
    dashboard.sign_in(page, TokenRole.VIEWER, "/approvals")
    expect(page.locator("#approval-tiny-1-release")).to_contain_text("needs qa")
    for path in ("/projects", "/approvals", "/audit"):
        page.goto(f"{dashboard.url}{path}")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        labels = {label.strip() for label in page.get_by_role("button").all_inner_texts()}
        assert labels <= HARMLESS, f"{path} shows {labels - HARMLESS} to a viewer"

    page.goto(f"{dashboard.url}/approvals")
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert csrf
    decide = f"{dashboard.url}/approvals/tiny/1/release/approve"
    without = page.request.post(decide, form={"reason": "forged"}, max_redirects=0)
    assert without.status == 403 and "CSRF" in without.text()
    signed = page.request.post(decide, form={"reason": "forged", "csrf": csrf}, max_redirects=0)
    assert signed.status == 403 and "this needs qa or above" in signed.text()

    assert run_status(dashboard, 1) is Status.WAITING
    services = dashboard.services()
    try:
        [waiting] = services.approvals.pending()
        assert (waiting.project, waiting.run, waiting.gate) == ("tiny", 1, Gate.RELEASE)
        assert services.approvals.decided() == []
        assert services.audit.events(action="approval.approved") == []
    finally:
        services.adapters.store.close()
    page.reload()
    expect(page.locator("#approval-tiny-1-release")).to_be_visible()


def test_a_new_request_appears_live_and_a_reason_being_typed_survives_the_refresh(
    page: Page, parked_run: Dashboard
) -> None:
    with page.expect_response(lambda answer: "/events" in answer.url):  # the feed listens
        parked_run.sign_in(page, TokenRole.QA, "/approvals")
    reason = page.get_by_label(re.compile("Reason for tiny #1"))
    reason.fill("half a senten")
    services = parked_run.services()
    # The server's workers claim a queued run at once; held by this test as a driving worker
    # holds it, run #2 goes from created to parked without a worker taking it first.
    lease = services.adapters.leases.hold(run_lease("tiny", 2), "test-driver")
    assert lease is not None
    try:
        assert parked(services, "tiny", Gate.RELEASE) == 2
    finally:
        lease.release()
        services.adapters.store.close()
    expect(page.locator("#approval-tiny-2-release")).to_be_visible()  # no reload
    expect(page.get_by_label(re.compile("Reason for tiny #1"))).to_have_value("half a senten")


def test_the_inbox_and_the_audit_log_fit_a_phone_and_pass_axe(
    chromium: Browser, parked_run: Dashboard
) -> None:
    phone = chromium.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = phone.new_page()
        parked_run.sign_in(page, TokenRole.RELEASER, "/approvals")
        expect(page.get_by_role("button", name="Approve")).to_be_visible()
        for path in ("/approvals", "/audit", "/audit?project=tiny&since=2000-01-01T00:00"):
            page.goto(f"{parked_run.url}{path}")
            expect(page.locator("main h1")).to_be_visible()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} is {width}px wide on a phone"
            assert serious_violations(page) == [], path
    finally:
        phone.close()
