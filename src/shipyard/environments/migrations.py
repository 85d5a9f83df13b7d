"""The project's SQL migrations, applied to an environment's database.

A project keeps ``*.sql`` files such as ``0001_create_log.sql`` in a folder; each environment
applies the ones it has not applied yet, in the order of their number. The database remembers
what it applied in ``shipyard_migrations`` (name, checksum, time), written in the same
transaction as the migration itself, so a file is either applied and recorded or neither:
a failing file leaves nothing half-applied and is retried once fixed.

An applied file is history: editing it afterwards would make environments disagree about
their schema without anyone noticing, so a changed checksum is a :class:`Conflict` and the fix
is a new migration.

Each kind of database is a :class:`MigrationTarget` (three methods). SQLite is driven through
:mod:`sqlite3` directly, because its ``executescript`` commits on its own and so cannot keep a
file atomic; every other URL goes through SQLAlchemy and the driver's own multi-statement
execution. A dedicated PostgreSQL target (say, to serialise concurrent deployers with
``pg_advisory_xact_lock``) is one more class in :data:`TARGETS`.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from shipyard.errors import Conflict, InvalidInput, StageFailed
from shipyard.paths import private_dir, private_file

__all__ = [
    "MIGRATION_NAME",
    "TARGETS",
    "DatabaseRefused",
    "Migration",
    "MigrationResult",
    "MigrationTarget",
    "SQLAlchemyTarget",
    "SQLiteTarget",
    "apply_migrations",
    "read_migrations",
    "resolve_database_url",
    "split_sqlite_statements",
]

MIGRATION_NAME = re.compile(r"^\d+[_-][A-Za-z0-9_.-]+\.sql$")
STATE_PLACEHOLDER = "{state}"

_CREATE_TRACKING = (
    "CREATE TABLE IF NOT EXISTS shipyard_migrations ("
    "name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
_SELECT_APPLIED = "SELECT name, checksum FROM shipyard_migrations"
_INSERT_APPLIED = "INSERT INTO shipyard_migrations (name, checksum, applied_at) VALUES ({})"


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str
    checksum: str  # sha256 of the text with \n line endings, so a CRLF checkout is no change


@dataclass(frozen=True)
class MigrationResult:
    applied: list[str]
    already_applied: list[str]


class DatabaseRefused(Exception):
    """A target's translation of its driver's error while applying a file."""


class MigrationTarget(Protocol):
    """One database that migrations are applied to.

    ``apply`` raises :class:`DatabaseRefused` when the database rejects the file, after rolling
    back everything the file did.
    """

    def applied(self) -> dict[str, str]:
        """Name -> checksum of every migration this database recorded."""

    def apply(self, migration: Migration) -> bool:
        """Apply and record it in one transaction; False if it was recorded meanwhile."""

    def close(self) -> None: ...


def resolve_database_url(template: str, environment_dir: Path) -> str:
    """Put the environment's state folder (created here, 0700) where the URL says ``{state}``."""
    if STATE_PLACEHOLDER not in template:
        return template
    folder = private_dir(environment_dir.expanduser().resolve())
    return template.replace(STATE_PLACEHOLDER, folder.as_posix())


def apply_migrations(database_url: str, folder: Path) -> MigrationResult:
    """Apply the folder's migrations that the database has not applied yet, in order."""
    migrations = read_migrations(folder)
    url = _parse_url(database_url)
    target = _open_target(url)
    try:
        return _apply_all(target, migrations, _describe(url))
    finally:
        target.close()


def read_migrations(folder: Path) -> list[Migration]:
    """The folder's ``*.sql`` files, checked and ordered by their number, then their name."""
    if not folder.is_dir():
        raise InvalidInput(
            f"migrations folder {folder} does not exist",
            hint="Create it, or fix `migrations:` of the environment in shipyard.yaml.",
        )
    files = [path for path in folder.glob("*.sql") if path.is_file()]
    bad = sorted(path.name for path in files if not MIGRATION_NAME.match(path.name))
    if bad:
        raise InvalidInput(
            f"migration file name {', '.join(bad)} in {folder} is not NUMBER_NAME.sql",
            hint="Name migrations like 0001_create_table.sql: a number, _ or -, then a name.",
        )
    files.sort(key=lambda path: (_number(path.name), path.name))
    return [_read(path) for path in files]


