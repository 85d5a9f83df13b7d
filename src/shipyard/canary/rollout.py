"""The rollout controller: walks a canary through its steps and rolls it back by itself.

At each step the gateway splits traffic by weight, a fresh statistics window opens, and after
the configured interval the judge compares canary with stable on that window. An inconclusive
verdict (too little traffic) extends the step a bounded number of times and then fails: a
canary never passes on no data. A failed verdict moves all traffic to stable at once; stable
keeps its full capacity throughout, so nothing waits for it to scale back up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.canary.judge import Verdict, judge_canary
from shipyard.config.schema import CanaryConfig, ProjectConfig
from shipyard.domain import Status
from shipyard.pipeline import deploy
from shipyard.pipeline.context import Adapters
from shipyard.qa.load import LoadReport, run_load
from shipyard.runtime.interface import VersionStats
from shipyard.store.models import Deployment, Rollout


@dataclass(frozen=True)
class RolloutHooks:
    """How the controller talks to the run that drives it."""

    say: Callable[[str], None]
    wait: Callable[[float], None]  # sleeps, raising Cancelled when the run is cancelled
    stop_requested: Callable[[], bool]


class CanaryRollout:
    def __init__(
        self,
        adapters: Adapters,
        config: ProjectConfig,
        environment: str,
        stable: Deployment,
        canary: Deployment,
        hooks: RolloutHooks,
        probe_bodies: Sequence[dict[str, Any]] = (),
        run_id: int | None = None,
    ) -> None:
        assert config.canary is not None
        self.adapters, self.config, self.environment = adapters, config, environment
        self.settings: CanaryConfig = config.canary
        self.stable, self.canary, self.hooks = stable, canary, hooks
        self.probe_bodies = list(probe_bodies)
        self.rollout = Rollout(
            run_id=run_id,
            project=config.name,
            environment=environment,
            stable_version=stable.version,
            canary_version=canary.version,
            steps=list(self.settings.steps),
            status=Status.RUNNING.value,
        )
        self.rollout = adapters.store.save_rollout(self.rollout, "started")

    def run(self) -> Rollout:
        """Walk the steps below 100%; the live stage makes the last move."""
        try:
            for index, weight in enumerate(self.settings.steps):
                if weight >= 100:
                    break
                verdict = self._step(index, weight)
                if verdict.outcome != "pass":
                    return self.roll_back(f"step {index + 1} ({weight}%): {verdict.outcome}")
        except BaseException:
            self.roll_back("the run stopped during the canary")
            raise
        self.rollout.status = Status.PASSED.value
        return self.adapters.store.save_rollout(self.rollout, "passed")

    def roll_back(self, reason: str) -> Rollout:
        """All traffic to stable in one route change, then the canary stops."""
        deploy.route(
            self.adapters,
            self.config,
            self.environment,
            [(self.stable, 100), (self.canary, 0)],
            "rollback",
        )
        deploy.stop(self.adapters, self.canary)
        self.rollout.status, self.rollout.weight = Status.ROLLED_BACK.value, 0
        self.hooks.say(f"rolled back: {reason}; all traffic is on {self.stable.version}")
        return self.adapters.store.save_rollout(self.rollout, "rolled-back", reason=reason)

    def _step(self, index: int, weight: int) -> Verdict:
        window = f"rollout-{self.rollout.id}-step-{index}"
        deploy.route(
            self.adapters,
            self.config,
            self.environment,
            [(self.stable, 100 - weight), (self.canary, weight)],
            window,
        )
        self.rollout.step_index, self.rollout.weight = index, weight
        self.adapters.store.save_rollout(self.rollout, "step", step=index)
        self.hooks.say(
            f"step {index + 1}/{len(self.settings.steps)}: {weight}% to {self.canary.version}"
        )
        for extension in range(self.settings.analysis.max_extensions + 1):
            self._observe(self.settings.interval)
            verdict = self._judge()
            self._record(index, weight, extension, verdict)
            if verdict.outcome != "inconclusive":
                return verdict
            self.hooks.say(
                f"step {index + 1}: inconclusive ({verdict.canary_requests} canary requests); extending"
            )
        return verdict

    def _observe(self, seconds: float) -> None:
        """Wait one interval, sending the configured probe traffic through the gateway meanwhile."""
        probe = self.settings.traffic
        if probe is None or not self.probe_bodies:
            self.hooks.wait(seconds)
            return
        gateway = self.adapters.runtime.ensure_gateway(
            self.adapters.state.environment_dir(self.config.name, self.environment),
            deploy.gateway_port(self.environment, self.config.environments[self.environment]) or 0,
        )
        reports: list[LoadReport] = []
        thread = threading.Thread(
            target=lambda: reports.append(
                run_load(
                    gateway,
                    self.probe_bodies,
                    rate=probe.rate,
                    duration=seconds,
                    concurrency=8,
                    stop=self.hooks.stop_requested,
                )
            ),
            daemon=True,
        )
        thread.start()
        self.hooks.wait(seconds)
        thread.join(timeout=seconds + 15)

    def _judge(self) -> Verdict:
        env_dir = self.adapters.state.environment_dir(self.config.name, self.environment)
        stats = self.adapters.runtime.gateway_stats(env_dir)
        return judge_canary(
            stats.get(self.stable.version, VersionStats()),
            stats.get(self.canary.version, VersionStats()),
            self.settings.analysis,
        )

    def _record(self, index: int, weight: int, extension: int, verdict: Verdict) -> None:
        entry = {"step": index, "weight": weight, "extension": extension, **verdict.to_dict()}
        self.rollout.verdicts = [*self.rollout.verdicts, entry]
        self.adapters.store.save_rollout(
            self.rollout, "judged", step=index, outcome=verdict.outcome
        )
        for line in verdict.summary().splitlines():
            self.hooks.say(f"  {line}")
