"""The server's workers: N threads that claim queued runs by lease and drive them.

Each worker takes the oldest queued run whose lease is free (``Runs.claim_next``), so runs of
different projects proceed side by side while the deploy turn keeps one project's deploys in
number order. A run that parks (an approval, its deploy turn) gives its worker back at once.

A housekeeping pass, on start and then every ``interval``, settles what dead owners left:
their processes are killed or adopted (``Processes.sweep``), their runs go back to the queue at
the stage they were in (``Runs.recover``), and parked runs whose deploy turn has come are
re-queued (``Runs.release_turns``). Doing it on every pass means a crash at any moment loses
nothing: the next pass finds the same facts in the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from shipyard.adapters import Adapters
from shipyard.coordination import HeldLease
from shipyard.coordination.interface import DEFAULT_TTL
from shipyard.domain import Status
from shipyard.errors import ShipyardError
from shipyard.pipeline.engine import Pipeline
from shipyard.processes import process_owner
from shipyard.services.processes import Processes
from shipyard.services.runs import Runs
from shipyard.store.queue import QueuedRun

__all__ = ["Workers"]

Say = Callable[[str], None]


class Workers:
    def __init__(
        self,
        adapters: Adapters,
        count: int = 2,
        *,
        ttl: float = DEFAULT_TTL,
        interval: float = 0.5,
        owner: str | None = None,
        say: Say = lambda text: None,
    ) -> None:
        self.adapters, self.count, self.ttl, self.interval = adapters, count, ttl, interval
        self.owner = owner or process_owner()
        self.say = say
        self.stopping = threading.Event()
        self.pipeline = Pipeline(adapters, stopping=self.stopping)
        self.runs = Runs(adapters)
        self.processes = Processes(adapters)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.tend()
        names = [f"worker-{index + 1}@{self.owner}" for index in range(self.count)]
        self.threads = [
            threading.Thread(target=self._work, args=(name,), name=name, daemon=True)
            for name in names
        ]
        self.threads.append(threading.Thread(target=self._tend, name="tending", daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the commands being run; the runs go back to the queue, their leases released."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout)

    def tend(self) -> None:
        """One housekeeping pass (see the module's docstring)."""
        for view in self.processes.sweep():
            self.say(f"{view.kind} pid {view.pid} of {view.owner}: {view.settled}")
        for run in self.runs.recover():
            self.say(f"{run.project}#{run.number} re-queued at {run.resume_from}")
        for run in self.runs.release_turns():
            self.say(f"{run.project}#{run.number}: its deploy turn has come")

    def _tend(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.tend()
            except ShipyardError as exc:  # a busy store: the next pass tries again
                self.say(f"housekeeping: {exc.message}")

    def _work(self, name: str) -> None:
        while not self.stopping.is_set():
            try:
                claimed = self.runs.claim_next(name, self.ttl)
            except ShipyardError as exc:
                self.say(f"{name}: {exc.message}")
                claimed = None
            if claimed is None:
                self.stopping.wait(self.interval)
                continue
            run, lease = claimed
            with lease:
                self._drive(name, run, lease)

    def _drive(self, name: str, run: QueuedRun, lease: HeldLease) -> None:
        self.say(f"{name}: driving {run.project}#{run.number}")
        try:
            ctx = self.pipeline.context(run.project, run.number)
            final = self.pipeline.drive(ctx, lease)
        except Exception as exc:  # the run must not stay `running` behind a dead worker
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.runs.fail(run.project, run.number, f"could not be driven: {message}")
            final = Status.FAILED
        self.say(f"{name}: {run.project}#{run.number} {final}")
