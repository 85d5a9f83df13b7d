"""One reconciling pass, and the loop of ``shipyard up``.

Desired state: the ``deployments`` rows in state ``ready`` (which versions run where, with
which role and weight) and the ``rollouts`` rows with an active status (where each canary is
in its plan). Each pass, in order:

1. deployments: a row whose process is gone gets a new process (a new row with the same
   role and weight; the old row is marked stopped);
2. routes: each environment's gateway is running and serves the rows' endpoints; without an
   active rollout it also serves the rows' weights, with one it keeps the rollout's weights
   (the rollout's controller owns them);
3. standbys: a standby kept past its ``canary.rollback_window`` is stopped;
4. rollouts: every active rollout that no process drives gets a driver (a thread here), which
   resumes it at its stored step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.canary.rollout import CanaryRollout, RolloutHooks, probe_bodies
from shipyard.config.schema import ProjectConfig
from shipyard.domain import Role
from shipyard.errors import ShipyardError
from shipyard.pipeline import deploy
from shipyard.runtime.interface import Backend, Routes, Shadow
from shipyard.store.models import Deployment, Rollout, utcnow

__all__ = ["Reconciler", "load_deployed_config"]

Say = Callable[[str], None]


def load_deployed_config(
    adapters: Adapters, project: str, environment: str, version: str
) -> ProjectConfig:
    """The shipyard.yaml a deployed version was built with (from its unpacked artifact)."""
    _, config = deploy.unpack(adapters, project, environment, version)
    return config


class Reconciler:
    def __init__(
        self,
        adapters: Adapters,
        say: Say,
        *,
        now: Callable[[], datetime] = utcnow,
        hooks: Callable[[Say], RolloutHooks] = RolloutHooks.plain,
    ) -> None:
        self.adapters = adapters
        self.say = say
        # Time, for tests to take in hand: when standbys expire, how drivers wait between polls.
        self.now, self.hooks = now, hooks
        self.drivers: dict[int, threading.Thread] = {}

    # --- one pass ------------------------------------------------------------------------------

    def reconcile(self, *, drive: bool = True) -> None:
        """One pass over every environment; with ``drive``, undriven rollouts get a thread."""
        for project, environment in self._environments():
            try:
                self.restart_dead(project, environment)
                self.fix_routes(project, environment)
                self.expire_standbys(project, environment)
            except ShipyardError as exc:
                self.say(f"{project}/{environment}: {exc.message}")
        if drive:
            for rollout in records.active_rollouts(self.adapters.store):
                self._ensure_driver(rollout)

    def restart_dead(self, project: str, environment: str) -> list[Deployment]:
        restarted = []
        for row in deploy.running(self.adapters, project, environment):
            if row.pid and self.adapters.runtime.is_alive(row.pid):
                continue
            self.say(
                f"{project}/{environment}: {row.version} ({row.role}) is not running; starting it"
            )
            new = deploy.start(
                self.adapters, project, environment, row.version, Role(row.role), self.say
            )
            new.weight = row.weight
            self.adapters.store.save_deployment(new, "restarted")
            deploy.stop(self.adapters, row)
            restarted.append(new)
        return restarted

    def fix_routes(self, project: str, environment: str) -> None:
        """Put the gateway's routes back to what the store says, unless someone is changing
        them right now (then the next pass looks again)."""
        try:
            with deploy.changing_routes(self.adapters, project, environment, wait=0):
                self._fix_routes(project, environment)
        except deploy.RoutesBusy:
            return

    def _fix_routes(self, project: str, environment: str) -> None:
        rows = deploy.running(self.adapters, project, environment)
        if not rows:
            return
        # The environment as it runs governs: the stable's config, at the port clients use.
        live = next((row for row in reversed(rows) if row.role == Role.STABLE), rows[-1])
        config = load_deployed_config(self.adapters, project, environment, live.version)
        env = deploy.environment(config, environment)
        port = deploy.serving_port(self.adapters, project, environment, env)
        if port is None:
            return
        env_dir = self.adapters.state.environment_dir(project, environment)
        self.adapters.runtime.ensure_gateway(env_dir, port)
        served = self.adapters.runtime.routes(env_dir) or Routes(window="reconciled")
        endpoints = {row.version: row.endpoint or "" for row in rows}
        backends, shadow = self._desired(project, environment, rows, served, endpoints)
        if served.serves(backends, shadow) or sum(b.weight for b in backends) != 100:
            return
        window = served.window or "reconciled"
        self.say(f"{project}/{environment}: gateway routes set to the stored state")
        self.adapters.runtime.set_routes(
            env_dir,
            backends,
            window,
            shadow=shadow,
            sticky_header=env.sticky_header,
            pin_token=deploy.pin_token(env),
        )

    def _desired(
        self,
        project: str,
        environment: str,
        rows: list[Deployment],
        served: Routes,
        endpoints: dict[str, str],
    ) -> tuple[list[Backend], Shadow | None]:
        if not self.adapters.store.rollouts.active(project, environment):
            return [
                Backend(r.version, endpoints[r.version], r.weight, stable=r.role == Role.STABLE)
                for r in rows
            ], None
        # A rollout owns the weights: only the addresses of restarted versions change.
        backends = [replace(b, url=endpoints.get(b.version, b.url)) for b in served.backends]
        shadow = served.shadow
        if shadow is not None:
            shadow = replace(shadow, url=endpoints.get(shadow.version, shadow.url))
        return backends, shadow

    def expire_standbys(self, project: str, environment: str) -> None:
        for row in deploy.running(self.adapters, project, environment, Role.STANDBY):
            config = load_deployed_config(self.adapters, project, environment, row.version)
            window = config.canary.rollback_window if config.canary else 0.0
            if self.now() - row.updated_at > timedelta(seconds=window):
                self.say(
                    f"{project}/{environment}: rollback window of {row.version} is over; stopping it"
                )
                deploy.stop(self.adapters, row)

    # --- rollouts ------------------------------------------------------------------------------

    def controller(self, rollout: Rollout, hooks: RolloutHooks) -> CanaryRollout:
        config = load_deployed_config(
            self.adapters, rollout.project, rollout.environment, rollout.canary_version
        )
        code_dir = (
            self.adapters.state.deployment_dir(
                rollout.project, rollout.environment, rollout.canary_version
            )
            / "code"
        )
        return CanaryRollout(self.adapters, config, rollout, hooks, probe_bodies(config, code_dir))

    def drive(self, rollout: Rollout, *, roll_back_on_error: bool = False) -> Rollout:
        """Drive ``rollout`` from its stored step to a verdict, going live when it passes."""
        prefix = f"rollout {rollout.id} ({rollout.project}/{rollout.environment})"
        hooks = self.hooks(lambda text: self.say(f"{prefix}: {text}"))
        return self.controller(rollout, hooks).run(
            finish=True, roll_back_on_error=roll_back_on_error
        )

    def _ensure_driver(self, rollout: Rollout) -> None:
        thread = self.drivers.get(rollout.id)
        if thread is not None and thread.is_alive():
            return
        if records.is_driven(self.adapters.leases, rollout.id):
            return

        def work() -> None:
            try:
                self.drive(rollout)
            except ShipyardError as exc:
                self.say(f"rollout {rollout.id}: {exc.message} (retrying on the next pass)")

        thread = threading.Thread(target=work, daemon=True, name=f"rollout-{rollout.id}")
        self.drivers[rollout.id] = thread
        thread.start()

    # --- the loop ------------------------------------------------------------------------------

    def run_forever(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.reconcile()
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def run_once(self) -> list[Rollout]:
        """One pass, then every active rollout driven to its verdict in the foreground."""
        self.reconcile(drive=False)
        done = []
        for rollout in records.active_rollouts(self.adapters.store):
            if not records.is_driven(self.adapters.leases, rollout.id):
                done.append(self.drive(rollout))
        return done

    def _environments(self) -> list[tuple[str, str]]:
        rows = self.adapters.store.deployments()
        return sorted({(row.project, row.environment) for row in rows})
