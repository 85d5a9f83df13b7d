"""Read models: what services return and the API sends (pydantic, so they are the OpenAPI
schemas too). Built from the store's plain rows here and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import RowMapping

from shipyard.domain import Status
from shipyard.store.store import RunRecord

__all__ = ["LogChunk", "RunView", "StageView"]


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
    def of_row(cls, row: RowMapping) -> StageView:
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


class LogChunk(View):
    """A piece of a stage's log: ``text`` up to byte ``offset`` (ask again from there)."""

    text: str
    offset: int
    finished: bool  # the stage is over and the log has been read to its end
