"""The pipeline engine on a tiny real project: order, persistence, failures, cancel, waiting."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.domain import STAGES, Status
from shipyard.errors import ConfigError
from shipyard.pipeline.engine import Pipeline

from .conftest import write_project


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lines: list[str] = []

    def stage_started(self, stage: str) -> None:
        self.events.append(("start", stage))

    def line(self, stage: str, text: str) -> None:
        self.lines.append(f"{stage}: {text}")

    def stage_finished(self, stage: str, status: Status, message: str, seconds: float) -> None:
        self.events.append((status.value, stage))


def stage_status(adapters: Adapters, number: int) -> dict[str, str]:
    return {s.name: s.status for s in adapters.store.get_run("tiny", number).stages}


def test_a_passing_commit_runs_every_configured_stage_in_order(
    repo: Path, adapters: Adapters
) -> None:
    recorder = Recorder()
    pipeline = Pipeline(adapters, recorder)
    ctx = pipeline.queue(repo)
    assert pipeline.execute(ctx) is Status.PASSED
    statuses = stage_status(adapters, ctx.number)
    assert list(statuses) == list(STAGES)
    assert (
        statuses["build"]
        == statuses["test"]
        == statuses["publish"]
        == statuses["release"]
        == "passed"
    )
    assert statuses["analyze"] == statuses["staging"] == statuses["qa"] == "skipped"
    started = [stage for kind, stage in recorder.events if kind == "start"]
    assert started == list(STAGES)
    run = adapters.store.get_run("tiny", ctx.number)
    assert run.stages[1].summary["passed"] == 2
    assert any("2 passed" in line for line in recorder.lines)  # pytest's output was streamed
    assert (
        adapters.state.stage_log("tiny", ctx.number, "build").read_text().count("[shipyard]") >= 2
    )
    actions = {event.action for event in adapters.store.events("tiny#")}
    assert {"run.created", "run.running", "stage.running", "stage.passed", "run.passed"} <= actions


def test_runs_are_numbered_per_project_and_pinned_to_the_sha(
    repo: Path, adapters: Adapters
) -> None:
    pipeline = Pipeline(adapters)
    first = pipeline.queue(repo)
    # A commit that lands after the run started must not leak into it.
    (repo / "tiny_model.py").write_text("raise SystemExit('not this commit')\n")
    later = commit(repo, "later")
    assert pipeline.execute(first) is Status.PASSED
    info = adapters.store.get_artifact("tiny", first.version).build_info
    assert info["git"]["sha"] == first.sha != later
    second = pipeline.queue(repo)
    assert (first.number, second.number) == (1, 2)
    assert second.sha == later


def test_a_failing_unit_test_stops_the_run_and_skips_the_rest(
    repo: Path, adapters: Adapters
) -> None:
    write_project(repo, test_body="assert 1 + 1 == 3")
    commit(repo, "broken test")
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(repo)
    assert pipeline.execute(ctx) is Status.FAILED
    run = adapters.store.get_run("tiny", ctx.number)
    stages = {s.name: s for s in run.stages}
    assert stages["test"].status == "failed"
    assert "1 passed, 1 failed" in (stages["test"].message or "")
    assert stages["publish"].status == "skipped"
    assert stages["publish"].message == "not reached: test failed"
    assert run.status == "failed"
    assert adapters.store.list_artifacts(name="tiny") == []


def test_a_train_command_that_writes_no_model_fails_the_build(
    repo: Path, adapters: Adapters
) -> None:
    write_project(repo, train="python -c \"print('forgot to save')\"")
    commit(repo, "no model")
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(repo)
    assert pipeline.execute(ctx) is Status.FAILED
    build = adapters.store.get_run("tiny", ctx.number).stages[0]
    assert "wrote no model" in (build.message or "")


def test_a_stage_past_its_timeout_is_stopped(repo: Path, adapters: Adapters) -> None:
    write_project(repo, train="sleep 30", timeout="1s")
    commit(repo, "slow")
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(repo)
    started = time.monotonic()
    assert pipeline.execute(ctx) is Status.FAILED
    assert time.monotonic() - started < 25
    build = adapters.store.get_run("tiny", ctx.number).stages[0]
    assert "timeout of 1s" in (build.message or "")


def test_cancel_stops_the_running_command(repo: Path, adapters: Adapters) -> None:
    write_project(repo, train="sleep 30")
    commit(repo, "slow")
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(repo)
    threading.Timer(2.0, adapters.store.request_cancel, args=("tiny", ctx.number)).start()
    assert pipeline.execute(ctx) is Status.CANCELLED
    run = adapters.store.get_run("tiny", ctx.number)
    assert run.status == "cancelled"
    assert run.stages[0].status == "cancelled"
    assert all(s.status == "skipped" for s in run.stages[1:])


def test_a_newer_run_is_parked_until_the_older_one_has_deployed(
    repo: Path, adapters: Adapters
) -> None:
    pipeline = Pipeline(adapters)
    older = pipeline.queue(repo)
    newer = pipeline.queue(repo)
    # The newer run builds and tests, then its deploy turn has not come: it holds no worker.
    assert pipeline.execute(newer) is Status.WAITING
    parked = adapters.store.get_run("tiny", newer.number)
    assert (parked.status, parked.message, parked.resume_from) == (
        "waiting",
        "waiting for run #1",
        "staging",
    )
    assert pipeline.runs.driver("tiny", newer.number) is None
    assert pipeline.runs.release_turns() == []  # run #1 is still queued
    assert pipeline.execute(older) is Status.PASSED
    assert [run.number for run in pipeline.runs.release_turns()] == [newer.number]
    assert pipeline.execute(pipeline.context("tiny", newer.number)) is Status.PASSED
    older_run = adapters.store.get_run("tiny", older.number)
    newer_run = adapters.store.get_run("tiny", newer.number)
    stages = {s.name: s for s in newer_run.stages}
    assert older_run.finished_at is not None and stages["staging"].started_at is not None
    assert stages["staging"].started_at >= older_run.finished_at
    # Resumed at staging: the build was not done again, and release found the build's archive.
    assert stages["build"].finished_at is not None
    assert stages["build"].finished_at < older_run.finished_at
    assert stages["release"].status == "passed"
    actions = [e.action for e in adapters.store.events(f"tiny#{newer.number}")]
    assert "run.waiting" in actions and "run.queued" in actions


def test_a_commit_without_shipyard_yaml_is_refused(repo: Path, adapters: Adapters) -> None:
    git(repo, "rm", "-q", "shipyard.yaml")
    commit(repo, "drop config")
    with pytest.raises(ConfigError, match=r"has no shipyard\.yaml"):
        Pipeline(adapters).queue(repo)
