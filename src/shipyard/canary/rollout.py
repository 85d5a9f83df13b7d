"""The rollout controller: walks a canary through its steps and rolls it back by itself.

The plan is stored with the rollout (``steps``: weight, pause, shadow share), so any process
can pick a rollout up where it is: the pipeline's canary stage drives it first, and when that
process dies, ``shipyard up`` or ``shipyard rollout resume`` drives it on from its step.

Each step routes its weights (a new statistics window), then the judge runs every
``interval`` on the step's window so far. A failing verdict moves all traffic to stable at
once, whatever the step; stable keeps its full capacity throughout, so nothing waits for it
to scale back up. The step ends when its pause is over (or on ``shipyard rollout promote``;
a ``manual`` pause ends only then) and its last verdict passed. An inconclusive verdict at the
end (too little traffic) extends the step by one interval, at most ``max_extensions`` times,
and then fails: a canary never passes on no data.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.canary.judge import Verdict, judge_canary
from shipyard.canary.wording import failures
from shipyard.config.schema import CanaryConfig, ProjectConfig
from shipyard.coordination import HeldLease, new_owner
from shipyard.domain import RolloutStatus
from shipyard.errors import Conflict, NotFound, ShipyardError
from shipyard.paths import project_file
from shipyard.pipeline import deploy
from shipyard.qa.load import rows_to_bodies, run_load
from shipyard.qa.quality import load_records
from shipyard.runtime.interface import VersionStats
from shipyard.runtime.routes import Shadow
from shipyard.store.models import Deployment, Rollout

__all__ = ["CanaryRollout", "RolloutHooks", "plan_steps", "probe_bodies"]

COMMAND_POLL_SECONDS = 0.2
PROBE_CONCURRENCY = 8


@dataclass(frozen=True)
class RolloutHooks:
    """How the controller talks to whoever drives it."""

    say: Callable[[str], None]
    wait: Callable[[float], None]  # sleeps, raising Cancelled when the run is cancelled
    stop_requested: Callable[[], bool]
    # Seconds on the clock ``wait`` sleeps by: a test's fake clock makes steps take no time.
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def plain(cls, say: Callable[[str], None]) -> RolloutHooks:
        return cls(say=say, wait=time.sleep, stop_requested=lambda: False)


def plan_steps(settings: CanaryConfig) -> list[dict[str, Any]]:
    """The stored plan: a shadow phase first when configured, then the steps below 100%."""
    steps: list[dict[str, Any]] = []
    if settings.shadow is not None:
        steps.append({"weight": 0, "pause": settings.interval, "shadow": settings.shadow.percent})
    for weight, pause in settings.plan():
        if weight >= 100:
            break  # the last move is going live
        steps.append({"weight": weight, "pause": pause})
    return steps


def probe_bodies(config: ProjectConfig, code_dir: Path) -> list[dict[str, Any]]:
    """Requests for the canary's probe traffic: rows of its data file, label column dropped."""
    settings, quality = config.canary, config.qa.quality if config.qa else None
    if settings is None or settings.traffic is None:
        return []
    data = settings.traffic.data or (quality.data if quality else None)
    if data is None:
        return []
    rows = load_records(project_file(code_dir, data))
    label = quality.label if quality else None
    return rows_to_bodies([{k: v for k, v in row.items() if k != label} for row in rows])


