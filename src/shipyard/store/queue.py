"""The run queue's queries: which runs wait for a worker, and moving runs in and out of it.

Who drives a run is decided by its lease (``run:<project>#<number>``), not here; these
queries only change a run's row once its lease is held, each in one transaction that checks
the status it expects, so a run is never moved twice by two workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from shipyard.domain import STAGES, Status
from shipyard.store.models import Project, Run, StageRun, utcnow
from shipyard.store.store import Store

__all__ = ["QueuedRun", "RunQueue"]


@dataclass(frozen=True)
class QueuedRun:
    id: int
    project: str
    number: int
    status: Status
    worker: str | None
    resume_from: str | None
    message: str | None


class RunQueue:
    def __init__(self, store: Store) -> None:
        self.store = store

    def runs(self, status: Status, project: str | None = None) -> list[QueuedRun]:
        """Runs in ``status``, oldest first (the order workers take them in)."""
        with self.store.session() as s:
            query = (
                select(Run, Project.name)
                .join(Project)
                .where(Run.status == status.value)
                .order_by(Run.created_at, Run.id)
            )
            if project is not None:
                query = query.where(Project.name == project)
            return [
                QueuedRun(
                    run.id, name, run.number, status, run.worker, run.resume_from, run.message
                )
                for run, name in s.execute(query)
            ]

    def take(self, project: str, number: int, worker: str) -> bool:
        """QUEUED -> RUNNING by ``worker`` (which holds the run's lease); False if not queued."""
        with self.store.session() as s:
            run = Store._run(s, project, number)
            if run.status != Status.QUEUED.value:
                return False
            run.status, run.worker, run.message = Status.RUNNING.value, worker, None
            run.started_at = run.started_at or utcnow()
            Store.record(s, "run.running", f"{project}#{number}", worker=worker)
            return True

    def put_back(
        self,
        project: str,
        number: int,
        from_stage: str,
        *,
        expect: Sequence[Status],
        why: str,
    ) -> bool:
        """Re-queue a run in one of ``expect`` to start again at ``from_stage``.

        That stage and the ones after it are queued again (a stage interrupted while running
        keeps ``why`` as its message); False when the run is no longer in ``expect``.
        """
        with self.store.session() as s:
            run = Store._run(s, project, number)
            if Status(run.status) not in expect:
                return False
            run.status, run.resume_from, run.worker = Status.QUEUED.value, from_stage, None
            run.message = why
            later = STAGES[STAGES.index(from_stage) :]
            for row in s.scalars(select(StageRun).where(StageRun.run_id == run.id)):
                if row.name in later and row.status != Status.QUEUED.value:
                    row.status, row.message = Status.QUEUED.value, why
                    row.started_at = row.finished_at = None
            Store.record(s, "run.queued", f"{project}#{number}", resume_from=from_stage, why=why)
            return True

    def park(self, project: str, number: int, stage: str, message: str) -> None:
        """The run waits (for a person or its deploy turn), holding no worker."""
        with self.store.session() as s:
            run = Store._run(s, project, number)
            run.status, run.resume_from, run.worker = Status.WAITING.value, stage, None
            run.message = message
            Store.record(s, "run.waiting", f"{project}#{number}", stage=stage, message=message)

    def running_stage(self, project: str, number: int) -> str:
        """The stage a run was in: the first one running, else the first not finished."""
        stages = self.store.get_run(project, number).stages
        for row in stages:
            if row.status == Status.RUNNING.value:
                return row.name
        unfinished = (row.name for row in stages if not Status(row.status).finished)
        return next(unfinished, STAGES[-1])
