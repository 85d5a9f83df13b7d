"""Runs as plain records: the one query behind every listing of runs, free of SQLAlchemy.

``Store.run_records`` (the API, the dashboard, the services) runs these statements through its
SQLAlchemy session; ``store/glance.py`` runs the very same statements through Python's own
``sqlite3``, so that ``shipyard status`` answers without importing SQLAlchemy and declaring the
ORM classes, which cost more than half a second here. One text of the query, one decoding of
its values, whichever driver executes it. The statements are plain SQL with named parameters,
which SQLite, PostgreSQL and SQLAlchemy's ``text()`` all take.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from shipyard.errors import NotFound

__all__ = ["Fetch", "RunRecord", "no_such_run", "read_run_records"]

Row = Mapping[str, Any]
# Runs ``sql`` with its named ``params``; the rows as mappings of column name to value.
Fetch = Callable[[str, Mapping[str, Any]], Sequence[Row]]

RUNS = """
SELECT projects.name AS project, runs.id, runs.number, runs.sha, runs.ref, runs.status,
       runs.message, runs.trigger, runs.actor, runs.worker, runs.resume_from,
       runs.created_at, runs.started_at, runs.finished_at
FROM runs JOIN projects ON runs.project_id = projects.id
"""
STAGES = """
SELECT run_id, name, status, message, started_at, finished_at, summary
FROM stage_runs WHERE run_id IN ({ids}) ORDER BY run_id, position
"""
_TIMES = ("created_at", "started_at", "finished_at")
_JSON = ("summary",)


class RunRecord(NamedTuple):
    """A run's row and its stages' rows, in order (the columns of ``RUNS`` and ``STAGES``)."""

    run: Row
    stages: list[Row]


def no_such_run(project: str, number: int | None) -> NotFound:
    what = f"run {project}#{number}" if number is not None else f"any run of project {project!r}"
    return NotFound(f"There is no {what}.", hint="`shipyard status` lists the runs.")


def read_run_records(
    fetch: Fetch, project: str | None = None, *, number: int | None = None, limit: int = 20
) -> list[RunRecord]:
    """Runs newest first, with their stages: of ``project``, or one ``number`` of it."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if project:
        where.append("projects.name = :project")
        params["project"] = project
    if number is not None:
        where.append("runs.number = :number")
        params["number"] = number
    # Newest first by what an index holds, not by sorting the table: run numbers grow within
    # a project, ids as runs are created.
    order = "runs.number DESC" if project else "runs.id DESC"
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    runs = [_decoded(row) for row in fetch(f"{RUNS}{clause}ORDER BY {order} LIMIT :limit", params)]
    ids = {f"id{i}": run["id"] for i, run in enumerate(runs)}
    by_run: dict[int, list[Row]] = {run["id"]: [] for run in runs}
    if ids:
        sql = STAGES.format(ids=", ".join(f":{name}" for name in ids))
        for stage in fetch(sql, ids):
            by_run[stage["run_id"]].append(_decoded(stage))
    return [RunRecord(run, by_run[run["id"]]) for run in runs]


def _decoded(row: Row) -> Row:
    """Values as the ORM's column types give them, whatever the driver returned.

    SQLite keeps times as ISO text and JSON as text; PostgreSQL's driver decodes both itself.
    """
    found = dict(row)
    for name in _TIMES:
        if isinstance(found.get(name), str):
            found[name] = datetime.fromisoformat(found[name])
    for name in _JSON:
        if isinstance(found.get(name), str | bytes):
            found[name] = json.loads(found[name])
    return found
