"""Project SQL migrations against a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from shipyard.environments.migrations import (
    MigrationResult,
    apply_migrations,
    resolve_database_url,
    split_sqlite_statements,
)
from shipyard.errors import Conflict, InvalidInput, StageFailed

CREATE_LOG = """-- The service logs predictions here; this ; is in a comment, no statement end.
CREATE TABLE predictions_log (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL DEFAULT 'a;b'
);
CREATE INDEX predictions_log_label ON predictions_log (label);
"""
ADD_COLUMN = "ALTER TABLE predictions_log ADD COLUMN model_version TEXT;\n"
TRIGGER = """CREATE TABLE audit (label TEXT);
CREATE TRIGGER log_audit AFTER INSERT ON predictions_log BEGIN
    INSERT INTO audit (label) VALUES (new.label);
END;
INSERT INTO predictions_log (label) VALUES ('x')
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_create_log.sql").write_text(CREATE_LOG)
    (migrations / "README.md").write_text("not a migration, ignored\n")
    return migrations


@pytest.fixture
def url(tmp_path: Path) -> str:
    return resolve_database_url("sqlite:///{state}/app.db", tmp_path / "env" / "staging")


def tables(url: str) -> set[str]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        return {name for (name,) in rows}


def tracked(url: str) -> list[str]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return [
            name for (name,) in db.execute("SELECT name FROM shipyard_migrations ORDER BY name")
        ]


def test_resolve_database_url_creates_the_state_folder(tmp_path: Path) -> None:
    url = resolve_database_url("sqlite:///{state}/app.db", tmp_path / "a" / "b")
    assert url == f"sqlite:///{(tmp_path / 'a' / 'b').resolve().as_posix()}/app.db"
    assert (tmp_path / "a" / "b").is_dir()
    assert resolve_database_url("postgresql://db/app", tmp_path / "c") == "postgresql://db/app"
    assert not (tmp_path / "c").exists()


def test_applies_once_then_only_new_files(folder: Path, url: str) -> None:
    first = apply_migrations(url, folder)
    assert first == MigrationResult(applied=["0001_create_log.sql"], already_applied=[])
    assert {"predictions_log", "shipyard_migrations"} <= tables(url)

    second = apply_migrations(url, folder)
    assert second == MigrationResult(applied=[], already_applied=["0001_create_log.sql"])

    (folder / "0002_add_version.sql").write_text(ADD_COLUMN)
    third = apply_migrations(url, folder)
    assert third.applied == ["0002_add_version.sql"]
    assert third.already_applied == ["0001_create_log.sql"]
    assert tracked(url) == ["0001_create_log.sql", "0002_add_version.sql"]


def test_orders_by_number_not_by_text(folder: Path, url: str) -> None:
    (folder / "10_second.sql").write_text("ALTER TABLE predictions_log ADD COLUMN b TEXT;")
    (folder / "2_first.sql").write_text("ALTER TABLE predictions_log ADD COLUMN a TEXT;")
    result = apply_migrations(url, folder)
    assert result.applied == ["0001_create_log.sql", "2_first.sql", "10_second.sql"]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(predictions_log)")]
    assert columns[-2:] == ["a", "b"]


def test_triggers_and_a_last_statement_without_semicolon(folder: Path, url: str) -> None:
    (folder / "0002_trigger.sql").write_text(TRIGGER)
    apply_migrations(url, folder)
    assert {"audit", "log_audit"} <= tables(url)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        assert db.execute("SELECT label FROM audit").fetchall() == [("x",)]


def test_changed_applied_file_is_a_conflict(folder: Path, url: str) -> None:
    apply_migrations(url, folder)
    (folder / "0001_create_log.sql").write_text(CREATE_LOG + "-- an edit\n")
    with pytest.raises(Conflict) as caught:
        apply_migrations(url, folder)
    assert (
        "migration 0001_create_log.sql was changed after it was applied to" in caught.value.message
    )
    assert "app.db" in caught.value.message and "checksum" in caught.value.message
    assert caught.value.hint is not None and "new migration" in caught.value.hint


def test_crlf_checkout_of_the_same_file_is_no_change(folder: Path, url: str) -> None:
    apply_migrations(url, folder)
    (folder / "0001_create_log.sql").write_bytes(CREATE_LOG.replace("\n", "\r\n").encode())
    assert apply_migrations(url, folder).already_applied == ["0001_create_log.sql"]


def test_failing_file_leaves_nothing_of_itself(folder: Path, url: str) -> None:
    (folder / "0002_half.sql").write_text(
        "CREATE TABLE half_done (id INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    (folder / "0003_later.sql").write_text("CREATE TABLE later (id INTEGER);")
    with pytest.raises(StageFailed) as caught:
        apply_migrations(url, folder)
    message = caught.value.message
    assert "migration 0002_half.sql failed on" in message
    assert "no such table: no_such_table" in message
    assert "0001_create_log.sql applied before it" in message
    assert "half_done" not in tables(url) and "later" not in tables(url)
    assert tracked(url) == ["0001_create_log.sql"]

    (folder / "0002_half.sql").write_text("CREATE TABLE half_done (id INTEGER);\n")
    fixed = apply_migrations(url, folder)
    assert fixed.applied == ["0002_half.sql", "0003_later.sql"]


def test_own_transaction_control_is_refused_before_running(folder: Path, url: str) -> None:
    (folder / "0002_tx.sql").write_text("BEGIN;\nCREATE TABLE t (id INTEGER);\nCOMMIT;\n")
    with pytest.raises(InvalidInput, match=r"0002_tx\.sql has its own BEGIN"):
        apply_migrations(url, folder)
    assert "t" not in tables(url)
    assert tracked(url) == ["0001_create_log.sql"]


@pytest.mark.parametrize("name", ["create.sql", "v1_create.sql", "0001.sql", "0001_bad name.sql"])
def test_bad_file_names(folder: Path, url: str, name: str) -> None:
    (folder / name).write_text("SELECT 1;")
    with pytest.raises(InvalidInput, match=r"is not NUMBER_NAME\.sql") as caught:
        apply_migrations(url, folder)
    assert name in caught.value.message
    assert not Path(url.removeprefix("sqlite:///")).exists()  # refused before touching the db


def test_missing_folder_and_bad_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        apply_migrations(url, tmp_path / "nowhere")
    (tmp_path / "m").mkdir()
    with pytest.raises(InvalidInput, match="is not a database URL"):
        apply_migrations("not a url", tmp_path / "m")
    with pytest.raises(InvalidInput, match="still holds"):
        apply_migrations("sqlite:///{state}/x.db", tmp_path / "m")
    with pytest.raises(InvalidInput, match="folder of database"):
        apply_migrations(f"sqlite:///{tmp_path}/missing/x.db", tmp_path / "m")


def test_concurrent_deployers_apply_each_file_once(folder: Path, url: str) -> None:
    for number in range(2, 12):
        (folder / f"{number:04d}_t{number}.sql").write_text(f"CREATE TABLE t{number} (id INTEGER);")
    results: list[MigrationResult] = []
    errors: list[BaseException] = []

    def deploy() -> None:
        try:
            results.append(apply_migrations(url, folder))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=deploy) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    applied = sorted(name for result in results for name in result.applied)
    assert applied == sorted(p.name for p in folder.glob("*.sql"))  # each exactly once overall
    assert len(tracked(url)) == 11


def test_split_keeps_strings_comments_and_triggers_whole() -> None:
    statements = list(split_sqlite_statements(CREATE_LOG + TRIGGER))
    assert len(statements) == 5
    assert "'a;b'" in statements[0]
    assert statements[3].rstrip().endswith("END;")
