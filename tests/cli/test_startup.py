"""The CLI starts without its heavy libraries, and never makes a state directory by accident.

Speed itself is measured by ``benchmarks/cli.py``; what the tests hold is its cause: which
modules a command imports (``python -X importtime`` lists every one), and that the store
skips Alembic when the schema is current.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from typer.testing import Result

from gitrepos import make_repo
from servers import clean_env
from shipyard import __version__
from shipyard.errors import NotFound
from shipyard.paths import StateDir
from shipyard.store import Store
from shipyard.store.store import MIGRATIONS, head_revision, schema_revision

Cli = Callable[..., Result]
Shipyard = Callable[..., subprocess.CompletedProcess[str]]

# None of these is needed to parse arguments or print help. (pydantic is not here: typer itself
# coerces a subcommand's options with it.)
HEAVY = (
    "scipy",
    "sqlalchemy",
    "numpy",
    "sklearn",
    "pandas",
    "httpx",
    "fastapi",
    "uvicorn",
    "alembic",
    "cryptography",
    "shipyard.services",
    "shipyard.store",
    "shipyard.pipeline",
)
# `shipyard status` on a current SQLite state reads it through sqlite3 (store/glance.py) and
# prints views (pydantic): nothing else.
NOT_FOR_STATUS = (
    *(name for name in HEAVY if not name.startswith("shipyard.")),
    "shipyard.adapters",
    "shipyard.store.store",
    "shipyard.store.models",
    "shipyard.pipeline",
)


def imported_by(args: list[str], cwd: Path, **env: str) -> set[str]:
    """The modules ``python -m shipyard ARGS`` imports (from ``-X importtime``'s report)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "shipyard", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # [0] is the header


def top_level(modules: set[str], heavy: tuple[str, ...]) -> set[str]:
    return {name for name in heavy if any(m == name or m.startswith(f"{name}.") for m in modules)}


@pytest.mark.parametrize("args", [["--help"], ["status", "--help"], ["artifacts", "--help"]])
def test_help_imports_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    modules = imported_by(args, tmp_path)
    assert "shipyard.cli.app" in modules  # the report covers the CLI, so absence means something
    assert top_level(modules, HEAVY) == set()


def test_version_answers_before_the_commands_are_imported(tmp_path: Path) -> None:
    modules = imported_by(["--version"], tmp_path)
    assert "shipyard.cli" in modules
    assert "shipyard.cli.app" not in modules
    assert "typer" not in modules


def test_version_prints_the_package_version(shipyard: Shipyard) -> None:
    done = shipyard("--version")
    assert done.returncode == 0
    assert done.stdout == f"shipyard {__version__}\n"


def test_version_is_an_option_of_the_typer_app_too(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"shipyard {__version__}"


def test_status_reads_a_current_state_without_sqlalchemy(tmp_path: Path) -> None:
    state = tmp_path / "state"
    Store(StateDir(state).ensure().database_url).close()  # migrated: nothing to do but read
    modules = imported_by(["status", "--state", str(state)], tmp_path)
    assert "shipyard.store.glance" in modules
    assert top_level(modules, NOT_FOR_STATUS) == set()


# -- a state directory only where the user made one ---------------------------------------------


def no_state_error(cli: Cli, *args: str | Path) -> NotFound:
    result = cli(*args)
    assert isinstance(result.exception, NotFound), result.output
    return result.exception


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["logs", "1"],
        ["envs"],
        ["artifacts"],
        ["down"],
        ["token", "list"],
        ["rollout", "status"],
        ["approvals"],
    ],
    ids=" ".join,
)
def test_a_command_in_a_folder_without_state_says_there_is_none(
    cli: Cli, tmp_path: Path, args: list[str]
) -> None:
    error = no_state_error(cli, *args)
    assert str(error) == (
        f"There is no Shipyard state in {tmp_path} (looked for .shipyard/ here and in parent "
        "folders; SHIPYARD_STATE unset)."
    )
    assert error.hint is not None and "--state" in error.hint and "shipyard run" in error.hint
    assert not (tmp_path / ".shipyard").exists()


def test_a_state_named_by_state_that_does_not_exist_is_not_created(
    cli: Cli, tmp_path: Path
) -> None:
    error = no_state_error(cli, "status", "--state", tmp_path / "typo")
    assert f"no Shipyard state in {tmp_path / 'typo'} (from --state" in str(error)
    assert not (tmp_path / "typo").exists()


def test_the_user_sees_the_message_and_exit_code_2(shipyard: Shipyard, tmp_path: Path) -> None:
    done = shipyard("status")
    assert done.returncode == 2
    assert "error: There is no Shipyard state in" in " ".join(done.stderr.split())
    assert "next: Run `shipyard init` then `shipyard run`" in " ".join(done.stderr.split())


def test_a_command_in_a_subfolder_finds_the_state_of_a_parent(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(StateDir(tmp_path / ".shipyard").ensure().database_url).close()
    inner = tmp_path / "src" / "deep"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "[]"
    assert not (inner / ".shipyard").exists()


def test_commands_that_set_shipyard_up_create_the_state(cli: Cli, tmp_path: Path) -> None:
    result = cli("artifacts", "policy", "release")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".shipyard" / "shipyard.db").is_file()


def test_run_creates_the_state_beside_the_project(shipyard: Shipyard, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj", {"README.md": "no config\n"})
    done = shipyard("run", repo, "--detach")
    assert "has no shipyard.yaml" in " ".join(done.stderr.split())  # refused after opening
    assert (tmp_path / ".shipyard" / "shipyard.db").is_file()


# -- the store opens without Alembic when the schema is current ---------------------------------


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_new_database_is_migrated_to_the_head(tmp_path: Path) -> None:
    store = Store(StateDir(tmp_path).ensure().database_url)
    try:
        assert schema_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_a_database_behind_the_head_is_migrated_on_open(tmp_path: Path) -> None:
    from alembic import command

    url = StateDir(tmp_path).ensure().database_url
    command.upgrade(alembic_config(url), "0005")  # as an older Shipyard left it
    store = Store(url)
    try:
        assert schema_revision(store.engine) == head_revision()
        with store.engine.connect() as connection:
            names = connection.exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
        assert "ix_events_at" in names
    finally:
        store.close()
