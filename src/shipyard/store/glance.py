"""A read-only glance at a state's runs through Python's own ``sqlite3``: what ``shipyard
status`` reads.

Opening the store imports SQLAlchemy and declares the ORM classes: more than half a second on
a small machine, several times the rest of ``shipyard status``. When the state's database is
SQLite at the newest schema revision, the runs are read here instead, read-only, with the
statements of ``store/records.py`` that ``Store.run_records`` runs too, so both give the same
records. Anything else (no database yet, a schema to migrate, a database that will not open
read-only) gives no glance, and the command opens the store as every other command does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from shipyard.store.records import RunRecord, read_run_records
from shipyard.store.revisions import head_revision

__all__ = ["Glance"]


class Glance:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @classmethod
    def open(cls, database: Path) -> Glance | None:
        """A glance at the SQLite file ``database``; None when the store must be opened."""
        if not database.is_file():
            return None
        try:
            connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return None
        connection.row_factory = sqlite3.Row
        glance = cls(connection)
        if glance._revision() != head_revision():
            glance.close()
            return None
        return glance

    def run_records(
        self, project: str | None = None, *, number: int | None = None, limit: int = 20
    ) -> list[RunRecord]:
        return read_run_records(self._fetch, project, number=number, limit=limit)

    def project_names(self) -> list[str]:
        return [row["name"] for row in self._fetch("SELECT name FROM projects ORDER BY name", {})]

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Glance:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return [dict(row) for row in self._connection.execute(sql, dict(params))]

    def _revision(self) -> str | None:
        try:
            rows = self._fetch("SELECT version_num FROM alembic_version", {})
        except sqlite3.Error:  # no such table: a database Alembic never touched
            return None
        return str(rows[0]["version_num"]) if rows else None
