"""A glance at the store through sqlite3 reads the same runs, as the same views, as the store
itself; it stands aside (None) whenever the store has to be opened instead."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shipyard.domain import Status
from shipyard.errors import NotFound
from shipyard.paths import StateDir
from shipyard.services.views import RunReads, RunsAtAGlance
from shipyard.store import Store
from shipyard.store.glance import Glance


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    """A state with two projects' runs, stages that ran, messages and summaries."""
    state = StateDir(tmp_path / "state").ensure()
    store = Store(state.database_url)
    try:
        for project, runs in (("iris", 3), ("wine", 2)):
            store.ensure_project(project, f"/repos/{project}")
            for _ in range(runs):
                store.create_run(project, "a" * 40, "main", trigger="cli")
        store.set_run_status("iris", 2, Status.RUNNING)
        store.set_stage_status("iris", 2, "build", Status.RUNNING)
        store.set_stage_status(
            "iris", 2, "build", Status.PASSED, "packed", summary={"digest": "sha256:ab", "n": 3}
        )
        store.set_stage_status("iris", 2, "test", Status.FAILED, "1 failed")
        store.set_run_status("iris", 2, Status.FAILED, "test failed")
    finally:
        store.close()
    return state


def both(state: StateDir) -> tuple[RunReads, RunReads]:
    glance = Glance.open(state.database)
    assert glance is not None
    store = Store(state.database_url)
    return RunsAtAGlance(glance).runs, RunReads(store.run_records)


def test_the_glance_reads_the_same_views_as_the_store(state: StateDir) -> None:
    glanced, stored = both(state)
    assert glanced.list() == stored.list()
    assert [run.number for run in glanced.list("iris")] == [3, 2, 1]
    assert glanced.list("wine", limit=1) == stored.list("wine", limit=1)
    run = glanced.get("iris", 2)
    assert run == stored.get("iris", 2)
    assert run.status is Status.FAILED and run.started_at is not None
    build = next(stage for stage in run.stages if stage.name == "build")
    assert build.summary == {"digest": "sha256:ab", "n": 3}
    assert build.finished_at is not None and build.finished_at >= build.started_at  # type: ignore[operator]


def test_an_unknown_run_is_the_same_error_either_way(state: StateDir) -> None:
    glanced, stored = both(state)
    with pytest.raises(NotFound) as by_glance:
        glanced.get("iris", 9)
    with pytest.raises(NotFound) as by_store:
        stored.get("iris", 9)
    assert str(by_glance.value) == str(by_store.value) == "There is no run iris#9."


def test_project_names_are_the_stores(state: StateDir) -> None:
    glance = Glance.open(state.database)
    assert glance is not None
    assert RunsAtAGlance(glance).project_names() == ["iris", "wine"]


def test_no_glance_without_a_database(tmp_path: Path) -> None:
    assert Glance.open(tmp_path / "shipyard.db") is None
    assert not (tmp_path / "shipyard.db").exists()  # looking created nothing


def test_no_glance_at_a_schema_the_store_must_migrate_first(state: StateDir) -> None:
    with sqlite3.connect(state.database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0001'")
    assert Glance.open(state.database) is None


def test_the_glance_cannot_write(state: StateDir) -> None:
    glance = Glance.open(state.database)
    assert glance is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        glance._connection.execute("DELETE FROM runs")
