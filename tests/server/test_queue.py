"""The durable queue: workers claim runs by lease, projects run side by side, one project's
runs deploy in number order, a parked run holds no worker, and `--detach` leaves a run to a
real `shipyard server`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servers import ShipyardServer, clean_env
from shipyard.adapters import Adapters
from shipyard.cli.app import app
from shipyard.domain import Status
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.pipeline.stages import STAGE_FUNCTIONS
from shipyard.processes import pid_alive
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
    """The run's status; "" before it exists."""
    try:
        return adapters.store.get_run(project, number).status
    except NotFound:
        return ""


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
    with ShipyardServer(state, workers=1, lease_ttl="3") as server:
        wait_for(lambda: status(adapters, "tiny", 1) == "passed", "the server to drive run #1")
        assert adapters.leases.held_by("server:"), "a live server holds its lease"
    assert server.returncode == 0, server.log_text()
    assert "driving tiny#1" in server.log_text()
    assert not adapters.leases.held_by("server:")  # released on a clean stop


def test_a_stopped_server_hands_its_run_back_to_the_queue(
    tmp_path: Path, adapters: Adapters
) -> None:
    mark, gate = tmp_path / "train.pid", tmp_path / "gate"
    repo = tmp_path / "tiny"
    write_project(repo, "tiny", "--mark", str(mark), "--await", str(gate))
    Runs(adapters).queue(repo)
    with ShipyardServer(adapters.state.root, workers=1, lease_ttl="3") as server:
        wait_for(mark.exists, "the train command to start")
        train = int(mark.read_text())
    output = server.log_text()
    assert server.returncode == 0, output
    assert not pid_alive(train)  # the command was stopped with the server
    run = adapters.store.get_run("tiny", 1)
    assert (run.status, run.resume_from, run.worker) == ("queued", "build", None)
    assert (
        stage(adapters, "tiny", 1, "build").message == f"retried after {worker_of(output)} stopped"
    )
    assert not adapters.leases.held_by("run:") and not adapters.leases.held_by("server:")


def test_the_foreground_waits_for_its_deploy_turn_then_drives_on(
    tmp_path: Path, adapters: Adapters
) -> None:
    repo = tmp_path / "tiny"
    write_project(repo, "tiny")
    runs = Runs(adapters)
    runs.queue(repo)  # run #1: queued, and no server to drive it
    state = str(adapters.state.root)
    command = [sys.executable, "-m", "shipyard", "run", str(repo), "--state", state]
    foreground = subprocess.Popen(command, env=clean_env(), stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: status(adapters, "tiny", 2) == "waiting", "run #2 to wait its turn")
        assert runs.get("tiny", 2).message == "waiting for run #1"
        runs.cancel("tiny", 1)  # nobody drives it: cancelled at once, the turn passes on
        output, _ = foreground.communicate(timeout=120)
    finally:
        if foreground.poll() is None:
            foreground.kill()
            foreground.wait()
    assert foreground.returncode == 0, output
    assert "waiting: waiting for run #1" in output
    assert status(adapters, "tiny", 1) == "cancelled"
    assert status(adapters, "tiny", 2) == "passed"


def test_a_run_nobody_drives_is_cancelled_at_once(tmp_path: Path, adapters: Adapters) -> None:
    repo = tmp_path / "tiny"
    write_project(repo, "tiny")
    runs = Runs(adapters)
    runs.queue(repo)
    cancelled = runs.cancel("tiny", 1)
    assert cancelled.status is Status.CANCELLED
    assert cancelled.message == "cancelled while no worker was driving it"
    assert {s.status for s in cancelled.stages} == {Status.SKIPPED}
    with pytest.raises(Conflict, match="already finished"):
        runs.cancel("tiny", 1)


def test_a_stage_log_is_read_in_chunks_from_an_offset(
    tmp_path: Path, adapters: Adapters, workers: list[Workers]
) -> None:
    repo = tmp_path / "tiny"
    write_project(repo, "tiny")
    runs = Runs(adapters)
    runs.queue(repo)
    start_workers(adapters, workers, 1)
    wait_for(lambda: status(adapters, "tiny", 1) == "passed", "run #1 to pass")
    whole = adapters.state.stage_log("tiny", 1, "build").read_text()
    first = runs.log("tiny", 1, "build")
    assert (first.text, first.offset, first.finished) == (whole, len(whole.encode()), True)
    rest = runs.log("tiny", 1, "build", offset=10)
    assert rest.text == whole[10:]
    assert runs.log("tiny", 1, "build", offset=first.offset).text == ""
    with pytest.raises(InvalidInput, match="no stage 'deploy'"):
        runs.log("tiny", 1, "deploy")


def worker_of(output: str) -> str:
    """The worker that drove the run, as the server's log names it."""
    line = next(line for line in output.splitlines() if ": driving " in line)
    return line.partition(": driving ")[0]


def test_a_run_whose_worker_died_is_retried_from_its_stage(
    tmp_path: Path, adapters: Adapters, workers: list[Workers]
) -> None:
    repo = tmp_path / "tiny"
    write_project(repo, "tiny")
    Runs(adapters).queue(repo)
    # A worker claimed it, started building, and died: its lease runs out, nobody renews it.
    assert adapters.leases.acquire(run_lease("tiny", 1), "worker-1@gone", ttl=0.5)
    adapters.store.set_run_status("tiny", 1, Status.RUNNING, worker="worker-1@gone")
    adapters.store.set_stage_status("tiny", 1, "build", Status.RUNNING)
    start_workers(adapters, workers, 1)
    wait_for(lambda: status(adapters, "tiny", 1) == "passed", "the run to be retried and pass")
    retried = [e for e in adapters.store.events("tiny#1") if e.action == "run.queued"]
    assert retried[-1].detail == {
        "resume_from": "build",
        "why": "retried after worker-1@gone stopped",
    }
    assert adapters.store.get_run("tiny", 1).worker != "worker-1@gone"


def test_a_run_whose_commit_lost_its_config_fails_saying_why(
    tmp_path: Path, adapters: Adapters, workers: list[Workers]
) -> None:
    repo = tmp_path / "tiny"
    write_project(repo, "tiny")
    Runs(adapters).queue(repo)
    adapters.store.ensure_project("tiny", str(tmp_path / "moved-away"))  # the repository is gone
    start_workers(adapters, workers, 1)
    wait_for(lambda: status(adapters, "tiny", 1) == "failed", "the run to fail")
    run = adapters.store.get_run("tiny", 1)
    assert (run.message or "").startswith("could not be driven: ")
    assert {stage.status for stage in run.stages} == {"skipped"}
