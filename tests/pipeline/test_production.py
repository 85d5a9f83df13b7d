"""Production keeps answering: rollbacks only change routes, and a failed go-live changes nothing.

Each test takes real commits of the tiny project through the pipeline to a real gateway and
real model servers on 127.0.0.1; each version answers with its own number.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gitrepos import commit
from servers import free_port
from shipyard.adapters import Adapters
from shipyard.cli.app import app
from shipyard.controllers import Reconciler
from shipyard.domain import Status
from shipyard.pipeline import deploy
from shipyard.pipeline.context import NullReporter, Reporter
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.local import gateway_pid_on

from .conftest import write_project

TRAIN = "python -c \"import os; open(os.environ['SHIPYARD_MODEL_DIR'] + '/answer.txt', 'w').write('{answer}')\""
BODY = {"dataframe_records": [{"x": 1}]}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def release(
    repo: Path, adapters: Adapters, *, answer: str, port: int, reporter: Reporter | None = None
) -> Status:
    """Commit a version that answers ``answer`` and names ``port``, and run it to live."""
    write_project(repo, train=TRAIN.format(answer=answer))
    config = (repo / "shipyard.yaml").read_text()
    (repo / "shipyard.yaml").write_text(f"{config}environments:\n  production:\n    port: {port}\n")
    commit(repo, f"version {answer} on port {port}")
    pipeline = Pipeline(adapters, reporter or NullReporter())
    return pipeline.execute(pipeline.queue(repo))


class TakesPort(NullReporter):
    """Another program takes ``port`` once the run reaches ``stage``: after the build's
    preflight found it free, so only the go-live can meet it."""

    def __init__(self, stage: str, port: int) -> None:
        self.stage, self.port = stage, port
        self.socket = socket.socket()

    def stage_started(self, stage: str) -> None:
        if stage == self.stage:
            self.socket.bind(("127.0.0.1", self.port))
            self.socket.listen()


def answer_on(port: int) -> str:
    response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=BODY, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["predictions"][0])


@pytest.fixture
def production(adapters: Adapters) -> Iterator[Adapters]:
    yield adapters
    deploy.stop_all(adapters)


def two_releases_on_two_ports(repo: Path, adapters: Adapters) -> tuple[int, int]:
    """Version 1 names one port, version 2 another; 2 is live (moved there on purpose)."""
    first_port, live_port = free_port(), free_port()
    assert release(repo, adapters, answer="1", port=first_port) is Status.PASSED
    assert release(repo, adapters, answer="2", port=live_port) is Status.PASSED
    # The go-live of 2 moved production deliberately, and the old gateway went only then.
    assert answer_on(live_port) == "2" and not listening(first_port)
    return first_port, live_port


def roll_back(adapters: Adapters) -> None:
    rolled = CliRunner().invoke(
        app, ["rollback", "-p", "tiny", "--state", str(adapters.state.root)]
    )
    assert rolled.exit_code == 0, rolled.output


def test_rollback_to_a_version_that_named_another_port_only_changes_routes(
    repo: Path, production: Adapters
) -> None:
    first_port, live_port = two_releases_on_two_ports(repo, production)
    gateway = gateway_pid_on(live_port)

    roll_back(production)

    assert answer_on(live_port) == "1"
    assert gateway_pid_on(live_port) == gateway is not None
    assert not listening(first_port)
    roles = {d.version: d.role for d in deploy.running(production, "tiny", "production")}
    assert sorted(roles.values()) == ["stable", "standby"]


def test_after_a_rollback_the_reconciler_restores_production_where_it_answers(
    repo: Path, production: Adapters
) -> None:
    first_port, live_port = two_releases_on_two_ports(repo, production)
    roll_back(production)
    first = deploy.stable(production, "tiny", "production")
    gateway = gateway_pid_on(live_port)
    assert first is not None and first.pid and gateway
    # The gateway and the stable server die; the stable's restart makes it the newest row.
    for pid in (gateway, first.pid):
        os.kill(pid, signal.SIGKILL)
        production.runtime.stop_server(pid)  # reaps it

    Reconciler(production, lambda _: None).reconcile(drive=False)

    assert answer_on(live_port) == "1"
    assert gateway_pid_on(live_port) not in (None, gateway)
    assert not listening(first_port)


class Client(threading.Thread):
    """Asks production for predictions until stopped; counts the answers (bounded)."""

    def __init__(self, port: int, limit: int = 5000) -> None:
        super().__init__(daemon=True)
        self.port, self.limit = port, limit
        self.answers: Counter[str] = Counter()
        self.stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5, trust_env=False) as client:
            while not self.stopped.is_set() and self.answers.total() < self.limit:
                try:
                    response = client.post(f"http://127.0.0.1:{self.port}/invocations", json=BODY)
                    self.answers[str(response.json()["predictions"][0])] += 1
                except (httpx.HTTPError, ValueError, KeyError):
                    self.answers["error"] += 1
                time.sleep(0.01)  # a steady trickle, not a load test


def test_a_live_stage_failing_on_a_taken_port_leaves_the_previous_version_serving_everything(
    repo: Path, production: Adapters
) -> None:
    live_port = free_port()
    assert release(repo, production, answer="1", port=live_port) is Status.PASSED
    first = deploy.stable(production, "tiny", "production")
    assert first is not None
    gateway = gateway_pid_on(live_port)
    client = Client(live_port)
    client.start()
    taker = TakesPort("staging", free_port())
    with taker.socket:
        try:
            status = release(repo, production, answer="2", port=taker.port, reporter=taker)
        finally:
            client.stopped.set()
            client.join(timeout=10)

    assert status is Status.FAILED
    live = next(s for s in production.store.get_run("tiny", 2).stages if s.name == "live")
    assert live.status == "failed" and "in use" in (live.message or "")
    assert client.answers["1"] > 0 and set(client.answers) == {"1"}, client.answers
    assert gateway_pid_on(live_port) == gateway
    assert answer_on(live_port) == "1"
    # The failed version is out: not stable, not running, so never the next run's baseline
    # (qa's vs_production and the canary both compare against deploy.stable).
    now = deploy.stable(production, "tiny", "production")
    assert now is not None and now.version == first.version
    failed = [
        d
        for d in production.store.deployments("tiny", "production", running_only=False)
        if d.version != first.version
    ]
    assert failed and all((d.role, d.state) == ("retired", "stopped") for d in failed)
    assert [d.version for d in deploy.running(production, "tiny", "production")] == [first.version]
