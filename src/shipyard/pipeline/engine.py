"""The pipeline engine: drives one queued run through its stages, every change persisted.

Queueing is ``services.runs.Runs.queue``; driving is :meth:`Pipeline.drive`, by whoever
holds the run's lease (a server's worker, or ``shipyard run`` in the foreground). A run starts
at its ``resume_from`` stage when it has one (after an approval, its deploy turn or a restart):
what the earlier stages left in the context is rebuilt first, and the stage runs again from
its start (stages are idempotent).

A stage may end the drive early by returning ``StageOutcome(Status.WAITING, message)``: the
run is parked (waiting at that stage, holding no worker) until ``Runs.requeue`` resumes it.

Deploy ordering rule: the stages from ``staging`` on change shared environments, so a run holds
the project's deploy turn (lease ``deploy:<project>``) from ``staging`` to its end, and runs
take it in number order: a run whose older runs of the project are still going is parked at
``staging`` ("waiting for run #N") and re-queued when its turn comes. So an older commit can
never be deployed over a newer one.
"""

from __future__ import annotations

import threading
import time
import traceback
from contextlib import ExitStack, suppress
from pathlib import Path

from shipyard.adapters import Adapters
from shipyard.artifacts.archive import read_build_info
from shipyard.config.loader import parse_config
from shipyard.coordination import HeldLease, LeaseLost
from shipyard.domain import DEPLOY_STAGES, STAGES, Status
from shipyard.errors import Cancelled, ConfigError, Conflict, ShipyardError, StageFailed
from shipyard.git import show_file
from shipyard.pipeline import deploy
from shipyard.pipeline.adopt import adopted_rollout
from shipyard.pipeline.context import NullReporter, Reporter, RunContext, StageOutcome
from shipyard.pipeline.stages import STAGE_FUNCTIONS, production
from shipyard.processes import process_owner
from shipyard.runtime.interface import SERVING_REQUIREMENTS
from shipyard.services.runs import CONFIG_FILE, DEPLOY_TURN, TURN_WAIT, Runs, deploy_lease

TURN_POLL = 0.5  # seconds between looks at a deploy turn held by a run resuming past staging