def _number(name: str) -> int:
    return int(re.split(r"[_-]", name, maxsplit=1)[0])


def _read(path: Path) -> Migration:
    try:
        sql = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"migration {path.name} is not UTF-8 text: {error}") from error
    sql = sql.replace("\r\n", "\n")
    checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
    return Migration(name=path.name, sql=sql, checksum=checksum)


def _apply_all(target: MigrationTarget, migrations: list[Migration], where: str) -> MigrationResult:
    recorded = target.applied()
    applied: list[str] = []
    already: list[str] = []
    for migration in migrations:
        if migration.name in recorded:
            _check_unchanged(migration, recorded[migration.name], where)
            already.append(migration.name)
        elif _apply_one(target, migration, where, applied):
            applied.append(migration.name)
        else:
            already.append(migration.name)  # another deployer applied it a moment ago
    return MigrationResult(applied=applied, already_applied=already)


def _check_unchanged(migration: Migration, recorded: str, where: str) -> None:
    if recorded == migration.checksum:
        return
    raise Conflict(
        f"migration {migration.name} was changed after it was applied to {where} "
        f"(checksum {recorded[:12]} when applied, {migration.checksum[:12]} now)",
        hint="Restore the file as it was and add a new migration with the change instead.",
    )


def _apply_one(
    target: MigrationTarget, migration: Migration, where: str, before: list[str]
) -> bool:
    try:
        return target.apply(migration)
    except DatabaseRefused as error:
        done = f" ({', '.join(before)} applied before it)" if before else ""
        raise StageFailed(
            f"migration {migration.name} failed on {where}: {error}{done}",
            hint="Fix the file and deploy again: nothing of it was applied.",
        ) from error


def _first_line(error: Exception) -> str:
    message = str(getattr(error, "orig", None) or error)
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


# --- URLs -----------------------------------------------------------------------------------


def _parse_url(database_url: str) -> URL:
    if STATE_PLACEHOLDER in database_url:
        raise InvalidInput(
            f"database URL {database_url} still holds {STATE_PLACEHOLDER}",
            hint="Resolve it with resolve_database_url first.",
        )
    try:
        return make_url(database_url)
    except ArgumentError as error:
        raise InvalidInput(
            f"{database_url!r} is not a database URL",
            hint="Write an SQLAlchemy URL such as sqlite:///{state}/app.db or postgresql://host/db.",
        ) from error


def _describe(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def _open_target(url: URL) -> MigrationTarget:
    opener = TARGETS.get(url.get_backend_name(), SQLAlchemyTarget)
    return opener(url)


# --- SQLite ---------------------------------------------------------------------------------


class SQLiteTarget:
    """SQLite through :mod:`sqlite3`, one explicit transaction per file.

    ``BEGIN IMMEDIATE`` takes the write lock before the tracking table is read again, so two
    deployers applying the same folder at once apply each file exactly once.
    """

    def __init__(self, url: URL) -> None:
        path = url.database or ":memory:"
        if path != ":memory:" and not Path(path).parent.is_dir():
            raise InvalidInput(f"the folder of database {path} does not exist")
        if path != ":memory:":
            private_file(Path(path))  # 0600 before SQLite makes it (its -wal and -shm follow)
        try:
            # isolation_level=None: the module starts no transaction of its own; we do, explicitly.
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute(_CREATE_TRACKING)
        except sqlite3.Error as error:
            raise StageFailed(f"could not open database {path}: {error}") from error

    def applied(self) -> dict[str, str]:
        return dict(self._db.execute(_SELECT_APPLIED).fetchall())

    def apply(self, migration: Migration) -> bool:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            recorded = self._db.execute(
                "SELECT 1 FROM shipyard_migrations WHERE name = ?", (migration.name,)
            ).fetchone()
            if recorded is None:
                self._execute_script(migration)
                self._db.execute(_INSERT_APPLIED.format("?, ?, ?"), _row(migration))
        except BaseException as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise DatabaseRefused(_first_line(error)) from error
            raise
        self._db.execute("COMMIT")
        return recorded is None

    def _execute_script(self, migration: Migration) -> None:
        statements = list(split_sqlite_statements(migration.sql))
        _refuse_transaction_control(migration.name, statements)
        for statement in statements:
            self._db.execute(statement)

    def close(self) -> None:
        self._db.close()


def split_sqlite_statements(sql: str) -> Iterator[str]:
    """The script's statements, cut where SQLite itself says a statement is complete.

    That keeps ``;`` inside strings, comments and ``CREATE TRIGGER ... BEGIN ... END`` intact.
    """
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    rest = pending[:-1]  # the last piece got a ";" that the file did not have
    if rest.strip():
        yield rest  # a final statement without ";" runs too; an unfinished one fails loudly


_LEADING_WORD = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(\w+)", re.DOTALL)
_TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "END", "ROLLBACK"}


