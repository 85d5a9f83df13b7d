"""Where vulnerability records come from: an offline OSV database, and OSV's API when reachable.

Machines that run Shipyard are often offline or behind a registry proxy, so the offline
database is the foundation and the API an optional top-up. ``shipyard vulndb import FILE``
reads OSV's PyPI export (``all.zip``: one JSON record per member) or a folder of OSV JSON files
into one SQLite file, indexed by PEP 503-normalised package name, with the import time so that
``shipyard vulndb status`` can say how old the data is. An import replaces the previous
database whole (written beside it, then renamed), so a scan never reads a half-written one.

The default location is ``vulndb/`` in the machine-wide cache (``$SHIPYARD_CACHE`` or
``~/.cache/shipyard``): one import serves every project and state directory on the machine.
``analyze.vulnerabilities.database`` may point elsewhere, at an imported database folder, or
straight at an ``all.zip`` or a folder of JSON records (read into memory at each scan).

The API client asks ``/v1/querybatch`` which advisories affect the exact versions installed,
then fetches each record from ``/v1/vulns/{id}``, so both sources feed the same matching code
(``osv.py``). Any failure to reach it becomes :class:`OsvUnavailable`, one sentence long.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from shipyard.analysis.interface import Distribution
from shipyard.analysis.osv import ECOSYSTEM, normalize
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.paths import resolve_cache_dir

__all__ = [
    "DATABASE_FILE",
    "OSV_API",
    "DatabaseStatus",
    "OfflineDatabase",
    "OsvApi",
    "OsvUnavailable",
    "default_location",
    "import_database",
    "open_database",
]

DATABASE_FILE = "osv.sqlite"
OSV_API = "https://api.osv.dev"
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (id TEXT PRIMARY KEY, modified TEXT, withdrawn INTEGER, body BLOB NOT NULL);
CREATE TABLE packages (name TEXT NOT NULL, record_id TEXT NOT NULL, PRIMARY KEY (name, record_id));
"""


class OsvUnavailable(ShipyardError):
    """OSV's API could not be reached or answered nonsense; the offline data is used instead."""

    status_code = 503


def default_location() -> Path:
    return resolve_cache_dir() / "vulndb"


# --- status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseStatus:
    path: Path
    source: str  # what was imported
    imported_at: datetime  # UTC
    records: int  # PyPI records, withdrawn ones included
    withdrawn: int
    packages: int
    newest: str | None  # the latest `modified` among the records: how fresh the data is
    skipped: list[str] = field(default_factory=list)  # files that were not OSV records

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(UTC)) - self.imported_at

    def age_words(self, now: datetime | None = None) -> str:
        return _age_words(self.age(now))

    def describe(self, now: datetime | None = None) -> str:
        day = self.imported_at.strftime("%Y-%m-%d")
        return (
            f"offline OSV database from {day} ({self.age_words(now)} old, "
            f"{self.records} records for {self.packages} packages)"
        )

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "source": self.source,
            "imported_at": self.imported_at.isoformat(timespec="seconds"),
            "age_seconds": int(self.age(now).total_seconds()),
            "records": self.records,
            "withdrawn": self.withdrawn,
            "packages": self.packages,
            "newest_record": self.newest,
            "skipped": self.skipped,
        }


def _age_words(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 1:
        return "less than an hour"
    if hours < 48:
        return f"{int(hours)} hour{'s' if int(hours) != 1 else ''}"
    return f"{int(hours // 24)} days"


# --- reading sources -----------------------------------------------------------------------


def _raw_records(source: Path) -> Iterator[tuple[str, bytes]]:
    """(where, bytes) of every JSON document in a zip, a folder or one file."""
    if source.is_dir():
        for path in sorted(source.rglob("*.json")):
            yield path.relative_to(source).as_posix(), path.read_bytes()
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for member in archive.namelist():
                if member.endswith(".json"):
                    yield member, archive.read(member)
    elif source.suffix == ".json":
        yield source.name, source.read_bytes()
    else:
        raise InvalidInput(
            f"{source} is neither a zip file, a folder nor a .json file.",
            hint="Give OSV's PyPI export (all.zip) or a folder of OSV JSON records.",
        )


def _records_in(where: str, raw: bytes) -> list[dict[str, Any]]:
    document = json.loads(raw)
    items = document if isinstance(document, list) else [document]
    if not items or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in items):
        raise ValueError("not an OSV record (no `id`)")
    return items


