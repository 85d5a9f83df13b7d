"""Rollouts under steady load with real model servers: no dropped request, faults rolled back.

Two versions of one project are built once through the pipeline (the second goes through the
pipeline's own canary). Each test then starts both as production deployments, drives a
rollout with short intervals while a bounded load runs through the gateway, and checks every
answer: which version gave it, and that no request stable served failed and none was lost.

Faults are switched on per model-server process with ``SHIPYARD_TEST_FAULT`` (the servers
inherit the test's environment), through a ``module:Class`` that wraps the iris model.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitrepos import commit
from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.canary.rollout import CanaryRollout, RolloutHooks
from shipyard.config.schema import CanaryConfig, ProjectConfig
from shipyard.controllers import load_deployed_config
from shipyard.domain import Status
from shipyard.pipeline import deploy
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.interface import PIN_TOKEN_HEADER, VERSION_HEADER
from shipyard.store.models import Deployment, Rollout

from .conftest import make_project

pytestmark = pytest.mark.e2e
PROJECT = "iris-rollout"
ENV = "production"

FAULTS = '''"""Faults for Shipyard's rollout tests, switched on per process by SHIPYARD_TEST_FAULT."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from iris_model.serve import Model as Iris


class Model(Iris):
    def __init__(self, model_dir: str) -> None:
        super().__init__(model_dir)
        self.fault = os.environ.get("SHIPYARD_TEST_FAULT", "")
        self.calls = 0

    def predict(self, records: list[dict[str, Any]]) -> list[str]:
        self.calls += 1
        if self.calls > 1:  # the warm-up prediction passes: the server must become ready
            if self.fault == "errors" and random.random() < 0.2:  # nosec B311
                raise RuntimeError("injected fault")
            if self.fault == "slow":
                time.sleep(0.1)
            if self.fault == "collapse":
                return ["setosa" for _ in records]
        return super().predict(records)