class _Interrupted(Exception):
    """The worker is stopping: the run goes back to the queue at ``stage``."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class Pipeline:
    def __init__(
        self,
        adapters: Adapters,
        reporter: Reporter | None = None,
        *,
        stopping: threading.Event | None = None,
    ) -> None:
        self.adapters = adapters
        self.reporter: Reporter = reporter or NullReporter()
        # Set when the worker shuts down: commands stop, runs go back to the queue.
        self.stopping = stopping or threading.Event()
        self.runs = Runs(adapters)

    # -- entry points ----------------------------------------------------------------------------

    def queue(self, path: Path, ref: str = "HEAD", *, trigger: str = "cli") -> RunContext:
        """Queue ``ref`` (``Runs.queue``, the one way) and return the run's context."""
        view = self.runs.queue(path, ref, trigger=trigger)
        return self.context(view.project, view.number)

    def context(self, project: str, number: int) -> RunContext:
        """A stored run's context: its commit, repository and the config read from the commit."""
        run = self.adapters.store.get_run(project, number)
        repository = Path(run.project.repository)
        text = show_file(repository, run.sha, CONFIG_FILE)
        if text is None:
            raise ConfigError(f"Commit {run.sha[:12]} has no {CONFIG_FILE} any more.")
        config = parse_config(text, f"{CONFIG_FILE} at {run.sha[:12]}")
        return RunContext(
            self.adapters, project, number, run.sha, run.ref, repository, config, self.reporter
        )

    def execute(self, ctx: RunContext) -> Status:
        """Claim the queued run for this process and drive it here (the foreground)."""
        lease = self.runs.claim(ctx.project, ctx.number, process_owner())
        if lease is None:
            raise Conflict(
                f"Run {ctx.project}#{ctx.number} is not queued, or another worker drives it.",
                hint="`shipyard status` shows where it is.",
            )
        with lease:
            return self.drive(ctx, lease)

    def drive(self, ctx: RunContext, lease: HeldLease) -> Status:
        """Run the stages from the run's resume point, as the holder of its ``lease``."""
        ctx.lease, ctx.stopping = lease, self.stopping
        ctx.reports_dir.mkdir(parents=True, exist_ok=True)
        store = self.adapters.store
        try:
            final = self._from(ctx, lease, self._restore(ctx))
        except StageFailed as exc:  # the context could not be rebuilt: the run fails, saying why
            final = self._fail_resume(ctx, exc.message)
        except LeaseLost:  # another worker took the run over: it writes the run's record now
            return Status(store.get_run(ctx.project, ctx.number).status)
        except _Interrupted as stop:
            self.runs.interrupted(ctx.project, ctx.number, lease.owner)
            ctx.say(stop.stage, f"{lease.owner} is stopping; the run goes back to the queue")
            return Status.QUEUED
        finally:
            self._release_workspace(ctx)
        if final is Status.WAITING:
            return final
        message = (
            f"{final}" if final is not Status.PASSED else f"{ctx.project}:{ctx.version} is through"
        )
        store.set_run_status(ctx.project, ctx.number, final, message)
        return final

    # -- the stages ------------------------------------------------------------------------------

    def _from(self, ctx: RunContext, lease: HeldLease, start: int) -> Status:
        with ExitStack() as held:
            turn = False
            for stage in STAGES[start:]:
                if stage in DEPLOY_STAGES and not turn:
                    blocker = self._take_turn(ctx, lease, held, first=stage == DEPLOY_TURN)
                    if blocker is not None:
                        ctx.say(stage, f"{TURN_WAIT}{blocker} to finish deploying")
                        self.runs.park(ctx.project, ctx.number, stage, f"{TURN_WAIT}{blocker}")
                        return Status.WAITING
                    turn = True
                outcome = self._run_stage(ctx, stage)
                lease.check()
                if outcome.status is Status.WAITING:
                    self.runs.park(ctx.project, ctx.number, stage, outcome.message)
                    return Status.WAITING
                if outcome.status in (Status.FAILED, Status.CANCELLED, Status.ROLLED_BACK):
                    self._withdraw(ctx, stage)
                    self._skip_rest(ctx, stage, f"not reached: {stage} {outcome.status}")
                    return outcome.status
        return Status.PASSED

    def _run_stage(self, ctx: RunContext, stage: str) -> StageOutcome:
        store = self.adapters.store
        log = ctx.log_path(stage)
        log.parent.mkdir(parents=True, exist_ok=True)
        store.set_stage_status(ctx.project, ctx.number, stage, Status.RUNNING, log_path=str(log))
        self.reporter.stage_started(stage)
        started = time.monotonic()
        outcome = self._outcome(ctx, stage)
        if outcome.status is Status.CANCELLED and self._interrupted(ctx):
            raise _Interrupted(stage)
        ctx.results[stage] = outcome
        if outcome.status is Status.FAILED:
            ctx.say(stage, f"failed: {outcome.message}")
        if outcome.status is Status.WAITING:
            ctx.say(stage, f"waiting: {outcome.message}")
        store.set_stage_status(
            ctx.project, ctx.number, stage, outcome.status, outcome.message, summary=outcome.summary
        )
        self.reporter.stage_finished(
            stage, outcome.status, outcome.message, time.monotonic() - started
        )
        return outcome

    def _outcome(self, ctx: RunContext, stage: str) -> StageOutcome:
        try:
            ctx.check_cancelled()
            adopted = adopted_rollout(ctx) if stage == "canary" else None
            return adopted or STAGE_FUNCTIONS[stage](ctx)
        except Cancelled as exc:
            return StageOutcome(Status.CANCELLED, exc.message)
        except KeyboardInterrupt:  # Ctrl-C: the executor has already stopped the command
            return StageOutcome(Status.CANCELLED, "interrupted from the keyboard")
        except ShipyardError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            return StageOutcome(Status.FAILED, f"{exc.message}{hint}")
        except Exception as exc:  # a bug or an unexpected failure: keep the run's record honest
            ctx.say(stage, traceback.format_exc())
            return StageOutcome(Status.FAILED, f"internal error: {type(exc).__name__}: {exc}")

    def _interrupted(self, ctx: RunContext) -> bool:
        """A stop that is not the user's cancel: the worker stops or lost the run's lease."""
        if ctx.lease is not None:
            ctx.lease.check()
        return self.stopping.is_set() and not self.adapters.store.cancel_requested(
            ctx.project, ctx.number
        )

    def _withdraw(self, ctx: RunContext, stage: str) -> None:
        """A run that stops in production takes its version out: never stable, never a baseline."""
        if stage not in production.STAGES or production.ENVIRONMENT not in ctx.config.environments:
            return
        try:
            deploy.withdraw(
                self.adapters,
                ctx.project,
                production.ENVIRONMENT,
                ctx.version,
                lambda text: ctx.say(stage, text),
            )
        except ShipyardError as exc:
            ctx.say(stage, f"could not withdraw {ctx.version}: {exc.message}")

    def _skip_rest(self, ctx: RunContext, after: str, reason: str) -> None:
        start = STAGES.index(after) + (0 if after not in ctx.results else 1)
        for stage in STAGES[start:]:
            self.adapters.store.set_stage_status(
                ctx.project, ctx.number, stage, Status.SKIPPED, reason
            )
            self.reporter.stage_finished(stage, Status.SKIPPED, reason, 0.0)

    # -- the deploy turn -------------------------------------------------------------------------

    def _take_turn(
        self, ctx: RunContext, lease: HeldLease, held: ExitStack, *, first: bool
    ) -> str | None:
        """Take the project's deploy turn; what blocks it when it cannot be taken now.

        At ``staging`` a blocked run is parked. A run resuming past it (after an approval)
        already had its turn, and newer runs wait for it, so it waits for the lease here.
        """
        owner = f"{ctx.project}#{ctx.number}@{lease.owner}"
        while True:
            blocker = self.runs.turn_blocker(ctx.project, ctx.number)
            turn = (
                None
                if blocker
                else self.adapters.leases.hold(deploy_lease(ctx.project), owner, lease.ttl)
            )
            if turn is not None:
                held.callback(turn.release)
                return None
            if first:
                return blocker or "the deploy turn"
            ctx.wait(TURN_POLL)
            lease.check()

    # -- resuming --------------------------------------------------------------------------------

    def _restore(self, ctx: RunContext) -> int:
        """Rebuild what the stages before the run's resume point left; returns where to start.

        A run resumed before ``publish`` whose archive is gone starts over from ``build``
        (nothing of it was published yet); past ``publish``, the archive is in the blob store.
        """
        run = self.adapters.store.get_run(ctx.project, ctx.number)
        start = STAGES.index(run.resume_from) if run.resume_from in STAGES else 0
        rows = {row.name: row for row in run.stages}
        if start == 0 or rows["build"].status != Status.PASSED.value:
            return 0
        archive = self._archive(ctx, str(rows["build"].summary.get("digest", "")))
        if archive is None:
            if start <= STAGES.index("publish"):
                ctx.say(STAGES[start], "the build's archive is gone: building again")
                return 0
            raise StageFailed(f"could not resume at {STAGES[start]}: the build's archive is gone")
        for stage in STAGES[:start]:
            row = rows[stage]
            if Status(row.status).finished:
                ctx.results[stage] = StageOutcome(
                    Status(row.status), row.message or "", row.summary
                )
        ctx.say(STAGES[start], f"resuming at {STAGES[start]}: checking out {ctx.sha} again")
        workspace = ctx.state.workspace(ctx.project, ctx.number)
        executor = self.adapters.executor
        executor.release_workspace(ctx.repository, workspace)
        ctx.workspace = executor.prepare_workspace(ctx.repository, ctx.sha, workspace)
        lock = ctx.code_dir / ctx.config.install
        ctx.env = executor.python_env(lock, ctx.config.python, SERVING_REQUIREMENTS)
        ctx.artifact_path, ctx.build_info = archive, read_build_info(archive)
        for name in ("staging", production.ENVIRONMENT):
            found = [d for d in deploy.running(self.adapters, ctx.project, name)]
            endpoint = next((d.endpoint for d in found if d.version == ctx.version), None)
            if endpoint:
                ctx.endpoints[name] = endpoint
        return start

    def _fail_resume(self, ctx: RunContext, reason: str) -> Status:
        stage = self.adapters.store.get_run(ctx.project, ctx.number).resume_from or STAGES[0]
        self.adapters.store.set_stage_status(ctx.project, ctx.number, stage, Status.FAILED, reason)
        ctx.results[stage] = StageOutcome(Status.FAILED, reason)
        self._skip_rest(ctx, stage, f"not reached: {stage} failed")
        return Status.FAILED

    def _archive(self, ctx: RunContext, digest: str) -> Path | None:
        """The build's archive: still in the run's folder, or fetched from the blob store."""
        _, _, hexdigest = digest.partition(":")
        if not hexdigest:
            return None
        path = ctx.run_dir / f"{hexdigest}.tar.gz"
        if path.is_file():
            return path
        if not self.adapters.blobs.exists(digest):
            return None
        self.adapters.blobs.fetch(digest, path)
        return path

    def _release_workspace(self, ctx: RunContext) -> None:
        if ctx.workspace is not None:
            # The workspace is scratch space; a leftover is removed by the next run.
            with suppress(ShipyardError):
                self.adapters.executor.release_workspace(ctx.repository, ctx.workspace)
