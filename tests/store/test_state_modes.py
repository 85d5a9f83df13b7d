"""The state directory is private: 0700 folders, 0600 files, whatever the umask, old ones tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.environments.migrations import apply_migrations, resolve_database_url
from shipyard.wiring import open_adapters


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The widest umask there is, so that only explicit modes can keep the state private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_a_new_state_and_its_database_are_private(tmp_path: Path) -> None:
    adapters = open_adapters(tmp_path / "state")
    try:
        adapters.store.ensure_project("iris", "/repos/iris")
        adapters.store.create_run("iris", "ab12cd34" * 5, "main")
        database = adapters.state.database
        written = [database, *database.parent.glob(f"{database.name}-*")]
        assert {mode(path) for path in written} == {0o600}
        assert mode(adapters.state.root) == mode(adapters.state.blobs) == 0o700
    finally:
        adapters.store.close()


@pytest.mark.usefixtures("open_umask")
def test_an_environment_sqlite_database_is_created_private(tmp_path: Path) -> None:
    url = resolve_database_url("sqlite:///{state}/app.db", tmp_path / "state" / "env")
    assert url == f"sqlite:///{tmp_path}/state/env/app.db"
    assert mode(tmp_path / "state" / "env") == 0o700
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_create.sql").write_text("CREATE TABLE seen (id INTEGER);\n")
    assert apply_migrations(url, migrations).applied == ["0001_create.sql"]
    assert {mode(path) for path in (tmp_path / "state" / "env").iterdir()} == {0o600}
    assert resolve_database_url("postgresql://db/app", tmp_path / "x") == "postgresql://db/app"
    assert not (tmp_path / "x").exists()


def test_a_state_directory_left_open_is_tightened_when_opened(tmp_path: Path) -> None:
    root = tmp_path / "state"
    logs = root / "runs" / "iris" / "1" / "logs"
    logs.mkdir(parents=True)
    (logs / "build.log").write_text("output\n")
    (root / "shipyard.db").write_bytes(b"")
    script = root / "environments" / "iris" / "production" / "deployments" / "1" / "run.sh"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    os.symlink("run.sh", script.parent / "link.sh")
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() or path == script else 0o666)
    open_adapters(root).store.close()
    assert mode(root) == mode(logs) == mode(script.parent) == 0o700
    assert mode(logs / "build.log") == mode(root / "shipyard.db") == 0o600
    assert mode(script) == 0o700  # the owner keeps the exec bit
    assert (script.parent / "link.sh").is_symlink()
