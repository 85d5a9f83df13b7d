"""The metadata store against real SQLite files: schema, runs, stages, audit log, artifacts.

Every state change must leave an Event (who, what, when), so most tests read the audit log
back as well as the state it describes.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import inspect

from shipyard.canary.records import find_rollout
from shipyard.domain import STAGES, Status
from shipyard.errors import Conflict, NotFound
from shipyard.store import Store
from shipyard.store.models import Artifact, Deployment, Rollout, utcnow

TABLES = {
    "alembic_version",
    "approvals",
    "artifact_properties",
    "artifact_refs",
    "artifact_attestations",
    "artifact_signatures",
    "artifacts",
    "deployments",
    "events",
    "leases",
    "notification_targets",
    "processes",
    "sessions",
    "projects",
    "promotions",
    "repositories",
    "rollouts",
    "runs",
    "stage_runs",
    "tokens",
    "webhook_deliveries",
}
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def add_artifact(store: Store, version: str = "1-abc", digest: str = DIGEST_A) -> Artifact:
    return store.add_artifact("iris", version, digest, 1234, {"run": 1}, None)


def actions(store: Store, prefix: str) -> list[str]:
    """The audit log's actions on subjects starting with ``prefix``, oldest first."""
    return [event.action for event in reversed(store.events(prefix))]


# -- schema ------------------------------------------------------------------------------------


def test_migration_creates_every_table(store: Store) -> None:
    assert set(inspect(store.engine).get_table_names()) == TABLES


def test_opening_the_same_file_again_migrates_nothing_and_keeps_the_data(
    store: Store, project: str, db_url: str, tmp_path: Path
) -> None:
    store.create_run(project, "a" * 40, "main")
    again = Store(db_url)
    try:
        assert set(inspect(again.engine).get_table_names()) == TABLES
        assert again.get_run(project, 1).sha == "a" * 40
    finally:
        again.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0006",)]


def test_the_database_is_in_wal_mode(store: Store, project: str, tmp_path: Path) -> None:
    # WAL is set by the store's engine on connect (the migration's engine does not), and it is
    # a property of the file: once the store has been used, every other connection sees it.
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_missing_parent_folder_is_created(tmp_path: Path) -> None:
    nested = Store(f"sqlite:///{tmp_path}/a/b/s.db")
    try:
        assert (tmp_path / "a" / "b" / "s.db").is_file()
    finally:
        nested.close()


# -- projects and runs -------------------------------------------------------------------------


def test_runs_are_numbered_per_project(store: Store) -> None:
    store.ensure_project("iris", "/repos/iris")
    store.ensure_project("wine", "/repos/wine")
    numbers = [
        (name, store.create_run(name, f"{i}" * 40, "main").number)
        for i, name in enumerate(["iris", "wine", "iris", "wine"])
    ]
    assert numbers == [("iris", 1), ("wine", 1), ("iris", 2), ("wine", 2)]
    assert [record.run["number"] for record in store.run_records("wine")] == [2, 1]


def test_a_new_run_has_every_stage_queued_in_order(store: Store, project: str) -> None:
    run = store.create_run(project, "c" * 40, "refs/heads/main", trigger="webhook")
    assert (run.status, run.trigger, run.ref, run.project.name) == (
        "queued",
        "webhook",
        "refs/heads/main",
        project,
    )
    assert [stage.name for stage in run.stages] == list(STAGES)
    assert {stage.status for stage in run.stages} == {"queued"}
    assert [stage.position for stage in run.stages] == list(range(len(STAGES)))
    assert actions(store, f"{project}#1") == ["run.created"]


def test_a_run_of_an_unknown_project_is_refused_with_a_hint(store: Store) -> None:
    with pytest.raises(NotFound, match="no project 'ghost'") as caught:
        store.create_run("ghost", "d" * 40, None)
    assert caught.value.hint and "shipyard run" in caught.value.hint


