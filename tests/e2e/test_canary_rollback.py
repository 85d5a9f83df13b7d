"""A canary that fails on purpose is rolled back by itself; stable never fails a request."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from gitrepos import commit
from shipyard.adapters import Adapters
from shipyard.domain import Status
from shipyard.pipeline.context import NullReporter
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.interface import VERSION_HEADER

from .conftest import make_project

pytestmark = pytest.mark.e2e
SAMPLE = {
    "dataframe_records": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    ]
}

FAULT = """
import os
import random

_predict = Model.predict


def _faulty(self, records):
    # A production-only bug that shows under traffic: staging and QA pass, the warm-up
    # prediction passes, and the canary must catch it.
    self._calls = getattr(self, "_calls", 0) + 1
    production = os.environ.get("SHIPYARD_ENVIRONMENT") == "production"
    if production and self._calls > 1 and random.random() < 0.3:
        raise RuntimeError("injected fault")
    return _predict(self, records)


Model.predict = _faulty
"""


class Traffic:
    """Bounded steady traffic at the production gateway, recording who answered what."""

    def __init__(self, port: int, seconds: float) -> None:
        self.url = f"http://127.0.0.1:{port}/invocations"
        self.seconds = seconds
        self.deadline = 0.0
        self.stopped = threading.Event()
        self.results: list[tuple[int, str | None]] = []
        self.lost = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while (
                not self.stopped.is_set()
                and time.monotonic() < self.deadline
                and len(self.results) < 5000
            ):
                try:
                    response = client.post(self.url, json=SAMPLE)
                    self.results.append(
                        (response.status_code, response.headers.get(VERSION_HEADER))
                    )
                except httpx.HTTPError:
                    self.lost += 1
                time.sleep(0.02)

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds
        self.thread.start()

    def __enter__(self) -> Traffic:
        return self  # started by StartsTraffic, stopped on the way out

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=15)


class StartsTraffic(NullReporter):
    """Starts the traffic when a stage starts: its bounds then cover the production stages
    however long the build took on a busy machine."""

    def __init__(self, stage: str, traffic: Traffic) -> None:
        self.stage, self.traffic = stage, traffic

    def stage_started(self, stage: str) -> None:
        if stage == self.stage:
            self.traffic.start()


def test_failing_canary_rolls_back_without_hurting_stable(
    e2e_state: Adapters, tmp_path: Path
) -> None:
    repo, port = make_project(tmp_path, "iris-faulty")
    pipeline = Pipeline(e2e_state)
    first = pipeline.queue(repo)
    assert pipeline.execute(first) is Status.PASSED

    serve = repo / "iris_model" / "serve.py"
    serve.write_text(serve.read_text() + FAULT)
    commit(repo, "a model with a production-only fault")
    traffic = Traffic(port, seconds=120)
    watched = Pipeline(e2e_state, StartsTraffic("qa", traffic))
    second = watched.queue(repo)
    with traffic:
        final = watched.execute(second)

    assert final is Status.ROLLED_BACK
    run = e2e_state.store.get_run("iris-faulty", second.number)
    stages = {stage.name: stage for stage in run.stages}
    assert stages["qa"].status == "passed"
    assert stages["canary"].status == "rolled-back"
    assert stages["live"].status == "skipped"
    assert stages["canary"].summary["verdicts"][-1]["outcome"] == "fail"
    # Why, as the rolled-back notice says it: the failed check as a sentence with its numbers.
    assert re.match(
        r"rolled back \(step \d \(\d+%\): (error_rate|latency|prediction_\w+): fail: canary "
        rf".+\); {first.version} stays live$",
        stages["canary"].message or "",
    ), stages["canary"].message

    stable = [status for status, version in traffic.results if version == first.version]
    canary = [status for status, version in traffic.results if version == second.version]
    assert len(stable) > 50
    assert all(status == 200 for status in stable), "the stable version failed a request"
    assert any(status >= 500 for status in canary), "the injected fault never fired"
    assert traffic.lost == 0

    after = httpx.post(f"http://127.0.0.1:{port}/invocations", json=SAMPLE, timeout=10)
    assert after.headers[VERSION_HEADER] == first.version
    running = {d.version for d in e2e_state.store.deployments("iris-faulty", "production")}
    assert running == {first.version}