class CanaryRollout:
    """Drives one stored rollout to a verdict."""

    def __init__(
        self,
        adapters: Adapters,
        config: ProjectConfig,
        rollout: Rollout,
        hooks: RolloutHooks,
        probe_bodies: Sequence[dict[str, Any]] = (),
    ) -> None:
        if config.canary is None:
            raise NotFound(f"Project {config.name} has no `canary:` section to roll out with.")
        self.adapters, self.config, self.hooks = adapters, config, hooks
        self.settings: CanaryConfig = config.canary
        self.rollout = rollout
        self.environment = rollout.environment
        self.probe_bodies = list(probe_bodies)
        self.finished = threading.Event()

    @classmethod
    def begin(
        cls,
        adapters: Adapters,
        config: ProjectConfig,
        environment: str,
        stable: Deployment,
        canary: Deployment,
        hooks: RolloutHooks,
        probe_bodies: Sequence[dict[str, Any]] = (),
        run_id: int | None = None,
    ) -> CanaryRollout:
        """Store a new rollout of ``canary`` against ``stable`` at its first step."""
        if config.canary is None:
            raise NotFound(f"Project {config.name} has no `canary:` section to roll out with.")
        row = Rollout(
            run_id=run_id,
            project=config.name,
            environment=environment,
            stable_version=stable.version,
            canary_version=canary.version,
            steps=plan_steps(config.canary),
            status=records.RUNNING,
        )
        row = adapters.store.save_rollout(row, "started")
        return cls(adapters, config, row, hooks, probe_bodies)

    # --- driving ---------------------------------------------------------------------------------

    def run(self, *, finish: bool = False, roll_back_on_error: bool = True) -> Rollout:
        """Walk the steps from the stored one; with ``finish``, go live after the last step.

        When the walk stops on an exception (the run was cancelled, the gateway vanished) the
        canary is rolled back, unless ``roll_back_on_error`` is off: a controller daemon that
        is stopped leaves the rollout where it is for the next one to resume.
        """
        lease = self._take_lease()
        if lease is None:
            raise Conflict(
                f"Rollout {self.rollout.id} is already driven by another process.",
                hint="`shipyard rollout status` shows where it is.",
            )
        probe = self._start_probe()
        try:
            return self._walk(finish)
        except BaseException:
            if roll_back_on_error:
                with contextlib.suppress(Exception):
                    self.roll_back("the process driving the canary stopped")
            raise
        finally:
            self.finished.set()
            if probe is not None:
                probe.join(timeout=15)
            lease.release()

    def _walk(self, finish: bool) -> Rollout:
        if self._refresh().status in records.FINISHED:
            return self.rollout
        stable, canary = self._deployments()
        steps = self.rollout.steps
        for index in range(self.rollout.step_index, len(steps)):
            outcome = self._step(index, steps[index], stable, canary)
            if outcome != "pass":
                return self.rollout
        if finish:
            self._go_live(canary)
        self._save("passed", lambda r: setattr(r, "status", records.PASSED))
        self.hooks.say(f"canary {canary.version} passed every step")
        return self.rollout

    def _go_live(self, canary: Deployment) -> None:
        """All traffic to the canary; when that fails, go_live has withdrawn it: record so."""
        try:
            deploy.go_live(
                self.adapters,
                self.config,
                self.environment,
                canary.version,
                f"live-{self.rollout.id}",
                self.hooks.say,
            )
        except ShipyardError as exc:
            self._end(records.ROLLED_BACK, f"going live failed: {exc.message}")
            raise

    def _step(
        self, index: int, step: dict[str, Any], stable: Deployment, canary: Deployment
    ) -> str:
        weight, pause, shadow = int(step["weight"]), step["pause"], step.get("shadow")
        self._route(index, weight, shadow, stable, canary)
        label = f"shadow {shadow}%" if shadow else f"{weight}%"
        held = "until promoted" if pause == "manual" else f"for {float(pause):g} s"
        self.hooks.say(
            f"step {index + 1}/{len(self.rollout.steps)}: {label} to {canary.version} {held}"
        )
        interval = self.settings.interval
        elapsed, extensions, verdict = 0.0, 0, None
        while True:
            ticked = self._tick(interval)
            elapsed += ticked
            status = self._refresh().status
            if status == records.ABORTING:
                self.roll_back("aborted by `shipyard rollout abort`", records.ABORTED)
                return "aborted"
            verdict = self._judge(index, weight, extensions)
            if verdict.outcome == "fail":
                self.roll_back(f"step {index + 1} ({label}): {failures(verdict.checks)}")
                return "fail"
            if status == records.PROMOTING or self._over(pause, elapsed, extensions, interval):
                if verdict.outcome == "pass" or status == records.PROMOTING:
                    self._save("promoted", lambda r: setattr(r, "status", records.RUNNING))
                    return "pass"
                if extensions >= self.settings.analysis.max_extensions:
                    self.roll_back(
                        f"step {index + 1} ({label}): still inconclusive after "
                        f"{extensions} extension(s) ({verdict.canary_requests} canary requests)"
                    )
                    return "fail"
                extensions += 1
                self.hooks.say(
                    f"step {index + 1}: inconclusive ({verdict.canary_requests} canary "
                    f"requests); extended by {interval:g} s"
                )
            if pause == "manual" and status == records.RUNNING:
                self._save("waiting", lambda r: setattr(r, "status", records.WAITING))
                self.hooks.say("waiting for `shipyard rollout promote`")

    def _over(self, pause: Any, elapsed: float, extensions: int, interval: float) -> bool:
        if pause == "manual" or self.rollout.status == records.PAUSED:
            return False
        return elapsed >= float(pause) + extensions * interval - 1e-6

    def _tick(self, interval: float) -> float:
        """Wait one judging interval, answering commands meanwhile; returns running seconds."""
        clock = self.hooks.clock
        start = clock()
        paused = 0.0
        while clock() - start < interval:
            self.hooks.wait(min(COMMAND_POLL_SECONDS, interval - (clock() - start)))
            status = self._refresh().status
            if status in (records.ABORTING, records.PROMOTING):
                break
            if status == records.PAUSED:
                paused += COMMAND_POLL_SECONDS
        return max(0.0, clock() - start - paused)

    # --- moves ---------------------------------------------------------------------------------

    def _route(
        self,
        index: int,
        weight: int,
        shadow: float | None,
        stable: Deployment,
        canary: Deployment,
    ) -> None:
        mirror = Shadow(canary.version, canary.endpoint or "", shadow) if shadow else None
        deploy.route(
            self.adapters,
            self.config,
            self.environment,
            [(stable, 100 - weight), (canary, weight)],
            f"rollout-{self.rollout.id}-step-{index}",
            shadow=mirror,
        )

        def move(row: Rollout) -> None:
            row.step_index, row.weight = index, weight
            if row.status in (records.PROMOTING, records.WAITING):
                row.status = records.RUNNING

        self._save("step", move, step=index)

    def abort(self, reason: str) -> Rollout:
        """Roll back now, from a process that is not driving the rollout (nobody is)."""
        lease = self._take_lease()
        if lease is None:
            raise Conflict(
                f"Rollout {self.rollout.id} is driven by another process.",
                hint="That process rolls it back within a fraction of a second.",
            )
        with lease:
            return self.roll_back(reason, records.ABORTED)

    def _take_lease(self) -> HeldLease | None:
        return self.adapters.leases.hold(
            records.driver_lease(self.rollout.id), new_owner("rollout-driver")
        )

    def roll_back(self, reason: str, final: RolloutStatus = RolloutStatus.ROLLED_BACK) -> Rollout:
        """All traffic to stable in one route change, then the canary stops."""
        stable, canary = self._deployments()
        deploy.route(
            self.adapters,
            self.config,
            self.environment,
            [(stable, 100), (canary, 0)],
            f"rollback-{self.rollout.id}",
        )
        deploy.stop(self.adapters, canary)
        self._end(final, reason)
        self.hooks.say(f"{final}: {reason}; all traffic is on {stable.version}")
        return self.rollout

    def _end(self, final: RolloutStatus, reason: str) -> None:
        def finish(row: Rollout) -> None:
            row.status, row.weight = final, 0

        self._save(final, finish, reason=reason)

    # --- judging -------------------------------------------------------------------------------

    def _judge(self, index: int, weight: int, extension: int) -> Verdict:
        env_dir = self.adapters.state.environment_dir(self.config.name, self.environment)
        stats = self.adapters.runtime.gateway_stats(env_dir)
        verdict = judge_canary(
            stats.get(self.rollout.stable_version or "", VersionStats()),
            stats.get(self.rollout.canary_version, VersionStats()),
            self.settings.analysis,
        )
        entry = {
            "step": index,
            "weight": weight,
            "extension": extension,
            "at": time.time(),
            **verdict.to_dict(),
        }

        def add(row: Rollout) -> None:
            row.verdicts = [*row.verdicts, entry]

        self._save("judged", add, step=index, outcome=verdict.outcome)
        self.hooks.say(f"  judged: {verdict.outcome}")
        for line in verdict.summary().splitlines():
            self.hooks.say(f"    {line}")
        return verdict

    # --- the stored row ------------------------------------------------------------------------

    def _refresh(self) -> Rollout:
        self.rollout = records.find_rollout(
            self.adapters.store, self.rollout.project, self.environment, self.rollout.id
        )
        return self.rollout

    def _save(self, action: str, change: Callable[[Rollout], None], **detail: Any) -> None:
        self.rollout = records.update_rollout(
            self.adapters.store, self.rollout.id, action, change, **detail
        )

    def _deployments(self) -> tuple[Deployment, Deployment]:
        """The running deployments of both versions (restarted ones have new rows)."""
        rows = deploy.running(self.adapters, self.config.name, self.environment)
        by_version = {row.version: row for row in rows}
        stable = by_version.get(self.rollout.stable_version or "")
        canary = by_version.get(self.rollout.canary_version)
        if stable is None or canary is None:
            missing = self.rollout.stable_version if stable is None else self.rollout.canary_version
            raise NotFound(
                f"Version {missing} of rollout {self.rollout.id} is not running in "
                f"{self.config.name}/{self.environment}.",
                hint="`shipyard up` restarts the deployments the store says should run.",
            )
        return stable, canary

    # --- probe traffic -------------------------------------------------------------------------

    def _start_probe(self) -> threading.Thread | None:
        """Send the configured probe traffic through the gateway while the rollout runs."""
        probe = self.settings.traffic
        if probe is None or not self.probe_bodies:
            return None
        env = deploy.environment(self.config, self.environment)
        port = deploy.serving_port(self.adapters, self.config.name, self.environment, env)
        gateway = self.adapters.runtime.ensure_gateway(
            self.adapters.state.environment_dir(self.config.name, self.environment), port or 0
        )

        def send() -> None:
            run_load(
                gateway,
                self.probe_bodies,
                rate=probe.rate,
                duration=24 * 3600,
                concurrency=PROBE_CONCURRENCY,
                stop=lambda: self.finished.is_set() or self.hooks.stop_requested(),
            )

        thread = threading.Thread(target=send, daemon=True, name="canary-probe")
        thread.start()
        return thread
