"""Restarts lose nothing and leave nothing: `shipyard server` SIGKILLed mid-build, mid-staging
and mid-canary, then started again.

Each test runs a real server subprocess on a free port over a temporary state directory, with
the iris example (a fast config: no unit tests or analysis, quality-only QA, a one-step
canary). After the kill the stage commands and model servers the dead server started are still
there, in their own process groups; the restarted server must kill or adopt each, retry the
interrupted stage from its start, and take the run to its end. Then `shipyard down` leaves
nothing of the state directory running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import commit, git
from servers import ShipyardServer, clean_env, free_port
from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.domain import Status
from shipyard.examples import example_path
from shipyard.processes import ProcessBook, is_running, owner_alive, pid_alive
from shipyard.services.runs import Runs
from shipyard.wiring import open_adapters

from .queue_projects import loosen_release_policy, wait_for, write_project

pytestmark = pytest.mark.e2e

CONFIG = """\
name: iris
python: "3.11"
install: requirements.txt
build:
  train: {train}
  timeout: 5m
model:
  serve: iris_model.serve:Model
environments:
  staging:
    database: "sqlite:///{{state}}/iris.db"
    migrations: migrations/
    config: config/staging.yaml
  production:
    database: "sqlite:///{{state}}/iris.db"
    migrations: migrations/
    config: config/production.yaml
    port: {port}
qa:
  quality:
    data: data/holdout.csv
    label: species
    metrics: {{accuracy: {{min: 0.85}}}}
canary:
  steps: [50, 100]
  interval: 2s
  traffic: {{rate: 40}}
  analysis:
    error_rate: {{max: 0.05}}
    min_requests: 10
  rollback_window: 1h
"""
TRAIN = 'python train.py --out "$SHIPYARD_MODEL_DIR"'
# Marks that it runs (its pid), then waits for a file: a build held running for the kill.
GATE = """\
import os, pathlib, sys, time

pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
deadline = time.monotonic() + 300
while not pathlib.Path(sys.argv[2]).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""
LEASE_TTL = "3"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def adapters(state: Path) -> Iterator[Adapters]:
    a = open_adapters(state)
    loosen_release_policy(a)
    yield a
    a.store.close()


@pytest.fixture
def server(state: Path, adapters: Adapters) -> Iterator[ShipyardServer]:
    one = ShipyardServer(state, lease_ttl=LEASE_TTL)
    yield one
    one.stop()
    down(state)  # whatever a failed test left