def _pypi_names(record: dict[str, Any]) -> set[str]:
    return {
        normalize(str((entry.get("package") or {}).get("name", "")))
        for entry in record.get("affected") or []
        if (entry.get("package") or {}).get("ecosystem") == ECOSYSTEM
    }


def _fill(connection: sqlite3.Connection, source: Path) -> list[str]:
    """Load every PyPI record of ``source``; return the files that were not records."""
    skipped: list[str] = []
    for where, raw in _raw_records(source):
        try:
            records = _records_in(where, raw)
        except ValueError as error:  # JSONDecodeError is a ValueError
            skipped.append(f"{where}: {str(error).splitlines()[0]}")
            continue
        for record in records:
            _insert(connection, record)
    return skipped


def _insert(connection: sqlite3.Connection, record: dict[str, Any]) -> None:
    names = _pypi_names(record)
    if not names:
        return  # another ecosystem's record: an all.zip of every ecosystem still works
    body = zlib.compress(json.dumps(record, separators=(",", ":")).encode())
    connection.execute(
        "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
        (record["id"], record.get("modified"), 1 if record.get("withdrawn") else 0, body),
    )
    connection.executemany(
        "INSERT OR IGNORE INTO packages VALUES (?, ?)", [(n, record["id"]) for n in names]
    )


def _write_meta(
    connection: sqlite3.Connection, source: Path, when: datetime, skipped: list[str]
) -> None:
    meta = {"source": str(source), "imported_at": when.isoformat(), "skipped": json.dumps(skipped)}
    connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())


# --- the database --------------------------------------------------------------------------


