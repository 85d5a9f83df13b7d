"""Runs: queue a commit, claim and re-queue runs, cancel, read runs and their logs.

A run is queued with its commit pinned and its ``shipyard.yaml`` validated, so a bad file is
refused before any work; a worker (the server's, or ``shipyard run`` in the foreground) then
claims it by taking its lease ``run:<project>#<number>`` and drives it (``pipeline/engine.py``).
The lease is the only answer to "is somebody driving this run?": a run whose lease expired
while it was running lost its driver, and goes back to the queue at the stage it was in.

Deploy ordering: runs of a project take the deploy turn (lease ``deploy:<project>``, from
``staging`` to their end) in number order. A run whose turn has not come is parked (waiting,
holding no worker) and re-queued once no older run of its project is still going.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from shipyard.adapters import Adapters
from shipyard.coordination import HeldLease
from shipyard.coordination.interface import DEFAULT_TTL
from shipyard.domain import DEPLOY_STAGES, STAGES, Status
from shipyard.errors import ConfigError, InvalidInput
from shipyard.git import repository_root, resolve_commit, show_file
from shipyard.services.cache import ViewCache
from shipyard.services.views import LogChunk, RunReads, RunView
from shipyard.store.models import Project
from shipyard.store.queue import QueuedRun, RunQueue

if TYPE_CHECKING:  # reports read analysis and QA results: imported by the methods that do
    from shipyard.services.reports import FindingsReport, JUnitReport, QaReport

__all__ = ["CONFIG_FILE", "DEPLOY_TURN", "Runs", "deploy_lease", "preflight_refusal", "run_lease"]

CONFIG_FILE = "shipyard.yaml"
DEPLOY_TURN = DEPLOY_STAGES[0]  # where a run waits for its deploy turn
TURN_WAIT = "waiting for "  # how the message of a run parked for its deploy turn begins
LOG_CHUNK = 64 * 1024  # bytes of a stage log per read
ACTIVE = (Status.QUEUED, Status.RUNNING, Status.WAITING)


def preflight_refusal(sha: str, problems: list[str]) -> InvalidInput:
    """The error that refuses a run whose commit would fail later, listing every problem."""
    count = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
    return InvalidInput(
        f"Commit {sha[:12]} was not run: {count} would stop it later.\n"
        + "\n".join(f"- {problem}" for problem in problems),
        hint="Fix them and run again; nothing was queued.",
    )


def run_lease(project: str, number: int) -> str:
    return f"run:{project}#{number}"


def deploy_lease(project: str) -> str:
    return f"deploy:{project}"


class Runs:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters
        self.queue_rows = RunQueue(adapters.store)
        self.views = ViewCache(adapters.store)  # reads until the store changes

    # -- queueing and reading ------------------------------------------------------------------

    def queue(
        self,
        path: Path,
        ref: str = "HEAD",
        *,
        trigger: str = "cli",
        branch: str | None = None,
        record_refusal: bool = False,
    ) -> RunView:
        """Pin ``ref`` of the repository at ``path`` to its sha, check its config, queue a run.

        ``branch`` names the pushed branch when ``ref`` is a bare sha (webhooks, polling).
        What would stop the run later (``pipeline/preflight.py``: a taken port, a missing
        install or data file) refuses it here with InvalidInput; with ``record_refusal`` (a
        push nobody watches: webhooks, polling) the run is recorded instead, failed at build
        with the same sentences, for the team to see.
        """
        from shipyard.config.loader import parse_config
        from shipyard.pipeline import preflight

        repository = repository_root(path)
        sha = resolve_commit(repository, ref)
        text = show_file(repository, sha, CONFIG_FILE)
        if text is None:
            raise ConfigError(
                f"Commit {sha[:12]} has no {CONFIG_FILE}.",
                hint="Run `shipyard init`, commit the file, and run again.",
            )
        config = parse_config(text, f"{CONFIG_FILE} at {sha[:12]}")
        problems = preflight.check(self.adapters, config, preflight.CommitFiles(repository, sha))
        if problems and not record_refusal:
            raise preflight_refusal(sha, problems)
        store = self.adapters.store
        store.ensure_project(config.name, str(repository))
        run = store.create_run(config.name, sha, branch or ref, trigger=trigger)
        if problems:
            return self._refused(config.name, run.number, problems)
        return self._read(config.name, run.number)

    def _refused(self, project: str, number: int, problems: builtins.list[str]) -> RunView:
        """A run that preflight stopped: failed at build, with every problem, never claimed."""
        store = self.adapters.store
        store.set_stage_status(project, number, STAGES[0], Status.FAILED, " ".join(problems))
        return self.fail(project, number, f"refused before it started: {problems[0]}")

    def get(self, project: str, number: int | None = None) -> RunView:
        """One run; the newest of the project when ``number`` is None."""
        return self.views.get(("run", project, number), lambda: self._read(project, number))

    def _read(self, project: str, number: int | None) -> RunView:
        return RunReads(self.adapters.store.run_records).get(project, number)

    def list(self, project: str | None = None, limit: int = 20) -> list[RunView]:
        reads = RunReads(self.adapters.store.run_records)
        return self.views.get(("runs", project, limit), lambda: reads.list(project, limit))

    def log(self, project: str, number: int, stage: str, offset: int = 0) -> LogChunk:
        """The stage's log from byte ``offset`` on; ``finished`` once nothing more will come."""
        if stage not in STAGES:
            raise InvalidInput(
                f"There is no stage {stage!r}.", hint=f"Stages: {', '.join(STAGES)}."
            )
        if offset < 0:
            raise InvalidInput(f"offset must be 0 or more, not {offset}.")
        run = self.adapters.store.get_run(project, number)
        row = next(row for row in run.stages if row.name == stage)
        # Read the status first: a stage that has finished has written its whole log.
        finished = Status(row.status).finished or Status(run.status).finished
        path = self.adapters.state.stage_log(project, number, stage)
        data = b""
        if path.is_file():
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read(LOG_CHUNK)
        more = len(data) == LOG_CHUNK
        text = data.decode("utf-8", errors="replace")
        return LogChunk(text=text, offset=offset + len(data), finished=finished and not more)

    # -- reports ------------------------------------------------------------------------------

    def test_report(self, project: str, number: int) -> JUnitReport | None:
        """The run's JUnit counts and failed tests; None when its test stage wrote no report."""
        from shipyard.services import reports

        folder = self._reports(project, number)
        return self.views.get(("junit", project, number), lambda: reports.junit_report(folder))

    def findings(self, project: str, number: int) -> FindingsReport | None:
        """The run's analysis findings by severity; None when its analyze stage did not run."""
        from shipyard.services import reports

        folder = self._reports(project, number)
        return self.views.get(
            ("findings", project, number), lambda: reports.findings_report(folder)
        )

    def qa_report(self, project: str, number: int) -> QaReport | None:
        """The run's QA figures against its thresholds; None when its qa stage wrote none."""
        from shipyard.services import reports

        folder = self._reports(project, number)

        def read() -> QaReport | None:
            if not (folder / reports.QA_FILE).is_file():
                return None
            with self.adapters.store.reading() as s:
                found = select(Project.repository).where(Project.name == project)
                repository = s.scalar(found) or ""
            return reports.qa_report(folder, repository, self.get(project, number).sha)

        return self.views.get(("qa", project, number), read)

    def report_file(self, project: str, number: int, name: str) -> Path:
        """One of the run's report files (``reports.REPORT_FILES``), for downloading."""
        from shipyard.services import reports

        return reports.report_path(self._reports(project, number), name)

    def _reports(self, project: str, number: int) -> Path:
        self.get(project, number)  # NotFound for a run that does not exist
        return self.adapters.state.run_dir(project, number) / "reports"

    # -- cancelling ----------------------------------------------------------------------------

    def cancel(self, project: str, number: int) -> RunView:
        """Ask the run's driver to stop it; a run nobody drives is cancelled here and now."""
        store = self.adapters.store
        store.request_cancel(project, number)
        if self.driver(project, number) is None:
            reason = "cancelled while no worker was driving it"
            for row in store.get_run(project, number).stages:
                if not Status(row.status).finished:
                    store.set_stage_status(project, number, row.name, Status.SKIPPED, reason)
            store.set_run_status(project, number, Status.CANCELLED, reason, worker=None)
        return self.get(project, number)

    def fail(self, project: str, number: int, reason: str) -> RunView:
        """End a run that cannot be driven: its unfinished stages skipped, saying why."""
        store = self.adapters.store
        for row in store.get_run(project, number).stages:
            if not Status(row.status).finished:
                store.set_stage_status(project, number, row.name, Status.SKIPPED, reason)
        store.set_run_status(project, number, Status.FAILED, reason, worker=None)
        return self.get(project, number)

    def driver(self, project: str, number: int) -> str | None:
        """The owner driving the run now, None when nobody does."""
        holder = self.adapters.leases.holder(run_lease(project, number))
        return holder.owner if holder is not None else None

    # -- claiming ------------------------------------------------------------------------------

    def claim(
        self, project: str, number: int, owner: str, ttl: float = DEFAULT_TTL
    ) -> HeldLease | None:
        """Take the queued run for ``owner``: its lease (kept alive) and the run's row."""
        lease = self.adapters.leases.hold(run_lease(project, number), owner, ttl)
        if lease is None:
            return None
        if not self.queue_rows.take(project, number, owner):
            lease.release()  # it was not queued (any more): someone else drove it meanwhile
            return None
        return lease

    def claim_next(
        self, owner: str, ttl: float = DEFAULT_TTL
    ) -> tuple[QueuedRun, HeldLease] | None:
        """The oldest queued run whose lease is free, claimed for ``owner``; None when none."""
        for run in self.queue_rows.runs(Status.QUEUED):
            lease = self.claim(run.project, run.number, owner, ttl)
            if lease is not None:
                return run, lease
        return None

    # -- parking and re-queueing ---------------------------------------------------------------

    def park(self, project: str, number: int, stage: str, message: str) -> RunView:
        """The run waits at ``stage`` holding no worker, until :meth:`requeue` (or its turn)."""
        self.queue_rows.park(project, number, stage, message)
        return self.get(project, number)

    def requeue(self, project: str, number: int, from_stage: str) -> RunView:
        """A parked (waiting) run back to the queue, to run again from ``from_stage``."""
        if from_stage not in STAGES:
            raise InvalidInput(
                f"There is no stage {from_stage!r}.", hint=f"Stages: {', '.join(STAGES)}."
            )
        moved = self.queue_rows.put_back(
            project, number, from_stage, expect=(Status.WAITING,), why=f"resumed at {from_stage}"
        )
        if not moved:
            status = self.get(project, number).status
            raise InvalidInput(
                f"Run {project}#{number} is {status}, not waiting: there is nothing to resume.",
                hint="`shipyard status` shows where each run is.",
            )
        return self.get(project, number)

    def interrupted(self, project: str, number: int, owner: str) -> bool:
        """Re-queue a running run whose driver ``owner`` stopped, at the stage it was in."""
        stage = self.queue_rows.running_stage(project, number)
        return self.queue_rows.put_back(
            project,
            number,
            stage,
            expect=(Status.RUNNING,),
            why=f"retried after {owner} stopped",
        )

    def recover(self) -> builtins.list[RunView]:
        """Re-queue every running run whose lease expired: its driver died mid-stage.

        Not while a command of it still runs: the stage starts again only once what the dead
        driver left of it has been killed (``Processes.sweep``).
        """
        from shipyard.services.processes import Processes

        moved, processes = [], Processes(self.adapters)
        for run in self.queue_rows.runs(Status.RUNNING):
            if self.driver(run.project, run.number) is not None:
                continue
            if processes.running_commands(run.id):
                continue
            if self.interrupted(run.project, run.number, run.worker or "its worker"):
                moved.append(self.get(run.project, run.number))
        return moved

    # -- the deploy turn -----------------------------------------------------------------------

    def turn_blocker(self, project: str, number: int) -> str | None:
        """Why run ``number`` may not deploy yet ("run #3"), None when its turn has come."""
        for run in self.adapters.store.active_runs(project):
            if run.number < number:
                return f"run #{run.number}"
        holder = self.adapters.leases.holder(deploy_lease(project))
        if holder is not None:  # a newer run never holds it first: one dying (or just done)
            return f"the deploy turn ({holder.owner.partition('@')[0]})"
        return None

    def release_turns(self) -> builtins.list[RunView]:
        """Re-queue each run parked for its deploy turn once that turn has come."""
        moved = []
        for run in self.queue_rows.runs(Status.WAITING):
            if run.resume_from != DEPLOY_TURN or not (run.message or "").startswith(TURN_WAIT):
                continue
            if self.turn_blocker(run.project, run.number) is not None:
                continue
            if self.queue_rows.put_back(
                run.project,
                run.number,
                DEPLOY_TURN,
                expect=(Status.WAITING,),
                why="its deploy turn has come",
            ):
                moved.append(self.get(run.project, run.number))
        return moved
