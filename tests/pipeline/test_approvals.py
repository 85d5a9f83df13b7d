"""A run waits for a person at its release gate, holding no worker, and resumes when decided.

The tiny real project through the real engine; the decisions through the CLI, as a person
makes them.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gitrepos import commit
from shipyard.adapters import Adapters
from shipyard.cli.app import app
from shipyard.domain import Status
from shipyard.pipeline.engine import Pipeline
from shipyard.services import Services
from shipyard.store import acting_as

MANUAL_RELEASE = "release:\n  approval: manual\n"


def manual(repo: Path) -> None:
    config = repo / "shipyard.yaml"
    config.write_text(config.read_text() + MANUAL_RELEASE)
    commit(repo, "QA approves releases")


def shipyard(adapters: Adapters, *args: str) -> str:
    result = CliRunner().invoke(
        app, [*args, "--state", str(adapters.state.root)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return " ".join(result.output.split())


def test_a_release_waits_for_qa_and_goes_on_once_approved(repo: Path, adapters: Adapters) -> None:
    manual(repo)
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(repo)
    assert pipeline.execute(ctx) is Status.WAITING
    run = adapters.store.get_run("tiny", ctx.number)
    assert run.status == "waiting" and run.message == "waiting for approval of release by qa"
    assert Services(adapters).runs.driver("tiny", ctx.number) is None  # it holds no worker
    assert not adapters.store.in_repository("release", "tiny", ctx.version)

    assert "│ release │ qa or above │" in shipyard(adapters, "approvals")
    [waiting] = json.loads(shipyard(adapters, "approvals", "--json"))
    assert (waiting["run"], waiting["gate"], waiting["approver"]) == (ctx.number, "release", "qa")
    with acting_as("quinn"):
        said = shipyard(adapters, "approve", str(ctx.number), "--reason", "qa report read")
    assert said == f"tiny#{ctx.number} approved at release by quinn: queued again from release"
    assert shipyard(adapters, "approvals") == "no run waits for an approval"

    assert pipeline.execute(pipeline.context("tiny", ctx.number)) is Status.PASSED
    stages = {s.name: s.status for s in adapters.store.get_run("tiny", ctx.number).stages}
    assert stages["release"] == "passed" and stages["build"] == "passed"
    assert adapters.store.in_repository("release", "tiny", ctx.version)
    [entry] = adapters.store.get_artifact("tiny", ctx.version).build_info["approvals"]
    assert (entry["gate"], entry["decision"], entry["actor"]) == ("release", "approved", "quinn")
    assert (
        "approved by quinn" in adapters.state.stage_log("tiny", ctx.number, "release").read_text()
    )


def test_a_rejected_release_fails_with_the_reason_and_reaches_nothing_after(
    repo: Path, adapters: Adapters
) -> None:
    manual(repo)
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(repo)
    assert pipeline.execute(ctx) is Status.WAITING
    with acting_as("quinn"):
        shipyard(adapters, "reject", str(ctx.number), "--reason", "holdout labels are wrong")
    assert pipeline.execute(pipeline.context("tiny", ctx.number)) is Status.FAILED
    run = adapters.store.get_run("tiny", ctx.number)
    stages = {s.name: (s.status, s.message) for s in run.stages}
    assert stages["release"] == ("failed", "rejected by quinn: holdout labels are wrong")
    assert stages["canary"][0] == stages["live"][0] == "skipped"
    assert not adapters.store.in_repository("release", "tiny", ctx.version)