def iris(root: Path, train: str = TRAIN) -> tuple[Path, int]:
    repo = root / "iris"
    shutil.copytree(
        example_path("iris"), repo, ignore=shutil.ignore_patterns("__pycache__", ".shipyard")
    )
    port = free_port()
    (repo / "shipyard.yaml").write_text(CONFIG.format(train=train, port=port))
    (repo / "gate.py").write_text(GATE)
    (repo / ".gitignore").write_text("__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "first model")
    return repo, port


def down(state: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "down", "--state", str(state)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def stage_status(adapters: Adapters, number: int, stage: str) -> str:
    return next(s.status for s in adapters.store.get_run("iris", number).stages if s.name == stage)


def finished(adapters: Adapters, number: int) -> bool:
    return Status(adapters.store.get_run("iris", number).status).finished


def naming(state: Path) -> set[int]:
    """Processes whose command line or environment names the state directory."""
    found = set()
    needle = str(state).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in text and pid_alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def unaccounted(adapters: Adapters, state: Path, server: ShipyardServer) -> set[int]:
    """Processes of the state directory that are neither the server nor in a recorded group
    of a live owner."""
    recorded = {row.pid for row in ProcessBook(adapters.store).open_rows() if is_running(row)}
    stray = set()
    for pid in naming(state) - {server.pid}:
        try:
            group = os.getpgid(pid)
        except ProcessLookupError:
            continue
        if group not in recorded and pid not in recorded:
            stray.add(pid)
    return stray


def assert_settled(adapters: Adapters, state: Path, server: ShipyardServer, number: int) -> None:
    run = adapters.store.get_run("iris", number)
    assert Status(run.status).finished, run.status
    assert run.status == "passed" or run.message, "a run that did not pass says why"
    assert all(stage.status != "running" for stage in run.stages)
    assert not records.active_rollouts(adapters.store, "iris")
    assert unaccounted(adapters, state, server) == set()
    # What the dead server started was killed, adopted or closed: every open record has a
    # live owner.
    owners = {row.owner for row in ProcessBook(adapters.store).open_rows()}
    assert all(owner_alive(adapters.leases, owner) for owner in owners), owners


def assert_nothing_left(state: Path, adapters: Adapters, server: ShipyardServer) -> None:
    server.stop()
    down(state)
    assert all(not is_running(row) for row in ProcessBook(adapters.store).open_rows())
    wait_for(lambda: naming(state) == set(), "every process of the state directory to end", 30)


def retried(adapters: Adapters, number: int, stage: str) -> bool:
    events = adapters.store.events(f"iris#{number}")
    return any(
        e.action == "run.queued"
        and e.detail.get("resume_from") == stage
        and "retried after" in str(e.detail.get("why"))
        for e in events
    )


def test_killed_mid_build_the_train_is_killed_and_the_build_retried(
    tmp_path: Path, state: Path, adapters: Adapters, server: ShipyardServer
) -> None:
    mark, gate = tmp_path / "train.pid", tmp_path / "gate.open"
    repo, _ = iris(tmp_path, f"python gate.py {mark} {gate} && {TRAIN}")
    Runs(adapters).queue(repo)
    server.start()
    wait_for(lambda: mark.exists(), "the train command to start", 300)
    train = int(mark.read_text())
    first_server = server.pid
    server.kill()
    assert pid_alive(train), "the kill left the train command running"
    assert stage_status(adapters, 1, "build") == "running"
    mark.unlink()
    server.start()
    wait_for(lambda: not pid_alive(train), "the restarted server to kill the old train")
    wait_for(lambda: retried(adapters, 1, "build"), "the build to be re-queued")
    gate.write_text("go")
    wait_for(lambda: finished(adapters, 1), "run #1 to end", 400)
    assert adapters.store.get_run("iris", 1).status == "passed"
    assert server.pid != first_server
    killed = [e for e in adapters.store.events("command/") if e.action == "process.stopped"]
    assert any(e.detail["alive"] for e in killed)
    assert_settled(adapters, state, server, 1)
    assert_nothing_left(state, adapters, server)


def test_killed_mid_staging_the_model_server_is_accounted_for(
    tmp_path: Path, state: Path, adapters: Adapters, server: ShipyardServer
) -> None:
    repo, _ = iris(tmp_path)
    Runs(adapters).queue(repo)
    server.start()
    book = ProcessBook(adapters.store)

    def staging_server_started() -> bool:
        running = stage_status(adapters, 1, "staging") == "running"
        return running and any(r.kind == "model-server" for r in book.open_rows())

    wait_for(staging_server_started, "staging to start its model server", 400)
    server.kill()
    left = [r.pid for r in book.open_rows() if r.kind == "model-server"]
    server.start()
    wait_for(lambda: finished(adapters, 1), "run #1 to end", 400)
    assert adapters.store.get_run("iris", 1).status == "passed"
    assert retried(adapters, 1, "staging")
    wanted = {d.pid for d in adapters.store.deployments("iris")}
    for pid in left:  # adopted (its deployment is wanted) or stopped
        assert pid in wanted or not pid_alive(pid)
    assert_settled(adapters, state, server, 1)
    assert_nothing_left(state, adapters, server)


def test_killed_mid_canary_the_rollout_is_finished(
    tmp_path: Path, state: Path, adapters: Adapters, server: ShipyardServer
) -> None:
    repo, _ = iris(tmp_path)
    runs = Runs(adapters)
    runs.queue(repo)
    server.start()
    wait_for(lambda: finished(adapters, 1), "run #1 to go live", 400)
    assert adapters.store.get_run("iris", 1).status == "passed"
    (repo / "train.py").write_text((repo / "train.py").read_text() + "\n# a second version\n")
    commit(repo, "second model")
    runs.queue(repo)

    def in_canary() -> bool:
        going = records.active_rollouts(adapters.store, "iris")
        return stage_status(adapters, 2, "canary") == "running" and bool(going)

    wait_for(in_canary, "run #2's canary to start", 400)
    server.kill()
    server.start()
    wait_for(lambda: finished(adapters, 2), "run #2 to end", 400)
    assert retried(adapters, 2, "canary")
    rollout = records.find_rollout(adapters.store, "iris", "production")
    assert rollout.status in records.FINISHED
    assert_settled(adapters, state, server, 2)
    assert_nothing_left(state, adapters, server)


def test_down_stops_what_a_killed_server_left(
    tmp_path: Path, state: Path, adapters: Adapters, server: ShipyardServer
) -> None:
    mark, gate = tmp_path / "train.pid", tmp_path / "never"
    repo = tmp_path / "tiny"
    write_project(repo, "tiny", "--mark", str(mark), "--await", str(gate))
    Runs(adapters).queue(repo)
    server.start()
    wait_for(mark.exists, "the train command to start", 300)
    train = int(mark.read_text())
    server.kill()
    assert pid_alive(train)
    shown = " ".join(down(state).split())
    assert not pid_alive(train)
    assert "stopped command pid" in shown and "(tiny 1-" in shown
    assert naming(state) == set()
    assert all(not is_running(row) for row in ProcessBook(adapters.store).open_rows())
