"""The report and control commands on a real state directory (SQLite, files, processes).

Errors are checked twice over: in process, by the ShipyardError a command ends with, and in
a subprocess, by the exit code (2 for the user's mistakes) and the "error:" / "next:" lines.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import Result

from shipyard.config.loader import load_config
from shipyard.coordination.store import StoreLeases
from shipyard.domain import STAGES, Status
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.store import Store

Cli = Callable[..., Result]
Shipyard = Callable[..., subprocess.CompletedProcess[str]]
GitRepo = Callable[..., Path]


def squeeze(text: str) -> str:
    return " ".join(text.split())


def error_lines(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """The "error:" and "next:" parts of a failed command's stderr, whitespace squeezed."""
    text = squeeze(done.stderr)
    assert text.startswith("error: "), done.stderr
    message, _, hint = text.partition(" next: ")
    return message.removeprefix("error: "), hint


def failed_with(result: Result, kind: type[Exception]) -> Exception:
    assert result.exit_code != 0
    assert isinstance(result.exception, kind), repr(result.exception)
    return result.exception


# -- schema and init ---------------------------------------------------------------------------


def test_schema_prints_the_json_schema(cli: Cli) -> None:
    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert {"name", "build", "canary", "model"} <= set(schema["properties"])
    assert "name" in schema["required"]


def test_init_writes_a_starter_and_refuses_to_overwrite_it(
    cli: Cli, shipyard: Shipyard, git_repo: GitRepo
) -> None:
    repo = git_repo("My Model", **{"requirements.txt": "scikit-learn\n"})
    result = cli("init", repo)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "shipyard run" in result.stdout
    config = load_config(repo / "shipyard.yaml")
    assert (config.name, config.install) == ("my-model", "requirements.txt")
    assert ".shipyard/" in (repo / ".gitignore").read_text().splitlines()
    (repo / "shipyard.yaml").write_text("name: edited\n")

    again = shipyard("init", repo)
    assert again.returncode == 2
    message, hint = error_lines(again)
    assert message.endswith("shipyard.yaml already exists")
    assert "--force" in hint
    assert (repo / "shipyard.yaml").read_text() == "name: edited\n"  # untouched

    forced = cli("init", repo, "--force")
    assert forced.exit_code == 0
    assert yaml.safe_load((repo / "shipyard.yaml").read_text())["name"] == "my-model"


def test_init_of_a_missing_folder_is_refused(cli: Cli, tmp_path: Path) -> None:
    error = failed_with(cli("init", tmp_path / "nowhere"), InvalidInput)
    assert "is not a folder" in str(error)


# -- the report commands on an empty state -----------------------------------------------------


@pytest.mark.usefixtures("store")  # an empty state directory
def test_status_of_an_empty_state_is_an_empty_table(cli: Cli, state: Path) -> None:
    result = cli("status", "--state", state)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "runs"
    header = squeeze(" ".join(lines[:4]))
    for column in ("project", "run", "commit", "status", "started", "time", "at stage"):
        assert column in header
    assert "#" not in result.stdout  # no run rows


@pytest.mark.usefixtures("store")  # an empty state directory
def test_empty_state_lists_are_empty_json(cli: Cli, state: Path) -> None:
    for command in (["status"], ["artifacts"], ["envs"]):
        result = cli(*command, "--json", "--state", state)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == [], command


def test_status_of_a_missing_run_exits_2_with_a_hint(
    shipyard: Shipyard, store: Store, state: Path
) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    done = shipyard("status", "9", "--state", state)
    assert done.returncode == 2
    assert done.stdout == ""
    message, hint = error_lines(done)
    assert message == "There is no run tiny#9."
    assert hint == "`shipyard status` lists the runs."


@pytest.mark.usefixtures("store")  # an empty state directory
def test_status_of_a_run_without_any_project_says_so(cli: Cli, state: Path) -> None:
    error = failed_with(cli("status", "1", "--state", state), NotFound)
    assert "no projects" in str(error)


