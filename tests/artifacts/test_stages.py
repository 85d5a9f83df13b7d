"""The publish and release stages with real adapters: properties, the policy, the signature."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.properties import stage_properties
from shipyard.artifacts.repository import record_result
from shipyard.artifacts.signing import KeyFile
from shipyard.config.loader import parse_config
from shipyard.domain import Status
from shipyard.errors import Conflict
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.pipeline.stages.repository import publish, release
from shipyard.services import Services
from shipyard.wiring import open_adapters

from .conftest import Tree

CONFIG = """\
name: iris
install: requirements.txt
build:
  train: python train.py
model:
  serve: m:Model
"""
SHA = "1a2b3c4d" * 5


@pytest.fixture
def adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Adapters]:
    monkeypatch.delenv("SHIPYARD_SIGNING_KEY", raising=False)
    opened = open_adapters(tmp_path / "state")
    yield opened
    opened.store.close()


def context(
    adapters: Adapters, tree: Tree, tmp_path: Path, results: dict[str, StageOutcome]
) -> RunContext:
    store = adapters.store
    store.ensure_project("iris", "/repos/iris")
    run = store.create_run("iris", SHA, "main")
    ctx = RunContext(
        adapters, "iris", run.number, SHA, "main", Path("/repos/iris"), parse_config(CONFIG, "t")
    )
    ctx.build_info = {
        "name": "iris",
        "version": ctx.version,
        "run": run.number,
        "git": {"sha": SHA},
    }
    ctx.artifact_path = tree.pack(tmp_path / "out", **ctx.build_info).path
    for stage, outcome in results.items():
        store.set_stage_status("iris", run.number, stage, outcome.status, summary=outcome.summary)
    ctx.results = dict(results)
    return ctx


def test_publish_and_release_record_properties_and_sign(
    adapters: Adapters, tree: Tree, tmp_path: Path
) -> None:
    results = {
        "test": StageOutcome.passed("ok", passed=12, failed=0, failures=[]),
        "analyze": StageOutcome.passed("ok", findings=0, allowed=1),
    }
    ctx = context(adapters, tree, tmp_path, results)
    assert publish(ctx).status is Status.PASSED
    qa = StageOutcome.passed("ok", quality={"metrics": {"accuracy": 0.93}, "passed": True})
    adapters.store.set_stage_status("iris", ctx.number, "qa", Status.PASSED, summary=qa.summary)
    ctx.results["qa"] = qa
    outcome = release(ctx)
    assert outcome.status is Status.PASSED
    assert outcome.summary["signed_by"].startswith("ed25519:")
    assert outcome.summary["policy"] == "run #1: test passed, analyze passed, qa passed"
    artifact = adapters.store.get_artifact("iris", ctx.version)
    props = Catalog(adapters.store).properties(artifact)
    assert props["git.sha"] == SHA and props["build.run"] == "1" and props["git.ref"] == "main"
    assert (props["test.status"], props["test.passed"], props["analyze.findings"]) == (
        "passed",
        "12",
        "0",
    )
    assert (props["qa.status"], props["qa.accuracy"]) == ("passed", "0.93")
    assert adapters.state.signing_key.stat().st_mode & 0o777 == 0o600
    assert adapters.store.in_repository("release", "iris", ctx.version)


def test_release_refuses_a_run_whose_qa_was_skipped(
    adapters: Adapters, tree: Tree, tmp_path: Path
) -> None:
    results = {
        "test": StageOutcome.passed("ok"),
        "analyze": StageOutcome.passed("ok"),
        "qa": StageOutcome.skipped("no `qa:` section in shipyard.yaml"),
    }
    ctx = context(adapters, tree, tmp_path, results)
    publish(ctx)
    with pytest.raises(
        Conflict, match=r"The 'release' policy refuses iris:1-1a2b3c4: qa skipped"
    ) as caught:
        release(ctx)
    assert "--allow-skipped qa" in (caught.value.hint or "")
    assert not adapters.store.in_repository("release", "iris", ctx.version)


STATEMENT = {"requires": ["analyze"], "waived": ["test", "qa"]}
NO_TESTS = {
    "test": StageOutcome.skipped("no `test:` section in shipyard.yaml"),
    "analyze": StageOutcome.passed("ok"),
    "qa": StageOutcome.skipped("no `qa:` section in shipyard.yaml"),
}


def test_a_promotion_by_hand_applies_the_statement_signed_with_the_build(
    adapters: Adapters, tree: Tree, tmp_path: Path
) -> None:
    ctx = context(adapters, tree, tmp_path, NO_TESTS)
    ctx.build_info["release"] = STATEMENT  # as the build stage writes it from release.requires
    publish(ctx)
    artifact = adapters.store.get_artifact("iris", ctx.version)
    assert artifact.build_info["release"] == STATEMENT
    attestation = next(
        a for a in Catalog(adapters.store).attestations(artifact) if a.subject == "build"
    )
    assert attestation.fields()["release"] == STATEMENT  # signed with the build
    keys = KeyFile.resolve(adapters.state.signing_key)
    record_result(adapters.store, artifact, "qa", stage_properties("qa", "skipped", {}), keys)

    view = Services(adapters).artifacts.promote("iris", ctx.version)
    assert view.promoted
    stated = "project states none: release.requires [analyze]"
    assert view.summary == f"run #1: test skipped ({stated}), analyze passed, qa skipped ({stated})"
    assert [c.verdict for c in view.checks] == [
        "project states none",
        "passed",
        "project states none",
    ]
    event = next(e for e in adapters.store.events("iris:") if e.action == "artifact.promoted")
    assert stated in event.detail["reason"]


def test_a_statement_written_into_the_stored_build_info_afterwards_does_not_count(
    adapters: Adapters, tree: Tree, tmp_path: Path
) -> None:
    ctx = context(adapters, tree, tmp_path, NO_TESTS)
    publish(ctx)  # built without a statement
    adapters.store.update_build_info("iris", ctx.version, release=STATEMENT)
    with pytest.raises(
        Conflict, match=r"refuses iris:1-1a2b3c4: test skipped, qa skipped"
    ) as caught:
        release(ctx)
    assert "`release: {requires: [analyze]}`" in (caught.value.hint or "")
    assert not adapters.store.in_repository("release", "iris", ctx.version)
