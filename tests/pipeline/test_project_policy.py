"""A project states its own release requirements; the repository's policy stays as it is.

Real git projects, a real state directory whose `release` policy is the default one (test,
analyze and qa must pass), and the whole pipeline: the project that says it has no tests and
no qa reaches release, a second project beside it that says nothing is still refused.
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

# No unit tests, no qa; one quick analysis check, which the project requires.
NO_TESTS = "analyze: {checks: [secrets]}\nrelease: {requires: [analyze]}\n"
STATED = "project states none: release.requires [analyze]"


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Adapters]:
    """A state directory whose `release` repository keeps its default policy."""
    adapters = open_adapters(tmp_path / "state")
    yield adapters
    adapters.store.close()


def project(root: Path, name: str, extra: str = "") -> Path:
    """The tiny project as ``name``: a train command and a model, with ``extra`` config and
    without its unit tests (no test, analyze, staging or qa section)."""
    repo = root / name
    write_project(repo)
    config = repo / "shipyard.yaml"
    text = config.read_text().replace("name: tiny", f"name: {name}")
    config.write_text(text.replace("test:\n  run: pytest -q tests\n", "") + extra)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "first")
    return repo


def stages(adapters: Adapters, name: str, number: int) -> dict[str, tuple[str, str]]:
    run = adapters.store.get_run(name, number)
    return {s.name: (s.status, s.message or "") for s in run.stages}


def test_a_project_that_states_it_has_no_tests_or_qa_reaches_release_and_another_does_not(
    strict: Adapters, tmp_path: Path
) -> None:
    pipeline = Pipeline(strict)
    stated = pipeline.queue(project(tmp_path, "stated", NO_TESTS))
    assert pipeline.execute(stated) is Status.PASSED
    found = stages(strict, "stated", stated.number)
    assert found["test"][0] == found["qa"][0] == "skipped"
    assert found["analyze"][0] == found["release"][0] == "passed"

    run = strict.store.get_run("stated", stated.number)
    summary = next(s.summary for s in run.stages if s.name == "release")
    assert summary["policy"] == (
        f"run #1: test skipped ({STATED}), analyze passed, qa skipped ({STATED})"
    )
    artifact = strict.store.get_artifact("stated", stated.version)
    assert artifact.build_info["release"] == {"requires": ["analyze"], "waived": ["test", "qa"]}
    promoted = [e for e in strict.store.events("stated:") if e.action == "artifact.promoted"]
    assert len(promoted) == 1 and STATED in promoted[0].detail["reason"]

    silent = pipeline.queue(project(tmp_path, "silent"))
    assert pipeline.execute(silent) is Status.FAILED
    status, message = stages(strict, "silent", silent.number)["release"]
    assert status == "failed"
    assert "The 'release' policy refuses silent:" in message
    assert "test skipped, analyze skipped, qa skipped" in message
    assert "`release: {requires: []}`" in message  # the hint: say so in the project's file
    assert not strict.store.in_repository("release", "silent", silent.version)
    assert "release" not in strict.store.get_artifact("silent", silent.version).build_info

    # Neither project changed the repository's policy row.
    assert Catalog(strict.store).policy("release") == PromotionPolicy(RELEASE_GATES)
    assert not [e for e in strict.store.events("release") if e.action.startswith("repository.")]
