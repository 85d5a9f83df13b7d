"""A project states its own release requirements; the repository's policy stays as it is.

Real git projects, a real state directory whose `release` policy is the default one (test,
analyze and qa must pass), and the whole pipeline: the project that says it has no analyze
and no qa reaches release, a second project beside it that says nothing is still refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.policy import RELEASE_GATES, PromotionPolicy
from shipyard.domain import Status
from shipyard.pipeline.engine import Pipeline
from shipyard.wiring import open_adapters

from .conftest import write_project

STATEMENT = "release: {requires: [test]}\n"
STATED = "project states none: release.requires [test]"


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Adapters]:
    """A state directory whose `release` repository keeps its default policy."""
    adapters = open_adapters(tmp_path / "state")
    yield adapters
    adapters.store.close()


def project(root: Path, name: str, extra: str = "") -> Path:
    """The tiny project (a train command and unit tests, no analyze, staging or qa) as ``name``."""
    repo = root / name
    write_project(repo)
    config = repo / "shipyard.yaml"
    config.write_text(config.read_text().replace("name: tiny", f"name: {name}") + extra)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "first")
    return repo


def stages(adapters: Adapters, name: str, number: int) -> dict[str, tuple[str, str]]:
    run = adapters.store.get_run(name, number)
    return {s.name: (s.status, s.message or "") for s in run.stages}


def test_a_project_that_states_it_has_no_analyze_or_qa_reaches_release_and_another_does_not(
    strict: Adapters, tmp_path: Path
) -> None:
    pipeline = Pipeline(strict)
    stated = pipeline.queue(project(tmp_path, "stated", STATEMENT))
    assert pipeline.execute(stated) is Status.PASSED
    found = stages(strict, "stated", stated.number)
    assert found["analyze"][0] == found["qa"][0] == "skipped"
    assert found["release"][0] == "passed"

    run = strict.store.get_run("stated", stated.number)
    summary = next(s.summary for s in run.stages if s.name == "release")
    assert summary["policy"] == (
        f"run #1: test passed, analyze skipped ({STATED}), qa skipped ({STATED})"
    )
    artifact = strict.store.get_artifact("stated", stated.version)
    assert artifact.build_info["release"] == {"requires": ["test"], "waived": ["analyze", "qa"]}
    promoted = [e for e in strict.store.events("stated:") if e.action == "artifact.promoted"]
    assert len(promoted) == 1 and STATED in promoted[0].detail["reason"]

    silent = pipeline.queue(project(tmp_path, "silent"))
    assert pipeline.execute(silent) is Status.FAILED
    status, message = stages(strict, "silent", silent.number)["release"]
    assert status == "failed"
    assert "The 'release' policy refuses silent:" in message
    assert "analyze skipped, qa skipped" in message
    assert not strict.store.in_repository("release", "silent", silent.version)
    assert "release" not in strict.store.get_artifact("silent", silent.version).build_info

    # Neither project changed the repository's policy row.
    assert Catalog(strict.store).policy("release") == PromotionPolicy(RELEASE_GATES)
    assert not [e for e in strict.store.events("release") if e.action.startswith("repository.")]
