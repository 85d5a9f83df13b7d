"""The rollout page in Chromium: a canary that a real run rolled back shows the failed
judgement with its numbers and the charts of canary against stable; a releaser steers a
rollout from the page, and the page follows a change made elsewhere within a second."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from shipyard.canary import judge_canary, records
from shipyard.config.schema import AnalysisConfig, Threshold
from shipyard.domain import RolloutAction, Status, TokenRole
from shipyard.examples import example_path
from shipyard.pipeline import deploy
from shipyard.pipeline.context import free_port
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.interface import VersionStats
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.store.models import Rollout
from shipyard.wiring import open_adapters

from ..e2e.test_canary_rollback import FAULT
from .conftest import PHONE, Dashboard, serious_violations, start_dashboard

LIVE_WITHIN_MS = 1000  # the bound: a change shows within a second


# A production-only fault that shows under the canary's probe traffic: staging, QA and the
# warm-up prediction pass, then about a third of the canary's answers are errors.
def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(
        repo,
        "-c",
        "user.name=Test",
        "-c",
        "user.email=test@example.invalid",
        "commit",
        "-qm",
        message,
    )


def iris(root: Path) -> Path:
    """The iris example in a git repository, on a free port, judged every 2 s."""
    repo = root / "iris"
    shutil.copytree(
        example_path("iris"), repo, ignore=shutil.ignore_patterns("__pycache__", ".shipyard")
    )
    config = repo / "shipyard.yaml"
    text = re.sub(r"port: \d+", f"port: {free_port()}", config.read_text())
    config.write_text(text.replace("interval: 3s", "interval: 2s"))
    (repo / ".gitignore").write_text("__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "first model")
    return repo


def roll_back_a_faulty_canary(repo: Path) -> Callable[[Services], None]:
    def run(services: Services) -> None:
        pipeline = Pipeline(services.adapters)
        assert pipeline.execute(pipeline.queue(repo)) is Status.PASSED
        serve = repo / "iris_model" / "serve.py"
        serve.write_text(serve.read_text() + FAULT)
        commit(repo, "a model with a production-only fault")
        assert pipeline.execute(pipeline.queue(repo)) is Status.ROLLED_BACK

    return run


@pytest.fixture
def rolled_back(tmp_path: Path) -> Iterator[Dashboard]:
    state = tmp_path / "state"
    one = start_dashboard(state, roll_back_a_faulty_canary(iris(tmp_path)))
    try:
        yield one
    finally:
        one.stop()
        adapters = open_adapters(state)
        try:
            deploy.stop_all(adapters)
        finally:
            adapters.store.close()


def newest_rollout(dashboard: Dashboard) -> int:
    services = dashboard.services()
    try:
        newest: int = services.rollouts.recent(1)[0].id
        return newest
    finally:
        services.adapters.store.close()


def test_a_rolled_back_canary_shows_the_failed_judgement_and_its_charts(
    chromium: Browser, page: Page, rolled_back: Dashboard, shoot: Callable[[Page, str], Path]
) -> None:
    number = newest_rollout(rolled_back)
    rolled_back.sign_in(page, TokenRole.RELEASER, f"/rollouts/{number}")
    expect(page.locator(".rollout-facts .status")).to_have_text("rolled-back")
    expect(page.locator(".rollout-step .status-rolled-back")).to_have_count(1)
    failed = page.locator("details.judgement-fail").first
    expect(failed).to_have_attribute("open", "")
    error_rate = failed.locator("tr", has=page.locator("th", has_text="error_rate"))
    expect(error_rate.locator(".verdict")).to_have_text("fail")
    cells = error_rate.locator("td.num")
    expect(cells.nth(0)).to_have_text(re.compile(r"^\d+\.\d%$"))  # the canary's error rate
    expect(cells.nth(1)).to_have_text("0.0%")  # stable's, which never failed
    expect(cells.nth(2)).to_have_text("2.0%")  # the example's analysis.error_rate.max
    expect(error_rate.locator("td.detail")).to_contain_text("> max 2.0%")
    for chart in ("error-rate", "latency", "predictions"):
        expect(page.locator(f"#chart-{chart} canvas")).to_be_visible()
    # A finished rollout offers no command, even to a releaser.
    expect(page.locator(".rollout-actions")).to_have_count(0)
    assert serious_violations(page) == []
    shoot(page, "rollout")

    phone = chromium.new_context(viewport=PHONE, is_mobile=True)
    try:
        small = phone.new_page()
        rolled_back.sign_in(small, TokenRole.VIEWER, f"/rollouts/{number}")
        expect(small.locator("#chart-error-rate canvas")).to_be_visible()
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
    finally:
        phone.close()


def judged_window(step: int, canary_errors: int) -> dict[str, Any]:
    """A verdict as the controller stores it, by the real judge on a known window."""
    rng = np.random.default_rng(step)
    stable = VersionStats(100, 0, rng.normal(10, 1, 100).tolist(), {"setosa": 50, "virginica": 50})
    canary = VersionStats(
        100, canary_errors, rng.normal(12, 1, 100).tolist(), {"setosa": 60, "virginica": 40}
    )
    verdict = judge_canary(stable, canary, AnalysisConfig(error_rate=Threshold(max=0.02)))
    return {"step": step, "weight": 20, "at": time.time() - 10 + step, **verdict.to_dict()}


def a_running_rollout(services: Services) -> None:
    services.adapters.store.ensure_project("iris", "/repos/iris")
    row = Rollout(
        project="iris",
        environment="production",
        stable_version="1-aaaaaaa",
        canary_version="2-bbbbbbb",
        steps=[{"weight": 20, "pause": 60.0}, {"weight": 50, "pause": "manual"}],
        status=records.RUNNING,
        verdicts=[judged_window(0, 0), judged_window(1, 1)],
    )
    services.adapters.store.save_rollout(row, "started")


def test_a_releaser_pauses_a_rollout_and_the_page_follows_a_resume_made_elsewhere(
    page: Page, tmp_path: Path
) -> None:
    dashboard = start_dashboard(tmp_path / "state", a_running_rollout)
    try:
        number = newest_rollout(dashboard)
        dashboard.sign_in(page, TokenRole.RELEASER, f"/rollouts/{number}")
        facts, actions = page.locator(".rollout-facts .status"), page.locator(".rollout-actions")
        expect(actions.get_by_role("button")).to_have_text(["Promote", "Pause", "Abort"])
        actions.get_by_role("button", name="Pause").click()
        expect(facts).to_have_text("paused")
        expect(actions.get_by_role("button")).to_have_text(["Promote", "Resume", "Abort"])

        services = dashboard.services()
        try:
            started = time.monotonic()
            with acting_as("someone-else"):
                services.rollouts.steer("iris", "production", RolloutAction.RESUME, number)
            expect(facts).to_have_text("running", timeout=LIVE_WITHIN_MS)
            followed = time.monotonic() - started
        finally:
            services.adapters.store.close()
        assert followed < LIVE_WITHIN_MS / 1000
        expect(actions.get_by_role("button")).to_have_text(["Promote", "Pause", "Abort"])
        # The live update swapped the page in: its charts are drawn again.
        expect(page.locator("#chart-error-rate canvas")).to_have_count(1)
        assert serious_violations(page) == []
        page.get_by_role("link", name="All recent rollouts").click()
        expect(page.locator(f"#rollout-{number} .status")).to_have_text("running")
        assert serious_violations(page) == []
    finally:
        dashboard.stop()