def test_a_moved_project_is_recorded(store: Store, project: str) -> None:
    store.ensure_project(project, "/elsewhere/iris")
    assert store.list_projects()[0].repository == "/elsewhere/iris"
    assert actions(store, project) == ["project.created", "project.moved"]


def test_a_missing_run_is_not_found_with_a_hint(store: Store, project: str) -> None:
    with pytest.raises(NotFound, match=r"There is no run iris#9\.") as caught:
        store.get_run(project, 9)
    assert caught.value.hint == "`shipyard status` lists the runs."
    with pytest.raises(NotFound, match="any run of project 'iris'"):
        store.get_run(project)


def test_run_number_zero_does_not_exist(store: Store, project: str) -> None:
    store.create_run(project, "e" * 40, None)
    with pytest.raises(NotFound):
        store.get_run(project, 0)


def test_the_newest_run_is_returned_without_a_number(store: Store, project: str) -> None:
    store.create_run(project, "1" * 40, None)
    store.create_run(project, "2" * 40, None)
    assert store.get_run(project).number == 2


# -- status changes ----------------------------------------------------------------------------


def test_stage_status_persists_timestamps_message_and_merged_summary(
    store: Store, project: str
) -> None:
    store.create_run(project, "f" * 40, None)
    before = utcnow()
    store.set_stage_status(
        project, 1, "build", Status.RUNNING, summary={"a": 1}, log_path="/logs/build.log"
    )
    running = store.get_run(project, 1).stages[0]
    assert (running.status, running.log_path, running.finished_at) == (
        "running",
        "/logs/build.log",
        None,
    )
    assert running.started_at is not None and running.started_at >= before
    store.set_stage_status(project, 1, "build", Status.PASSED, "built", summary={"b": 2, "a": 3})
    done = store.get_run(project, 1).stages[0]
    assert (done.status, done.message, done.summary) == ("passed", "built", {"a": 3, "b": 2})
    assert done.finished_at is not None and done.finished_at >= running.started_at
    assert done.log_path == "/logs/build.log"  # not given again: kept
    store.set_stage_status(project, 1, "build", Status.PASSED)
    assert store.get_run(project, 1).stages[0].message == "built"  # no message: kept
    assert store.get_run(project, 1).stages[1].status == "queued"  # the others are untouched


def test_an_unknown_stage_is_not_found(store: Store, project: str) -> None:
    store.create_run(project, "f" * 40, None)
    with pytest.raises(NotFound, match="has no stage 'deploy'"):
        store.set_stage_status(project, 1, "deploy", Status.RUNNING)


def test_run_status_persists_fields_and_keeps_the_first_start(store: Store, project: str) -> None:
    store.create_run(project, "f" * 40, None)
    store.set_run_status(project, 1, Status.RUNNING, pid=4321)
    first = store.get_run(project, 1)
    assert (first.status, first.pid, first.finished_at) == ("running", 4321, None)
    assert first.started_at is not None
    store.set_run_status(project, 1, Status.WAITING, "waiting for run #0")
    store.set_run_status(project, 1, Status.RUNNING, "deploying")
    assert store.get_run(project, 1).started_at == first.started_at
    store.set_run_status(project, 1, Status.FAILED, "qa failed")
    done = store.get_run(project, 1)
    assert (done.status, done.message) == ("failed", "qa failed")
    assert done.finished_at is not None and done.finished_at >= first.started_at


