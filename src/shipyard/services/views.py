"""Read models: what services return and the API sends (pydantic, so they are the OpenAPI
schemas too). Built from the store's plain rows here and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from shipyard.domain import Status
from shipyard.store.glance import Glance
from shipyard.store.records import RunRecord, no_such_run

__all__ = ["LogChunk", "RecordSource", "RunReads", "RunView", "RunsAtAGlance", "StageView"]


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class StageView(View):
    name: str
    status: Status
    message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    summary: dict[str, Any]

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> StageView:
        return cls(
            name=row["name"],
            status=Status(row["status"]),
            message=row["message"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            summary=row["summary"] or {},
        )


class RunView(View):
    project: str
    number: int
    sha: str
    ref: str | None
    status: Status
    message: str | None
    trigger: str
    actor: str
    worker: str | None
    resume_from: str | None  # where a parked or re-queued run starts again
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    stages: list[StageView]

    @classmethod
    def of_record(cls, record: RunRecord) -> RunView:
        """From the store's plain rows (``Store.run_records``), the API's read path."""
        run = record.run
        return cls(
            project=run["project"],
            number=run["number"],
            sha=run["sha"],
            ref=run["ref"],
            status=Status(run["status"]),
            message=run["message"],
            trigger=run["trigger"],
            actor=run["actor"],
            worker=run["worker"],
            resume_from=run["resume_from"],
            created_at=run["created_at"],
            started_at=run["started_at"],
            finished_at=run["finished_at"],
            stages=[StageView.of_row(stage) for stage in record.stages],
        )


class RecordSource(Protocol):
    """Reads run records: ``Store.run_records``, or ``Glance.run_records`` (same statements)."""

    def __call__(
        self, project: str | None = None, *, number: int | None = None, limit: int = 20
    ) -> list[RunRecord]: ...


class RunReads:
    """Runs as views from a source of records: the one way a run view is read, for ``Runs``
    over the store and for ``shipyard status`` over a glance."""

    def __init__(self, records: RecordSource) -> None:
        self.records = records

    def get(self, project: str, number: int | None = None) -> RunView:
        """One run; the newest of the project when ``number`` is None."""
        found = self.records(project, number=number, limit=1)
        if not found:
            raise no_such_run(project, number)
        return RunView.of_record(found[0])

    def list(self, project: str | None = None, limit: int = 20) -> list[RunView]:
        return [RunView.of_record(record) for record in self.records(project, limit=limit)]


class RunsAtAGlance:
    """What ``shipyard status`` reads from a glance at the store (``store/glance.py``)."""

    def __init__(self, glance: Glance) -> None:
        self.runs = RunReads(glance.run_records)
        self.project_names = glance.project_names


class LogChunk(View):
    """A piece of a stage's log: ``text`` up to byte ``offset`` (ask again from there)."""

    text: str
    offset: int
    finished: bool  # the stage is over and the log has been read to its end