class OfflineDatabase:
    """Read access to an imported database, or to a zip or folder read into memory."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path

    def records_for(self, names: Iterable[str]) -> list[dict[str, Any]]:
        wanted = sorted({normalize(name) for name in names})
        rows: list[tuple[bytes]] = []
        for start in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self._connection.execute(
                "SELECT DISTINCT r.body FROM records r JOIN packages p ON p.record_id = r.id "
                f"WHERE p.name IN ({marks})",  # only '?' marks are formatted in
                chunk,
            ).fetchall()
        records: list[dict[str, Any]] = [json.loads(zlib.decompress(body)) for (body,) in rows]
        return records

    def status(self) -> DatabaseStatus:
        meta = dict(self._connection.execute("SELECT key, value FROM meta").fetchall())
        count, withdrawn, newest = self._connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(withdrawn), 0), MAX(modified) FROM records"
        ).fetchone()
        (packages,) = self._connection.execute(
            "SELECT COUNT(DISTINCT name) FROM packages"
        ).fetchone()
        return DatabaseStatus(
            path=self.path,
            source=meta.get("source", "?"),
            imported_at=datetime.fromisoformat(meta["imported_at"]),
            records=int(count),
            withdrawn=int(withdrawn),
            packages=int(packages),
            newest=newest,
            skipped=json.loads(meta.get("skipped", "[]")),
        )

    def close(self) -> None:
        self._connection.close()


def import_database(source: Path, location: Path, *, now: datetime | None = None) -> DatabaseStatus:
    """Replace the database at ``location`` with the PyPI records of ``source``."""
    source = source.expanduser().resolve()
    if not source.exists():
        raise NotFound(
            f"{source} does not exist.",
            hint="Download OSV's PyPI export (all.zip) on a machine with access and copy it here.",
        )
    location.mkdir(parents=True, exist_ok=True)
    final = location / DATABASE_FILE
    scratch = location / f".{DATABASE_FILE}.{os.getpid()}.tmp"
    scratch.unlink(missing_ok=True)
    connection = sqlite3.connect(scratch)
    try:
        connection.executescript(_SCHEMA)
        skipped = _fill(connection, source)
        _write_meta(connection, source, now or datetime.now(UTC), skipped)
        connection.commit()
        database = OfflineDatabase(connection, final)
        status = database.status()
        if status.records == 0:
            raise InvalidInput(
                f"{source} holds no OSV records for the PyPI ecosystem"
                + (f" ({len(skipped)} files were not OSV records)" if skipped else "")
                + ".",
                hint="Use OSV's PyPI export (all.zip) or JSON files in the OSV format.",
            )
    except BaseException:
        connection.close()
        scratch.unlink(missing_ok=True)
        raise
    connection.close()
    os.replace(scratch, final)
    return status


def open_database(path: Path, *, now: datetime | None = None) -> OfflineDatabase | None:
    """The database at ``path``: an imported one, or a zip or folder of records; None if absent."""
    imported = path / DATABASE_FILE if path.is_dir() else path
    if imported.is_file() and imported.suffix == ".sqlite":
        connection = sqlite3.connect(f"file:{imported}?mode=ro", uri=True)
        return OfflineDatabase(connection, imported)
    if not path.exists():
        return None
    connection = sqlite3.connect(":memory:")
    connection.executescript(_SCHEMA)
    skipped = _fill(connection, path)
    when = datetime.fromtimestamp(path.stat().st_mtime, UTC)  # the data's own age
    _write_meta(connection, path, when, skipped)
    return OfflineDatabase(connection, path)


# --- OSV's API -----------------------------------------------------------------------------


class OsvApi:
    """A small client of OSV's API; ``transport`` lets tests answer without a network."""

    def __init__(
        self,
        base_url: str = OSV_API,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, follow_redirects=True
        )

    def records_for(self, distributions: Sequence[Distribution]) -> list[dict[str, Any]]:
        ids: set[str] = set()
        for start in range(0, len(distributions), 1000):  # querybatch takes 1000 at most
            ids |= self._affecting(distributions[start : start + 1000])
        return [self._get(f"/v1/vulns/{vuln_id}") for vuln_id in sorted(ids)]

    def close(self) -> None:
        self._client.close()

    def _affecting(self, distributions: Sequence[Distribution]) -> set[str]:
        queries: list[dict[str, Any]] = [
            {"package": {"name": d.name, "ecosystem": ECOSYSTEM}, "version": d.version}
            for d in distributions
        ]
        ids: set[str] = set()
        for _ in range(20):  # pages: bounded, in case a server keeps sending tokens
            results = self._post("/v1/querybatch", {"queries": queries}).get("results") or []
            again = []
            for query, result in zip(queries, results, strict=False):
                ids |= {str(v["id"]) for v in result.get("vulns") or [] if "id" in v}
                if result.get("next_page_token"):
                    again.append({**query, "page_token": result["next_page_token"]})
            if not again:
                break
            queries = again
        return ids

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, body)

    def _get(self, path: str) -> dict[str, Any]:
        return self._call("GET", path, None)

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, json=body)
            response.raise_for_status()
            answer = response.json()
        except httpx.HTTPStatusError as error:
            raise OsvUnavailable(
                f"OSV's API answered {error.response.status_code} to {method} {path}."
            ) from error
        except httpx.HTTPError as error:
            raise OsvUnavailable(
                f"Could not reach OSV's API at {self.base_url} ({type(error).__name__})."
            ) from error
        except ValueError as error:
            raise OsvUnavailable(
                f"OSV's API answered {method} {path} with invalid JSON."
            ) from error
        if not isinstance(answer, dict):
            raise OsvUnavailable(f"OSV's API answered {method} {path} with unexpected JSON.")
        return answer