def _refuse_transaction_control(name: str, statements: list[str]) -> None:
    """A file's own BEGIN/COMMIT would end our transaction and break the all-or-nothing rule."""
    for statement in statements:
        word = _LEADING_WORD.match(statement)
        if word and word.group(1).upper() in _TRANSACTION_CONTROL:
            raise InvalidInput(
                f"migration {name} has its own {word.group(1).upper()} statement",
                hint="Remove BEGIN/COMMIT/ROLLBACK: Shipyard runs each file in one transaction.",
            )


# --- any other database, through SQLAlchemy -------------------------------------------------


class SQLAlchemyTarget:
    """Any database SQLAlchemy reaches, given each file whole to the driver.

    PostgreSQL (psycopg) runs a multi-statement string as one call, inside the transaction;
    DDL there is transactional, so a failing file leaves nothing behind. MySQL commits DDL
    implicitly, so on MySQL a failing file can leave part of itself applied.
    """

    def __init__(self, url: URL) -> None:
        try:
            self._engine = create_engine(url, pool_pre_ping=True)
            self._driver_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
            with self._engine.begin() as connection:
                connection.execute(text(_CREATE_TRACKING))
        except (SQLAlchemyError, ImportError) as error:
            where = url.render_as_string(hide_password=True)
            raise StageFailed(
                f"could not open database {where}: {_first_line(error)}",
                hint="Check the environment's `database:` URL, that the server runs and that "
                "its driver is installed (pip install 'shipyard[postgres]').",
            ) from error

    def applied(self) -> dict[str, str]:
        with self._engine.connect() as connection:
            return {name: checksum for name, checksum in connection.execute(text(_SELECT_APPLIED))}

    def apply(self, migration: Migration) -> bool:
        try:
            with self._engine.begin() as connection:
                return self._apply_in(connection, migration)
        except (SQLAlchemyError, self._driver_error) as error:
            raise DatabaseRefused(_first_line(error)) from error

    def _apply_in(self, connection: Connection, migration: Migration) -> bool:
        recorded = connection.execute(
            text("SELECT 1 FROM shipyard_migrations WHERE name = :name"), {"name": migration.name}
        ).first()
        if recorded is not None:
            return False
        # The driver's own cursor, given no parameters: a `%` in the SQL stays a `%` (through
        # exec_driver_sql psycopg would read it as a placeholder). Same connection, same
        # transaction as the statements around it.
        cursor = connection.connection.cursor()
        try:
            cursor.execute(migration.sql)
        finally:
            cursor.close()
        name, checksum, applied_at = _row(migration)
        connection.execute(
            text(_INSERT_APPLIED.format(":name, :checksum, :applied_at")),
            {"name": name, "checksum": checksum, "applied_at": applied_at},
        )
        return True

    def close(self) -> None:
        self._engine.dispose()


def _row(migration: Migration) -> tuple[str, str, str]:
    return migration.name, migration.checksum, datetime.now(UTC).isoformat(timespec="seconds")


# Backend name (as SQLAlchemy names it) -> target; anything else gets SQLAlchemyTarget.
TARGETS: dict[str, Callable[[URL], MigrationTarget]] = {"sqlite": SQLiteTarget}
