"""The pipeline engine: one run per commit, its stages in order, every change persisted.

Deploy ordering rule: the stages from ``staging`` on change shared environments, so a run holds
the project's deploy lock from ``staging`` to its end, and runs enter in number order: a run
waits (status ``waiting``) while an older run of the project is still queued or active. So an
older commit can never be deployed over a newer one.
"""

from __future__ import annotations

import os
import time
import traceback
from contextlib import ExitStack, suppress
from pathlib import Path

from filelock import FileLock

from shipyard.adapters import Adapters
from shipyard.config.loader import parse_config
from shipyard.domain import DEPLOY_STAGES, STAGES, Status
from shipyard.errors import Cancelled, ConfigError, ShipyardError
from shipyard.git import repository_root, resolve_commit, show_file
from shipyard.pipeline import deploy
from shipyard.pipeline.context import NullReporter, Reporter, RunContext, StageOutcome
from shipyard.pipeline.stages import STAGE_FUNCTIONS, production
from shipyard.processes import pid_alive
from shipyard.store.models import Run

CONFIG_FILE = "shipyard.yaml"


class Pipeline:
    def __init__(self, adapters: Adapters, reporter: Reporter | None = None) -> None:
        self.adapters = adapters
        self.reporter: Reporter = reporter or NullReporter()

    def start(self, path: Path, ref: str = "HEAD", *, trigger: str = "cli") -> RunContext:
        """Pin ``ref`` to its sha, read that commit's config, and create the run."""
        repository = repository_root(path)
        sha = resolve_commit(repository, ref)
        text = show_file(repository, sha, CONFIG_FILE)
        if text is None:
            raise ConfigError(
                f"Commit {sha[:12]} has no {CONFIG_FILE}.",
                hint="Run `shipyard init`, commit the file, and run again.",
            )
        config = parse_config(text, f"{CONFIG_FILE} at {sha[:12]}")
        self.adapters.store.ensure_project(config.name, str(repository))
        run = self.adapters.store.create_run(config.name, sha, ref, trigger=trigger)
        return RunContext(
            self.adapters, config.name, run.number, sha, ref, repository, config, self.reporter
        )

    def execute(self, ctx: RunContext) -> Status:
        store = self.adapters.store
        store.set_run_status(ctx.project, ctx.number, Status.RUNNING, pid=os.getpid())
        ctx.reports_dir.mkdir(parents=True, exist_ok=True)
        final = Status.PASSED
        with ExitStack() as held:
            try:
                for stage in STAGES:
                    if stage == DEPLOY_STAGES[0]:
                        self._enter_deploy(ctx, held)
                    outcome = self._run_stage(ctx, stage)
                    if outcome.status in (Status.FAILED, Status.CANCELLED, Status.ROLLED_BACK):
                        self._withdraw(ctx, stage)
                        self._skip_rest(ctx, stage, f"not reached: {stage} {outcome.status}")
                        final = outcome.status
                        break
            except Cancelled as exc:  # cancelled while waiting for the deploy lock
                self._skip_rest(ctx, DEPLOY_STAGES[0], exc.message)
                final = Status.CANCELLED
            finally:
                self._release_workspace(ctx)
        message = (
            f"{final}" if final is not Status.PASSED else f"{ctx.project}:{ctx.version} is through"
        )
        store.set_run_status(ctx.project, ctx.number, final, message)
        return final

    def _run_stage(self, ctx: RunContext, stage: str) -> StageOutcome:
        store = self.adapters.store
        log = ctx.log_path(stage)
        log.parent.mkdir(parents=True, exist_ok=True)
        store.set_stage_status(ctx.project, ctx.number, stage, Status.RUNNING, log_path=str(log))
        self.reporter.stage_started(stage)
        started = time.monotonic()
        try:
            ctx.check_cancelled()
            outcome = STAGE_FUNCTIONS[stage](ctx)
        except Cancelled as exc:
            outcome = StageOutcome(Status.CANCELLED, exc.message)
        except KeyboardInterrupt:  # Ctrl-C: the executor has already stopped the command
            outcome = StageOutcome(Status.CANCELLED, "interrupted from the keyboard")
        except ShipyardError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            outcome = StageOutcome(Status.FAILED, f"{exc.message}{hint}")
        except Exception as exc:  # a bug or an unexpected failure: keep the run's record honest
            ctx.say(stage, traceback.format_exc())
            outcome = StageOutcome(Status.FAILED, f"internal error: {type(exc).__name__}: {exc}")
        ctx.results[stage] = outcome
        if outcome.status is Status.FAILED:
            ctx.say(stage, f"failed: {outcome.message}")
        store.set_stage_status(
            ctx.project, ctx.number, stage, outcome.status, outcome.message, summary=outcome.summary
        )
        self.reporter.stage_finished(
            stage, outcome.status, outcome.message, time.monotonic() - started
        )
        return outcome

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

    def _enter_deploy(self, ctx: RunContext, held: ExitStack) -> None:
        """Wait until no older run of the project is active, then take the deploy lock."""
        store = self.adapters.store
        older = self._older_active(ctx)
        if older:
            waiting_for = f"run #{older[0].number}"
            store.set_run_status(
                ctx.project, ctx.number, Status.WAITING, f"waiting for {waiting_for}"
            )
            ctx.say("staging", f"waiting for {waiting_for} to finish deploying")
            ctx.wait(24 * 3600, poll=0.5, until=lambda: not self._older_active(ctx))
            store.set_run_status(ctx.project, ctx.number, Status.RUNNING, "deploying")
        lock = FileLock(str(self.adapters.state.locks / f"deploy-{ctx.project}.lock"))
        while not _try(lock):
            ctx.check_cancelled()
        held.callback(lock.release)

    def _older_active(self, ctx: RunContext) -> list[Run]:
        """Older runs still going; one whose driving process died is marked failed instead."""
        store, active = self.adapters.store, []
        for run in store.active_runs(ctx.project):
            if run.number >= ctx.number:
                continue
            if run.pid and not pid_alive(run.pid):
                store.set_run_status(
                    ctx.project,
                    run.number,
                    Status.FAILED,
                    "abandoned: the process driving it is gone",
                )
                continue
            active.append(run)
        return active

    def _release_workspace(self, ctx: RunContext) -> None:
        if ctx.workspace is not None:
            # The workspace is scratch space; a leftover is removed by the next run.
            with suppress(ShipyardError):
                self.adapters.executor.release_workspace(ctx.repository, ctx.workspace)


def _try(lock: FileLock) -> bool:
    try:
        lock.acquire(timeout=0.5)
    except TimeoutError:
        return False
    return True
