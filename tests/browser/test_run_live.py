"""A run started from the projects page is followed live on its page, through its stages to
`live`, without reloading: the stage view and the log pane change as the server works.

The project is the iris example, registered with a bare repository as its remote, run to
production by a real `shipyard server` (about a minute on this machine).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shipyard.domain import STAGES, Status, TokenRole
from shipyard.pipeline import deploy
from shipyard.services import Services
from shipyard.store import acting_as

from ..e2e.conftest import make_project
from .conftest import PHONE, Dashboard, serious_violations, start_dashboard

RUN_SECONDS = 300  # the first run also builds the example's environment


@pytest.fixture
def iris(tmp_path: Path) -> Iterator[Dashboard]:
    """A dashboard whose state has the iris example registered from a bare remote."""
    work, _ = make_project(tmp_path / "work", "iris")
    bare = tmp_path / "iris.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)

    def register(services: Services) -> None:
        with acting_as("root"):
            services.projects.add("iris", str(bare))

    one = start_dashboard(tmp_path / "state", register)
    try:
        yield one
    finally:
        one.stop()
        services = one.services()
        try:
            deploy.stop_all(services.adapters)  # the deployments the run left serving
        finally:
            services.adapters.store.close()


def test_a_run_started_from_the_page_is_followed_live_to_live(
    page: Page, chromium: Browser, iris: Dashboard, shoot: Callable[[Page, str], Path]
) -> None:
    iris.sign_in(page, TokenRole.DEVELOPER)
    page.get_by_label("Project").select_option("iris")
    page.get_by_role("button", name="Run a commit").click()
    expect(page).to_have_url(f"{iris.url}/projects/iris/runs/1")
    page.evaluate("window.sameDocument = true")  # gone if the page ever reloads

    # The build's own output streams into the log pane while the build runs.
    expect(page.locator("#log-build")).to_contain_text("train.py", timeout=RUN_SECONDS * 1000)
    stage = {name: page.locator(f"#stage-{name}") for name in STAGES}
    expect(stage["build"]).to_have_class(re.compile(r"status-passed"), timeout=RUN_SECONDS * 1000)
    # The page moves on by itself: the next stages go running, then passed.
    expect(stage["test"]).to_have_class(re.compile(r"status-(running|passed)"))
    passed = re.compile(r"\bstatus-passed\b")
    expect(stage["live"]).to_have_class(passed, timeout=RUN_SECONDS * 1000)
    expect(page.locator("h1 .status")).to_have_text("passed")
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    for name in STAGES:  # the canary is skipped on a first release: nothing to compare with
        expect(stage[name]).to_have_class(passed if name != "canary" else re.compile("status-"))

    # Finished: the last stage's log is shown, read to its end; the reports are there.
    expect(page.locator("#log-live")).not_to_be_empty()
    expect(page.locator("#test-counts")).to_contain_text("passed")
    expect(page.get_by_role("link", name="analysis.sarif")).to_be_visible()
    expect(page.locator("table.qa-metrics")).to_contain_text("accuracy")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert serious_violations(page) == []
    shoot(page, "run")
    the_log_pane_outlives_a_live_refresh(page, iris)

    phone = chromium.new_context(viewport=PHONE, is_mobile=True)
    try:
        small = phone.new_page()
        iris.sign_in(small, TokenRole.VIEWER, "/projects/iris/runs/1")
        expect(small.locator("#log-live")).not_to_be_empty()
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the run page is {width}px wide on a phone"
        # the stage view scrolls sideways inside its strip, the selected stage brought into it
        right = small.locator("#stage-live").evaluate("e => e.getBoundingClientRect().right")
        assert right <= PHONE["width"], "the selected stage is scrolled out of sight"
        assert serious_violations(small) == []
        shoot(small, "run-phone")
    finally:
        phone.close()


def the_log_pane_outlives_a_live_refresh(page: Page, iris: Dashboard) -> None:
    """A change refreshes the page in place; the log pane is kept, not fetched again."""
    page.goto(f"{iris.url}/projects/iris/runs/1?stage=build")
    pane = page.locator("#log-build")
    expect(pane).to_contain_text("train.py")
    page.evaluate("document.getElementById('log-build').dataset.mark = 'kept'")
    text = pane.text_content()
    services = iris.services()
    try:  # a change to the run the change feed announces: the build's message
        store = services.adapters.store
        store.set_stage_status("iris", 1, "build", Status.PASSED, "refreshed in place")
    finally:
        services.adapters.store.close()
    expect(page.locator(".stage-message")).to_have_text("refreshed in place")
    expect(pane).to_have_attribute("data-mark", "kept")
    assert pane.text_content() == text  # nothing appended twice