def test_every_change_is_an_event_with_who_what_and_when(
    store: Store, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_ACTOR", "ci-bot")
    store.create_run(project, "f" * 40, None)
    store.set_run_status(project, 1, Status.RUNNING)
    store.set_stage_status(project, 1, "build", Status.RUNNING)
    store.set_stage_status(project, 1, "build", Status.FAILED, "train exited 1")
    store.set_run_status(project, 1, Status.FAILED, "build failed")
    events = list(reversed(store.events(f"{project}#1")))
    assert [(e.action, e.subject) for e in events] == [
        ("run.created", "iris#1"),
        ("run.running", "iris#1"),
        ("stage.running", "iris#1/build"),
        ("stage.failed", "iris#1/build"),
        ("run.failed", "iris#1"),
    ]
    assert {e.actor for e in events} == {"ci-bot"}
    assert events[3].detail == {"message": "train exited 1"}
    assert abs(events[-1].at - utcnow()) < timedelta(minutes=1)
    assert all(a.id < b.id and a.at <= b.at for a, b in pairwise(events))
    assert store.get_run(project, 1).actor == "ci-bot"


def test_events_filter_by_subject_and_limit(store: Store, project: str) -> None:
    store.create_run(project, "1" * 40, None)
    store.create_run(project, "2" * 40, None)
    assert [e.subject for e in store.events("iris#2")] == ["iris#2"]
    assert len(store.events(limit=1)) == 1


def test_cancel_is_recorded_for_an_active_run(store: Store, project: str) -> None:
    store.create_run(project, "f" * 40, None)
    assert store.cancel_requested(project, 1) is False
    assert store.request_cancel(project, 1).cancel_requested is True
    assert store.cancel_requested(project, 1) is True
    assert "run.cancel-requested" in actions(store, f"{project}#1")


def test_cancelling_a_finished_run_is_a_conflict(store: Store, project: str) -> None:
    store.create_run(project, "f" * 40, None)
    store.set_run_status(project, 1, Status.PASSED)
    with pytest.raises(Conflict, match=r"iris#1 has already finished \(passed\)"):
        store.request_cancel(project, 1)
    assert store.cancel_requested(project, 1) is False


def test_active_runs_are_the_unfinished_ones_in_order(store: Store, project: str) -> None:
    for sha in "123":
        store.create_run(project, sha * 40, None)
    store.set_run_status(project, 2, Status.PASSED)
    store.set_run_status(project, 3, Status.WAITING)
    assert [run.number for run in store.active_runs(project)] == [1, 3]


# -- artifacts and repositories ----------------------------------------------------------------


def test_a_version_names_one_digest_forever(store: Store) -> None:
    first = add_artifact(store)
    with pytest.raises(Conflict, match=f"already exists with digest {DIGEST_A}") as caught:
        add_artifact(store, digest=DIGEST_B)
    assert caught.value.hint and "immutable" in caught.value.hint
    again = add_artifact(store)
    assert (again.id, again.digest) == (first.id, DIGEST_A)
    assert store.get_artifact("iris", "1-abc").digest == DIGEST_A
    assert actions(store, "iris:1-abc") == ["artifact.created"]  # the repeat wrote nothing


def test_a_missing_artifact_is_not_found_with_a_hint(store: Store) -> None:
    with pytest.raises(NotFound, match=r"no artifact iris:9") as caught:
        store.get_artifact("iris", "9")
    assert caught.value.hint == "`shipyard artifacts` lists them."


def test_build_info_updates_merge(store: Store) -> None:
    add_artifact(store)
    store.update_build_info("iris", "1-abc", qa={"passed": True})
    assert store.get_artifact("iris", "1-abc").build_info == {"run": 1, "qa": {"passed": True}}
    with pytest.raises(NotFound):
        store.update_build_info("iris", "2", qa={})


def test_adding_a_ref_twice_is_a_no_op(store: Store) -> None:
    artifact = add_artifact(store)
    assert store.add_ref("dev", artifact) is True
    assert store.add_ref("dev", artifact) is False
    assert store.in_repository("dev", "iris", "1-abc")
    assert not store.in_repository("release", "iris", "1-abc")
    assert actions(store, "iris:1-abc").count("artifact.published") == 1


def test_artifacts_filter_by_repository_and_name_newest_first(store: Store) -> None:
    one, two = add_artifact(store, "1"), add_artifact(store, "2", DIGEST_B)
    other = store.add_artifact("wine", "1", DIGEST_A, 10, {}, None)
    for artifact in (one, two, other):
        store.add_ref("dev", artifact)
    store.add_ref("release", one)

    def listed(repository: str | None = None, name: str | None = None) -> list[tuple[str, ...]]:
        rows = store.list_artifacts(repository, name)
        return [(a.name, a.version, *repos) for a, repos in rows]

    assert listed() == [("wine", "1", "dev"), ("iris", "2", "dev"), ("iris", "1", "dev", "release")]
    assert listed("release") == [("iris", "1", "dev", "release")]
    assert listed("dev", "iris") == [("iris", "2", "dev"), ("iris", "1", "dev", "release")]
    assert listed("staging") == []


def test_a_promotion_is_audited_with_its_reason(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_ACTOR", "alice")
    artifact = add_artifact(store)
    store.record_promotion(artifact, "dev", "release", "qa passed")
    event = store.events("iris:1-abc")[0]
    assert (event.action, event.actor) == ("artifact.promoted", "alice")
    assert event.detail == {"source": "dev", "target": "release", "reason": "qa passed"}


# -- deployments and rollouts ------------------------------------------------------------------


def deploy(store: Store, environment: str, version: str, state: str) -> Deployment:
    artifact = add_artifact(store, version, DIGEST_A)
    row = Deployment(
        project="iris",
        environment=environment,
        version=version,
        artifact_id=artifact.id,
        role="stable",
        weight=100,
        state=state,
    )
    return store.save_deployment(row, "started")


def test_deployments_filter_running_only_environment_and_project(store: Store) -> None:
    deploy(store, "staging", "1", "ready")
    deploy(store, "production", "2", "starting")
    stopped = deploy(store, "production", "3", "stopped")
    deploy(store, "production", "4", "failed")

    def versions(
        project: str | None = None, environment: str | None = None, running_only: bool = True
    ) -> list[str]:
        rows = store.deployments(project, environment, running_only=running_only)
        return [d.version for d in rows]

    assert versions() == ["1", "2"]
    assert versions(running_only=False) == ["1", "2", "3", "4"]
    assert versions(environment="production") == ["2"]
    assert versions(project="wine") == []
    assert store.deployments(environment="staging")[0].artifact.version == "1"
    stopped.state = "ready"
    store.save_deployment(stopped, "restarted")
    assert versions(environment="production") == ["2", "3"]
    assert actions(store, "iris/production/3") == ["deployment.started", "deployment.restarted"]


def test_a_rollout_round_trips(store: Store) -> None:
    with pytest.raises(NotFound, match="no rollout"):
        find_rollout(store, "iris", "production")
    saved = store.save_rollout(
        Rollout(
            project="iris",
            environment="production",
            stable_version="1",
            canary_version="2",
            steps=[10, 50, 100],
        ),
        "started",
    )
    saved.step_index, saved.weight = 1, 50
    saved.verdicts = [{"step": 10, "passed": True}]
    store.save_rollout(saved, "stepped", step=10)
    got = find_rollout(store, "iris", "production")
    assert (got.id, got.steps, got.step_index, got.weight, got.status) == (
        saved.id,
        [10, 50, 100],
        1,
        50,
        "running",
    )
    assert got.verdicts == [{"step": 10, "passed": True}]
    assert isinstance(got.updated_at, datetime)
    newer = store.save_rollout(
        Rollout(project="iris", environment="production", canary_version="3"), "started"
    )
    assert find_rollout(store, "iris", "production").id == newer.id
    assert find_rollout(store, "iris", "production", saved.id).id == saved.id
    with pytest.raises(NotFound):
        find_rollout(store, "iris", "staging")
    stepped = store.events("iris/production/2")[0]
    assert (stepped.action, stepped.detail) == (
        "rollout.stepped",
        {"weight": 50, "status": "running", "step": 10},
    )
