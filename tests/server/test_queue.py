"""The durable queue: workers claim runs by lease, projects run side by side, one project's
runs deploy in number order, a parked run holds no worker, and `--detach` leaves a run to a
real `shipyard server`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.adapters import Adapters
from shipyard.cli.app import app
from shipyard.domain import Status
from shipyard.pipeline.context import RunContext, StageOutcome, free_port
from shipyard.pipeline.stages import STAGE_FUNCTIONS
from shipyard.server.workers import Workers
from shipyard.services.runs import Runs, run_lease
from shipyard.store.models import StageRun
from shipyard.wiring import open_adapters

from .queue_projects import loosen_release_policy, wait_for, write_project


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[Adapters]:
    a = open_adapters(tmp_path / "state")
    loosen_release_policy(a)
    yield a
    a.store.close()


@pytest.fixture
def workers(adapters: Adapters) -> Iterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for pool in started:
        pool.stop()


def start_workers(adapters: Adapters, started: list[Workers], count: int) -> Workers:
    pool = Workers(adapters, count, ttl=5.0, interval=0.1)
    pool.start()
    started.append(pool)
    return pool


def stage(adapters: Adapters, project: str, number: int, name: str) -> StageRun:
    return next(s for s in adapters.store.get_run(project, number).stages if s.name == name)


def status(adapters: Adapters, project: str, number: int) -> str:
    return adapters.store.get_run(project, number).status


def test_two_workers_build_two_projects_at_the_same_time(
    tmp_path: Path, adapters: Adapters, workers: list[Workers]
) -> None:
    # Each train marks that it runs, then waits for the other's mark: with one worker at a
    # time neither would ever finish; with two they meet.
    marks = tmp_path / "marks"
    marks.mkdir()
    a = write_project(tmp_path / "alpha", "alpha", "--mark", f"{marks}/a", "--await", f"{marks}/b")
    b = write_project(tmp_path / "beta", "beta", "--mark", f"{marks}/b", "--await", f"{marks}/a")
    runs = Runs(adapters)
    runs.queue(tmp_path / "alpha", a)
    runs.queue(tmp_path / "beta", b)
    start_workers(adapters, workers, 2)
    both_building = {"alpha": False, "beta": False}

    def seen_running_together() -> bool:
        states = {p: stage(adapters, p, 1, "build").status for p in both_building}
        if all(state == "running" for state in states.values()):
            both_building.update(dict.fromkeys(both_building, True))
        return all(status(adapters, p, 1) == "passed" for p in both_building)

    wait_for(seen_running_together, "both runs to pass")
    assert both_building == {"alpha": True, "beta": True}
    drivers = {adapters.store.get_run(p, 1).worker for p in both_building}
    assert len(drivers) == 2 and all(d and d.startswith("worker-") for d in drivers)
    assert not adapters.leases.held_by("run:")  # finished runs hold no lease


def test_runs_of_one_project_deploy_in_number_order(
    tmp_path: Path, adapters: Adapters, workers: list[Workers]
) -> None:
    repo = tmp_path / "tiny"
    slow = write_project(repo, "tiny", "--sleep", "3")
    fast = write_project(repo, "tiny")
    runs = Runs(adapters)
    runs.queue(repo, slow)
    runs.queue(repo, fast)
    start_workers(adapters, workers, 2)
    wait_for(lambda: status(adapters, "tiny", 2) in ("passed", "failed"), "run #2 to end")
    wait_for(lambda: status(adapters, "tiny", 1) in ("passed", "failed"), "run #1 to end")
    assert (status(adapters, "tiny", 1), status(adapters, "tiny", 2)) == ("passed", "passed")
    # Run #2 built while #1 was still training, then waited (holding no worker) for its turn.
    waited = [e for e in adapters.store.events("tiny#2") if e.action == "run.waiting"]
    assert waited and waited[-1].detail["message"] == "waiting for run #1"
    first = adapters.store.get_run("tiny", 1)
    second_staging = stage(adapters, "tiny", 2, "staging")
    assert first.finished_at is not None and second_staging.started_at is not None
    assert second_staging.started_at >= first.finished_at
    built = stage(adapters, "tiny", 2, "build").finished_at
    assert built is not None and built < first.finished_at


def test_a_parked_run_holds_no_worker(
    tmp_path: Path,
    adapters: Adapters,
    workers: list[Workers],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stand-in for the release gate: it waits until someone approves (the file appears).
    approved = tmp_path / "approved"
    checks: list[int] = []
    real_release = STAGE_FUNCTIONS["release"]

    def gate(ctx: RunContext) -> StageOutcome:
        checks.append(ctx.number)
        if ctx.project == "gated" and not approved.exists():
            return StageOutcome(Status.WAITING, "waiting for qa to approve")
        return real_release(ctx)

    monkeypatch.setitem(STAGE_FUNCTIONS, "release", gate)
    gated = write_project(tmp_path / "gated", "gated")
    free = write_project(tmp_path / "free", "free")
    runs = Runs(adapters)
    runs.queue(tmp_path / "gated", gated)
    start_workers(adapters, workers, 1)
    wait_for(lambda: status(adapters, "gated", 1) == "waiting", "the gated run to park")
    parked = runs.get("gated", 1)
    assert (parked.message, parked.resume_from, parked.worker) == (
        "waiting for qa to approve",
        "release",
        None,
    )
    lease = run_lease("gated", 1)
    wait_for(lambda: adapters.leases.holder(lease) is None, "the parked run's lease to go")
    # The only worker is free: another project's run goes all the way meanwhile.
    runs.queue(tmp_path / "free", free)
    wait_for(lambda: status(adapters, "free", 1) == "passed", "the free run to pass")
    assert status(adapters, "gated", 1) == "waiting"
    built = stage(adapters, "gated", 1, "build").finished_at
    approved.write_text("qa")
    runs.requeue("gated", 1, "release")
    wait_for(lambda: status(adapters, "gated", 1) == "passed", "the approved run to pass")
    assert stage(adapters, "gated", 1, "build").finished_at == built  # not built again
    assert checks.count(1) >= 2  # the gate ran again on resume


def test_a_detached_run_is_driven_by_a_server_that_stops_cleanly(
    tmp_path: Path, adapters: Adapters
) -> None:
    repo = tmp_path / "tiny"
    write_project(repo, "tiny")
    state = adapters.state.root
    queued = CliRunner().invoke(app, ["run", str(repo), "--detach", "--state", str(state)])
    assert queued.exit_code == 0, queued.output
    assert "run #1 queued" in " ".join(queued.output.split())
    assert status(adapters, "tiny", 1) == "queued"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_CACHE"] = os.environ["SHIPYARD_CACHE"]
    port = free_port()
    command = [sys.executable, "-m", "shipyard", "server", "--state", str(state)]
    command += ["--port", str(port), "--workers", "1", "--lease-ttl", "3"]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(lambda: status(adapters, "tiny", 1) == "passed", "the server to drive run #1")
        assert adapters.leases.held_by("server:"), "a live server holds its lease"
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert "driving tiny#1" in output
    assert not adapters.leases.held_by("server:")  # released on a clean stop