'''

CANARY = """canary:
  steps: [{weight: 30, pause: 4s}, {weight: 60, pause: 2s}, 100]
  interval: 1s
  traffic: {rate: 60}
  analysis:
    error_rate: {max: 0.02}
    # The injected slow fault adds 100 ms to a p95 of 5-10 ms (over +1000%); +400% leaves room
    # for a loaded CI machine, where a healthy canary's p95 has measured 4x the stable's.
    latency: {max_increase: 4.0}
    # Stable and canary are genuinely different models (C=1.0 and C=0.5) that disagree on
    # borderline flowers; a window of a few dozen requests has shown PSI 0.66 between them.
    # A collapse to one class measures PSI ~6.
    prediction_drift: {psi_max: 1.0}
    min_requests: 20
  rollback_window: 1h
"""


@dataclass(frozen=True)
class Built:
    repo: Path
    port: int
    stable: str  # version 1
    canary: str  # version 2
    config: ProjectConfig
    bodies: list[dict[str, Any]]


@pytest.fixture(scope="module")
def built(e2e_state: Adapters, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    repo, port = make_project(tmp_path_factory.mktemp("rollout"), PROJECT)
    (repo / "iris_model" / "faults.py").write_text(FAULTS)
    text = (repo / "shipyard.yaml").read_text()
    text = text.replace("serve: iris_model.serve:Model", "serve: iris_model.faults:Model")
    text = re.sub(r"(?ms)^canary:.*\Z", CANARY, text)
    (repo / "shipyard.yaml").write_text(text)
    commit(repo, "iris with switchable faults")
    pipeline = Pipeline(e2e_state)
    first = pipeline.queue(repo)
    assert pipeline.execute(first) is Status.PASSED
    (repo / "README.md").write_text("second version\n")
    commit(repo, "a second version")
    second = pipeline.queue(repo)
    # The pipeline's own canary: the new controller walks both steps and goes live.
    assert pipeline.execute(second) is Status.PASSED
    run = e2e_state.store.get_run(PROJECT, second.number)
    canary_stage = next(stage for stage in run.stages if stage.name == "canary")
    assert canary_stage.status == "passed", canary_stage.message
    deploy.stop_all(e2e_state, PROJECT)
    config = load_deployed_config(e2e_state, PROJECT, ENV, second.version)
    with (repo / "data" / "holdout.csv").open() as handle:
        rows = [
            {k: float(v) for k, v in r.items() if k != "species"} for r in csv.DictReader(handle)
        ]
    bodies = [{"dataframe_records": [row]} for row in rows]
    yield Built(repo, port, first.version, second.version, config, bodies)
    deploy.stop_all(e2e_state, PROJECT)


class Load:
    """Bounded steady load at the gateway from a few threads, recording who answered what."""

    def __init__(self, port: int, bodies: list[dict[str, Any]], threads: int = 3) -> None:
        self.url = f"http://127.0.0.1:{port}/invocations"
        self.bodies = bodies
        self.stop = threading.Event()
        self.deadline = time.monotonic() + 90
        self.answers: list[tuple[int, str | None]] = []
        self.lost: list[str] = []
        self.threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(threads)]

    def _loop(self, offset: int) -> None:
        with httpx.Client(timeout=10) as client:
            index = offset
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                body = self.bodies[index % len(self.bodies)]
                index += len(self.threads)
                try:
                    response = client.post(self.url, json=body)
                except httpx.HTTPError as exc:
                    self.lost.append(repr(exc))
                else:
                    self.answers.append(
                        (response.status_code, response.headers.get(VERSION_HEADER))
                    )
                time.sleep(0.01)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def by_version(self) -> dict[str | None, Counter[int]]:
        result: dict[str | None, Counter[int]] = {}
        for status, version in self.answers:
            result.setdefault(version, Counter())[status] += 1
        return result


def start_pair(adapters: Adapters, built: Built, fault: str = "") -> tuple[Deployment, Deployment]:
    """Stable (version 1) with all traffic, and the canary (version 2) ready beside it."""
    say = lambda text: None  # noqa: E731
    stable = deploy.start(adapters, PROJECT, ENV, built.stable, "stable", say)
    if fault:
        os.environ["SHIPYARD_TEST_FAULT"] = fault
    try:
        canary = deploy.start(adapters, PROJECT, ENV, built.canary, "canary", say)
    finally:
        os.environ.pop("SHIPYARD_TEST_FAULT", None)
    deploy.route(adapters, built.config, ENV, [(stable, 100), (canary, 0)], "before")
    return stable, canary


def settings(built: Built, **changes: Any) -> ProjectConfig:
    assert built.config.canary is not None
    canary = CanaryConfig.model_validate(
        {**built.config.canary.model_dump(exclude={"traffic"}), "interval": 1.0, **changes}
    )
    return built.config.model_copy(update={"canary": canary})


def rollout(
    adapters: Adapters, config: ProjectConfig, stable: Deployment, canary: Deployment
) -> CanaryRollout:
    lines: list[str] = []
    return CanaryRollout.begin(
        adapters, config, ENV, stable, canary, RolloutHooks.plain(lines.append)
    )


def when(adapters: Adapters, rollout_id: int, status: str, seconds: float = 30) -> Rollout:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = records.find_rollout(adapters.store, PROJECT, ENV, rollout_id)
        if row.status == status:
            return row
        time.sleep(0.05)
    raise AssertionError(f"rollout {rollout_id} never became {status}")


def command(adapters: Adapters, rollout_id: int, status: str) -> None:
    records.update_rollout(
        adapters.store, rollout_id, "test", lambda r: setattr(r, "status", status)
    )


def served_now(port: int) -> dict[str, int]:
    health = httpx.get(f"http://127.0.0.1:{port}/_shipyard/health", timeout=5).json()
    return {b["version"]: b["weight"] for b in health["backends"] if b["weight"] > 0}


@pytest.fixture
def clean(e2e_state: Adapters, built: Built) -> Iterator[None]:
    yield
    deploy.stop_all(e2e_state, PROJECT)


# --- no dropped requests -----------------------------------------------------------------------


def test_steps_manual_pause_promotion_and_going_live_drop_nothing(
    e2e_state: Adapters, built: Built, clean: None
) -> None:
    stable, canary = start_pair(e2e_state, built)
    config = settings(
        built, steps=[{"weight": 20, "pause": 2}, {"weight": 50, "pause": "manual"}, 100]
    )
    controller = rollout(e2e_state, config, stable, canary)
    result: list[Rollout] = []
    with Load(built.port, built.bodies) as load:
        driver = threading.Thread(target=lambda: result.append(controller.run(finish=True)))
        driver.start()
        waiting = when(e2e_state, controller.rollout.id, records.WAITING)
        assert (waiting.step_index, waiting.weight) == (1, 50)
        assert served_now(built.port) == {built.stable: 50, built.canary: 50}
        command(e2e_state, controller.rollout.id, records.PROMOTING)
        driver.join(timeout=60)
        time.sleep(0.5)  # traffic after the last move
    assert result and result[0].status == records.PASSED
    answers = load.by_version()
    print("promotion:", {v: dict(c) for v, c in answers.items()}, "lost", len(load.lost))
    assert load.lost == []
    assert set(answers) == {built.stable, built.canary}
    for version, statuses in answers.items():
        assert set(statuses) == {200}, (version, statuses)
    assert served_now(built.port) == {built.canary: 100}
    roles = {d.version: d.role for d in deploy.running(e2e_state, PROJECT, ENV)}
    assert roles == {built.canary: "stable", built.stable: "standby"}
    judged = [v["step"] for v in result[0].verdicts]
    assert judged.count(0) >= 2 and 1 in judged  # every interval, in both steps

    # After live, `shipyard rollback` under the same steady load: instant and lossless.
    with Load(built.port, built.bodies) as after:
        time.sleep(0.5)
        deploy.roll_back(e2e_state, PROJECT, ENV)
        time.sleep(0.5)
    print("rollback:", {v: dict(c) for v, c in after.by_version().items()}, "lost", len(after.lost))
    assert after.lost == []
    assert all(set(statuses) == {200} for statuses in after.by_version().values())
    assert set(after.by_version()) == {built.stable, built.canary}
    assert served_now(built.port) == {built.stable: 100}


def test_abort_moves_everything_to_stable_and_drops_nothing(
    e2e_state: Adapters, built: Built, clean: None
) -> None:
    stable, canary = start_pair(e2e_state, built)
    controller = rollout(
        e2e_state, settings(built, steps=[{"weight": 50, "pause": "manual"}, 100]), stable, canary
    )
    result: list[Rollout] = []
    with Load(built.port, built.bodies) as load:
        driver = threading.Thread(target=lambda: result.append(controller.run(finish=True)))
        driver.start()
        when(e2e_state, controller.rollout.id, records.WAITING)
        command(e2e_state, controller.rollout.id, records.ABORTING)
        driver.join(timeout=30)
        time.sleep(0.5)
    assert result and result[0].status == records.ABORTED
    answers = load.by_version()
    print("abort:", {v: dict(c) for v, c in answers.items()}, "lost", len(load.lost))
    assert load.lost == []
    assert set(answers[built.stable]) == {200} and set(answers[built.canary]) == {200}
    assert served_now(built.port) == {built.stable: 100}
    assert not e2e_state.runtime.is_alive(canary.pid or 0)


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "failed_check"),
    [("errors", "error_rate"), ("slow", "latency"), ("collapse", "prediction_drift")],
)
def test_a_faulty_canary_is_rolled_back_at_its_first_judgement(
    e2e_state: Adapters, built: Built, clean: None, fault: str, failed_check: str
) -> None:
    stable, canary = start_pair(e2e_state, built, fault)
    # Two seconds: enough canary requests for a verdict even when each takes 100 ms more.
    config = settings(built, steps=[{"weight": 50, "pause": 6}, 100], interval=2.0)
    controller = rollout(e2e_state, config, stable, canary)
    with Load(built.port, built.bodies, threads=6) as load:
        done = controller.run(finish=True)
        time.sleep(0.5)
    assert done.status == records.ROLLED_BACK
    first = done.verdicts[0]
    failed = [c["name"] for c in first["checks"] if c["outcome"] == "fail"]
    answers = load.by_version()
    print(fault, {v: dict(c) for v, c in answers.items()}, "lost", len(load.lost), first)
    # Rolled back by the first judgement, one interval into the step.
    assert len(done.verdicts) == 1 and first["outcome"] == "fail" and failed_check in failed
    assert load.lost == []
    assert set(answers[built.stable]) == {200}, answers[built.stable]
    assert served_now(built.port) == {built.stable: 100}
    assert {d.version for d in deploy.running(e2e_state, PROJECT, ENV)} == {built.stable}


def test_a_healthy_canary_passes_every_judgement(
    e2e_state: Adapters, built: Built, clean: None
) -> None:
    stable, canary = start_pair(e2e_state, built)
    config = settings(built, steps=[{"weight": 50, "pause": 3}, 100])
    controller = rollout(e2e_state, config, stable, canary)
    with Load(built.port, built.bodies, threads=4) as load:
        done = controller.run(finish=False)
    assert done.status == records.PASSED
    print(
        "healthy:",
        [v["outcome"] for v in done.verdicts],
        {v: dict(c) for v, c in load.by_version().items()},
    )
    assert [v["outcome"] for v in done.verdicts] == ["pass", "pass", "pass"]
    assert all(v["canary_requests"] >= 20 for v in done.verdicts)
    assert load.lost == []


# Well-formed HTTP, the client's own mistakes: the model server answers each with a 4xx. The
# last two made it answer 500 before (a RecursionError, an OverflowError), which let any client
# roll a canary back.
JSON = {"content-type": "application/json"}
CLIENT_MISTAKES: list[dict[str, Any]] = [
    {"content": b"{not json", "headers": JSON},
    {"json": {"dataframe_records": [{"sepal_length": "wide"}]}},
    {"json": {"dataframe_split": {"columns": ["sepal_length"], "data": [[1, 2, 3]]}}},
    {"json": {"instances": [[[[1.0]]]]}},
    {"content": b"[" * 50_000 + b"]" * 50_000, "headers": JSON},
    {"content": b'{"instances": [[' + b"9" * 400 + b", 1, 1, 1]]}", "headers": JSON},
]


def test_client_errors_aimed_at_the_canary_do_not_roll_it_back(
    e2e_state: Adapters, built: Built, clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_PIN_TOKEN", "operator-secret")
    production = built.config.environments[ENV].model_copy(
        update={"pin_token_env": "IRIS_PIN_TOKEN"}
    )
    config = settings(built, steps=[{"weight": 30, "pause": 4}, 100])
    config = config.model_copy(update={"environments": {**config.environments, ENV: production}})
    stable, canary = start_pair(e2e_state, built)
    controller = rollout(e2e_state, config, stable, canary)
    aimed: list[tuple[int, str | None]] = []
    unpinnable: list[int] = []

    def aim_at_the_canary() -> None:
        url = f"http://127.0.0.1:{built.port}/invocations"
        operator = {VERSION_HEADER: built.canary, PIN_TOKEN_HEADER: "operator-secret"}
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 30
            while built.canary not in served_now(built.port):  # the rollout's first step
                assert time.monotonic() < deadline, "the rollout never routed to the canary"
                time.sleep(0.05)
            for index in range(60):
                mistake = CLIENT_MISTAKES[index % len(CLIENT_MISTAKES)]
                headers = {**mistake.get("headers", {}), **operator}
                answer = client.post(url, **{**mistake, "headers": headers})
                aimed.append((answer.status_code, answer.headers.get(VERSION_HEADER)))
                # The same mistakes without the operator's token cannot reach the canary.
                refused = client.post(url, json={}, headers={VERSION_HEADER: built.canary})
                unpinnable.append(refused.status_code)
                time.sleep(0.03)

    attacker = threading.Thread(target=aim_at_the_canary)
    with Load(built.port, built.bodies, threads=3) as load:
        attacker.start()
        done = controller.run(finish=False)
        attacker.join(timeout=30)
    assert len(aimed) == 60
    assert {version for _, version in aimed} == {built.canary}, Counter(aimed)
    assert all(400 <= status < 500 for status, _ in aimed), Counter(s for s, _ in aimed)
    assert set(unpinnable) == {403}
    assert done.status == records.PASSED, done.verdicts
    # The canary's 60 answers of 4xx were requests to it, never errors.
    rates = [c["value"] for v in done.verdicts for c in v["checks"] if c["name"] == "error_rate"]
    assert rates and set(rates) == {0.0}, done.verdicts
    assert load.lost == []


# --- restart safety ----------------------------------------------------------------------------

DRIVER = """
import sys
from shipyard.canary.rollout import CanaryRollout, RolloutHooks
from shipyard.controllers import load_deployed_config
from shipyard.pipeline import deploy
from shipyard.wiring import open_adapters

state, project, stable, canary = sys.argv[1:5]
a = open_adapters(state)
rows = {d.version: d for d in deploy.running(a, project, "production")}
config = load_deployed_config(a, project, "production", canary)
hooks = RolloutHooks.plain(print)
controller = CanaryRollout.begin(a, config, "production", rows[stable], rows[canary], hooks)
print("rollout", controller.rollout.id, flush=True)
controller.run(finish=True)
"""


def test_a_rollout_killed_mid_step_resumes_with_the_same_weights(
    e2e_state: Adapters, built: Built, clean: None
) -> None:
    """SIGKILL the driving process, the gateway and the canary's model server mid-step."""
    _, canary = start_pair(e2e_state, built)
    state = str(e2e_state.state.root)
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, state, PROJECT, built.stable, built.canary],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        rollout_id = int(driver.stdout.readline().split()[1]) if driver.stdout else 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = records.find_rollout(e2e_state.store, PROJECT, ENV, rollout_id)
            if row.weight == 30 and row.verdicts:
                break
            time.sleep(0.05)
        before = served_now(built.port)
        assert before == {built.stable: 70, built.canary: 30}
        env_dir = e2e_state.state.environment_dir(PROJECT, ENV)
        gateway = int((env_dir / "gateway.pid").read_text())
        driver.kill()
        driver.wait(timeout=10)
        os.killpg(gateway, signal.SIGKILL)
        os.killpg(canary.pid or 0, signal.SIGKILL)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    killed = records.find_rollout(e2e_state.store, PROJECT, ENV, rollout_id)
    assert killed.status == records.RUNNING and killed.step_index == 0
    verdicts_before = len(killed.verdicts)

    resume = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "rollout", "resume", "--state", state, "-p", PROJECT],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first_seen: dict[str, int] = {}
        deadline = time.monotonic() + 60
        while not first_seen and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{built.port}/_shipyard/health", timeout=2)
                if health.json()["pid"] != gateway:
                    first_seen = served_now(built.port)
            except httpx.HTTPError:
                time.sleep(0.05)
        output, _ = resume.communicate(timeout=90)
    finally:
        if resume.poll() is None:
            resume.kill()
            resume.wait()
    assert first_seen == {built.stable: 70, built.canary: 30}, output
    assert resume.returncode == 0, output
    done = records.find_rollout(e2e_state.store, PROJECT, ENV, rollout_id)
    assert done.status == records.PASSED, output
    later = done.verdicts[verdicts_before:]
    assert {v["step"] for v in later} == {0, 1}, later  # step 0 judged again, then step 1
    assert served_now(built.port) == {built.canary: 100}
    running = {d.version: d for d in deploy.running(e2e_state, PROJECT, ENV)}
    assert running[built.canary].pid != canary.pid  # restarted by the reconciler
    assert running[built.canary].role == "stable" and running[built.stable].role == "standby"
