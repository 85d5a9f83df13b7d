"""Processes: what a dead Shipyard process left running is adopted or stopped; `down` stops all.

Every process Shipyard starts is recorded with its owner (``processes.ProcessBook``). An owner
is dead once it holds no lease. What it left is then settled by one rule:

* a stage command still running is killed with its process group (its run is re-queued at
  that stage, which runs again from its start);
* a model server or gateway that serves a deployment still wanted (state ``ready``) is
  adopted: the new owner keeps it, and the reconciler restarts it should it die;
* a `shipyard server` started in the background (by `shipyard demo`) is adopted while it runs:
  it was started to outlive its starter, and only `shipyard down` stops it;
* anything else is stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from shipyard.adapters import Adapters
from shipyard.pipeline import deploy
from shipyard.processes import ProcessBook, ProcessKind, is_running, owner_alive, process_owner
from shipyard.services.views import View
from shipyard.store.models import OwnedProcess

__all__ = ["Down", "ProcessView", "Processes", "Settled"]


class Settled(StrEnum):
    KILLED = "killed"  # a command whose owner died
    ADOPTED = "adopted"  # a server still wanted, now ours
    STOPPED = "stopped"  # a server or gateway nobody wants
    GONE = "gone"  # it had already ended; its record is closed


class ProcessView(View):
    kind: ProcessKind
    pid: int
    owner: str
    project: str | None
    version: str | None
    settled: Settled


class Down(View):
    deployments: int  # deployments stopped
    environments: int  # in how many environments
    processes: list[ProcessView]  # recorded processes that were still running, now stopped


class Processes:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters
        self.book = ProcessBook(adapters.store, adapters.leases)

    def sweep(self) -> list[ProcessView]:
        """Settle every process whose owner is dead (called on server start and each pass)."""
        settled = []
        for row in self.book.open_rows():
            if row.owner == process_owner() or owner_alive(self.adapters.leases, row.owner):
                continue
            settled.append(self._settle(row))
        return settled

    def down(self, project: str | None = None) -> Down:
        """Stop the background servers (unless for one project) first, so none starts a run or
        a deployment anew; then every deployment and gateway (of one project), then every
        recorded process still running (of that project), including what a killed run or
        server left."""
        done = [] if project is not None else self._stop_servers()
        rows = deploy.stop_all(self.adapters, project)
        for row in self.book.open_rows():
            if project is not None and row.project != project:  # its servers: stop_all above
                continue
            if not is_running(row):
                self.book.ended(row.pid)
                continue
            self.book.stop(row, "shipyard down")
            done.append(_view(row, Settled.STOPPED))
        return Down(
            deployments=len(rows),
            environments=len({(d.project, d.environment) for d in rows}),
            processes=done,
        )

    def _stop_servers(self) -> list[ProcessView]:
        stopped = []
        for row in self.book.open_rows():
            if row.kind == ProcessKind.SERVER and self.book.stop(row, "shipyard down"):
                stopped.append(_view(row, Settled.STOPPED))
        return stopped

    def running_commands(self, run_id: int) -> Sequence[OwnedProcess]:
        """The run's stage commands still running (a dead driver's, until they are killed)."""
        return [
            row
            for row in self.book.open_rows()
            if row.kind == ProcessKind.COMMAND and row.run_id == run_id and is_running(row)
        ]

    def _settle(self, row: OwnedProcess) -> ProcessView:
        if not is_running(row):
            self.book.ended(row.pid)
            return _view(row, Settled.GONE)
        if row.kind != ProcessKind.COMMAND and self._wanted(row):
            self.book.adopt(row)
            return _view(row, Settled.ADOPTED)
        reason = f"its owner {row.owner} is gone"
        self.book.stop(row, reason)
        return _view(row, Settled.KILLED if row.kind == ProcessKind.COMMAND else Settled.STOPPED)

    def _wanted(self, row: OwnedProcess) -> bool:
        """A background server; a model server of a ready deployment, or the gateway of an
        environment with one."""
        if row.kind == ProcessKind.SERVER:
            return True
        ready = [d for d in self.adapters.store.deployments() if d.state == "ready"]
        if row.kind == ProcessKind.MODEL_SERVER:
            return any(d.pid == row.pid for d in ready)
        state = self.adapters.state
        served = {str(state.environment_dir(d.project, d.environment)) for d in ready}
        return str(row.detail.get("dir")) in served and self._is_gateway_of(row)

    def _is_gateway_of(self, row: OwnedProcess) -> bool:
        pid_file = f"{row.detail.get('dir')}/gateway.pid"
        try:
            with open(pid_file, encoding="utf-8") as handle:
                return int(handle.read().strip()) == row.pid
        except (OSError, ValueError):
            return False


def _view(row: OwnedProcess, settled: Settled) -> ProcessView:
    return ProcessView(
        kind=ProcessKind(row.kind),
        pid=row.pid,
        owner=row.owner,
        project=row.project,
        version=row.version,
        settled=settled,
    )
