"""The example through every stage into live, then a second commit through a canary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gitrepos import commit
from shipyard.adapters import Adapters
from shipyard.domain import STAGES, Status
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.interface import VERSION_HEADER

from .conftest import make_project

pytestmark = pytest.mark.e2e
SAMPLE = {
    "dataframe_records": [
        {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}
    ]
}


def predict(port: int) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/invocations", json=SAMPLE, timeout=10)


def shipyard(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shipyard", *args, "--state", str(state)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_first_commit_goes_live_and_second_goes_through_canary(
    e2e_state: Adapters, tmp_path: Path
) -> None:
    repo, port = make_project(tmp_path, "iris-e2e")
    pipeline = Pipeline(e2e_state)

    first = pipeline.queue(repo)
    assert pipeline.execute(first) is Status.PASSED
    run = e2e_state.store.get_run("iris-e2e", first.number)
    statuses = {stage.name: stage.status for stage in run.stages}
    assert [s.name for s in run.stages] == list(STAGES)
    assert statuses["canary"] == "skipped"  # nothing live to judge against yet
    assert all(statuses[name] == "passed" for name in STAGES if name != "canary")
    assert run.stages[1].summary["passed"] == 2  # the example's two unit tests, counted from JUnit
    response = predict(port)
    assert response.status_code == 200
    assert response.json() == {"predictions": ["virginica"]}
    assert response.headers[VERSION_HEADER] == first.version
    assert e2e_state.store.in_repository("release", "iris-e2e", first.version)
    build_info = e2e_state.store.get_artifact("iris-e2e", first.version).build_info
    assert build_info["sbom"]["bomFormat"] == "CycloneDX"  # the analyze stage's SBOM travels along
    assert any(c["name"] == "scikit-learn" for c in build_info["sbom"]["components"])

    module = repo / "iris_model" / "__init__.py"
    module.write_text(module.read_text().replace('"C": 1.0', '"C": 0.5'))
    commit(repo, "second model")
    second = pipeline.queue(repo)
    assert second.sha != first.sha
    assert pipeline.execute(second) is Status.PASSED
    run = e2e_state.store.get_run("iris-e2e", second.number)
    canary = next(stage for stage in run.stages if stage.name == "canary")
    assert canary.status == "passed"
    verdicts = canary.summary["verdicts"]
    last_per_step = {v["step"]: v["outcome"] for v in verdicts}  # later extensions overwrite
    assert last_per_step == {0: "pass", 1: "pass"}  # steps 20% and 50%; 100% is the live stage
    assert all(v["outcome"] in ("pass", "inconclusive") for v in verdicts)
    assert predict(port).headers[VERSION_HEADER] == second.version

    roles = {d.version: d.role for d in e2e_state.store.deployments("iris-e2e", "production")}
    assert roles == {second.version: "stable", first.version: "standby"}

    done = shipyard(e2e_state.state.root, "rollback", "--project", "iris-e2e")
    assert done.returncode == 0, done.stderr
    assert predict(port).headers[VERSION_HEADER] == first.version

    status = shipyard(
        e2e_state.state.root, "status", str(second.number), "--project", "iris-e2e", "--json"
    )
    assert status.returncode == 0, status.stderr
    assert '"status": "passed"' in status.stdout