def test_a_project_is_needed_when_several_are_known(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("iris", "/repos/iris")
    store.ensure_project("wine", "/repos/wine")
    error = failed_with(cli("status", "1", "--state", state), InvalidInput)
    assert "iris, wine" in str(error)
    assert isinstance(error, InvalidInput) and error.hint and "--project" in error.hint


def test_status_shows_runs_and_one_run_as_json(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, "main")
    store.set_stage_status("tiny", 1, "build", Status.RUNNING)
    table = cli("status", "--state", state)
    assert "#1" in table.stdout and "abababab" in table.stdout and "build" in table.stdout
    one = json.loads(cli("status", "1", "--json", "--state", state).stdout)
    assert (one["project"], one["number"], one["sha"], one["status"]) == (
        "tiny",
        1,
        "ab" * 20,
        "queued",
    )
    assert [s["name"] for s in one["stages"]] == list(STAGES)
    assert one["stages"][0]["status"] == "running"


# -- argument checks ---------------------------------------------------------------------------


def test_promote_needs_name_colon_version(shipyard: Shipyard, state: Path) -> None:
    done = shipyard("promote", "bad-ref", "--state", state)
    assert done.returncode == 2
    message, hint = error_lines(done)
    assert message == "'bad-ref' is not NAME:VERSION."
    assert "shipyard artifacts" in hint


@pytest.mark.usefixtures("store")  # an empty state directory
def test_promote_of_a_missing_artifact_is_not_found(cli: Cli, state: Path) -> None:
    error = failed_with(cli("promote", "tiny:1-abc", "--state", state), NotFound)
    assert "tiny:1-abc" in str(error)


def test_logs_of_an_unknown_stage_are_refused(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, None)
    error = failed_with(cli("logs", "1", "deploy", "--state", state), InvalidInput)
    assert str(error) == "There is no stage 'deploy'."
    assert isinstance(error, InvalidInput) and error.hint == f"Stages: {', '.join(STAGES)}."


def test_logs_of_a_missing_run_exit_2_naming_the_run_and_how_to_list_runs(
    shipyard: Shipyard, store: Store, state: Path
) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, None)
    done = shipyard("logs", "9999", "--state", state)
    assert done.returncode == 2
    assert done.stdout == ""
    message, hint = error_lines(done)
    assert message == "There is no run tiny#9999."
    assert hint == "`shipyard status` lists the runs."


def test_logs_print_each_stage_log_with_its_name(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, None)
    logs = state / "runs" / "tiny" / "1" / "logs"
    logs.mkdir(parents=True)
    (logs / "build.log").write_text("training\nsaved\n")
    (logs / "test.log").write_text("2 passed\n")
    both = cli("logs", "1", "--state", state)
    assert both.exit_code == 0, both.output
    assert both.stdout.splitlines() == [
        "build   | training",
        "build   | saved",
        "test    | 2 passed",
    ]
    assert cli("logs", "1", "test", "--state", state).stdout == "test    | 2 passed\n"


def test_rollback_with_nothing_deployed_exits_2_with_a_hint(
    shipyard: Shipyard, store: Store, state: Path
) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    done = shipyard("rollback", "--state", state)
    assert done.returncode == 2
    message, hint = error_lines(done)
    assert message == "There is no previous version kept ready in tiny/production."
    assert "shipyard envs" in hint


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_of_an_orphaned_run_marks_it_cancelled(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, None)
    # Running, but nobody holds its lease: the worker that drove it is gone.
    store.set_run_status("tiny", 1, Status.RUNNING, worker="worker-1@gone")
    result = cli("cancel", "1", "--state", state)
    assert result.exit_code == 0, result.output
    assert "cancel requested for tiny#1" in result.stdout
    run = store.get_run("tiny", 1)
    assert (run.status, run.cancel_requested) == ("cancelled", True)
    assert run.message == "cancelled while no worker was driving it"
    assert run.finished_at is not None
    assert {stage.status for stage in run.stages} == {"skipped"}
    actions = [e.action for e in store.events("tiny#1")]
    assert actions[0] == "run.cancelled" and "run.cancel-requested" in actions


def test_cancel_of_a_driven_run_only_asks_its_driver(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, None)
    store.set_run_status("tiny", 1, Status.RUNNING)
    assert StoreLeases(store).acquire("run:tiny#1", "worker-1@here", ttl=60)  # its driver
    assert cli("cancel", "1", "--state", state).exit_code == 0
    run = store.get_run("tiny", 1)
    assert (run.status, run.cancel_requested) == ("running", True)


def test_cancel_of_a_finished_run_is_a_conflict(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("tiny", "/repos/tiny")
    store.create_run("tiny", "ab" * 20, None)
    store.set_run_status("tiny", 1, Status.PASSED)
    error = failed_with(cli("cancel", "1", "--state", state), Conflict)
    assert "already finished (passed)" in str(error)
    assert store.get_run("tiny", 1).status == "passed"
