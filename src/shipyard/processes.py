"""The processes Shipyard starts, and whether one is still there.

Every stage command, model server, gateway and background `shipyard server` (the demo's) is
recorded in the ``processes`` table with its owner (the identity of the Shipyard process that
started it, which holds a lease while it lives) and its start time, so a restarted server or
`shipyard down` can find what a dead one left and never mistakes a reused pid for it
(ARCHITECTURE.md 7).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import weakref
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shipyard.coordination import HeldLease, Leases, new_owner
from shipyard.store import Store
from shipyard.store.models import OwnedProcess, utcnow

__all__ = [
    "ProcessBook",
    "ProcessKind",
    "is_zombie",
    "keep_present",
    "owner_alive",
    "pid_alive",
    "process_owner",
    "set_process_owner",
    "start_token",
]


STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


class ProcessKind(StrEnum):
    COMMAND = "command"  # a stage command and its process group; dies with its run
    MODEL_SERVER = "model-server"  # outlives its run while its deployment is wanted
    GATEWAY = "gateway"
    SERVER = "server"  # a `shipyard server` started in the background; runs until `down`


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def start_token(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22).

    A pid is reused once its process is gone; the pair (pid, start time) never is.
    None where there is no /proc (the pid alone has to do there).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 else None  # field 22 counts pid and comm first


_owner_lock = threading.Lock()
_owner: str | None = None


def process_owner() -> str:
    """This Shipyard process's identity as the owner of what it starts."""
    global _owner
    with _owner_lock:
        if _owner is None:
            _owner = new_owner("cli")
        return _owner


def set_process_owner(owner: str) -> None:
    """Set by `shipyard server` (its ``server:`` lease's owner) before anything starts."""
    global _owner
    with _owner_lock:
        _owner = owner


_presence: weakref.WeakKeyDictionary[Leases, HeldLease] = weakref.WeakKeyDictionary()


def keep_present(leases: Leases) -> None:
    """Hold this process's presence lease in ``leases`` (renewed in the background) from now on."""
    owner = process_owner()
    with _owner_lock:
        held = _presence.get(leases)
        if held is not None and held.owner == owner and not held.lost.is_set():
            return
        fresh = leases.hold(f"owner:{owner}", owner)
        if fresh is not None:
            _presence[leases] = fresh


def owner_alive(leases: Leases, owner: str) -> bool:
    """An owner lives while it holds an unexpired lease (``server:``, ``run:``, ``deploy:``)."""
    return any(info.owner == owner for info in leases.held_by(""))


class ProcessBook:
    """The ``processes`` table: record, close, find and stop what Shipyard started.

    ``leases`` (when given) keeps this Shipyard process's presence lease: recording the first
    process takes ``owner:<owner>`` and renews it while the process lives, so a server never
    takes a short-lived command's (`shipyard deploy`) model server for an orphan.
    """

    def __init__(self, store: Store, leases: Leases | None = None) -> None:
        self.store = store
        self.leases = leases

    def started(self, kind: ProcessKind, pid: int, **fields: Any) -> int:
        """Record a process just started by this Shipyard process; returns the row's id."""
        if self.leases is not None:
            keep_present(self.leases)
        row = OwnedProcess(
            kind=kind.value,
            owner=process_owner(),
            host=socket.gethostname(),
            pid=pid,
            start_token=start_token(pid),
            **fields,
        )
        with self.store.session() as s:
            s.add(row)
            s.flush()
            Store.record(s, "process.started", f"{kind.value}/{pid}", owner=row.owner)
            return row.id

    def ended(self, pid: int) -> None:
        """The process ``pid`` on this host is gone (or was stopped): its row is closed."""
        with self.store.session() as s:
            for row in s.scalars(self._open().where(OwnedProcess.pid == pid)):
                row.stopped_at = utcnow()

    def open_rows(self) -> Sequence[OwnedProcess]:
        """Rows of this host not yet marked stopped, oldest first."""
        with self.store.session() as s:
            return s.scalars(self._open().order_by(OwnedProcess.id)).all()

    def adopt(self, row: OwnedProcess) -> None:
        with self.store.session() as s:
            found = s.get(OwnedProcess, row.id)
            if found is not None:
                Store.record(
                    s,
                    "process.adopted",
                    f"{found.kind}/{found.pid}",
                    old=found.owner,
                    new=process_owner(),
                )
                found.owner = process_owner()

    def stop(self, row: OwnedProcess, reason: str) -> bool:
        """Kill the row's process group if it is still that process; True when it was."""
        running = is_running(row)
        if running:
            _stop_group(row.pid)
        with self.store.session() as s:
            found = s.get(OwnedProcess, row.id)
            if found is not None and found.stopped_at is None:
                found.stopped_at = utcnow()
                Store.record(
                    s, "process.stopped", f"{found.kind}/{found.pid}", reason=reason, alive=running
                )
        return running

    @staticmethod
    def _open() -> Any:
        return select(OwnedProcess).where(
            OwnedProcess.stopped_at.is_(None), OwnedProcess.host == socket.gethostname()
        )


def _stop_group(pgid: int) -> None:
    """SIGTERM the group (every process Shipyard starts leads one), SIGKILL what stays."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)
        deadline = time.monotonic() + STOP_GRACE
        while pid_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pid_alive(pgid):
            return


def is_running(row: OwnedProcess) -> bool:
    """The recorded process is still there: its pid lives and started when recorded."""
    if not pid_alive(row.pid):
        return False
    return row.start_token is None or start_token(row.pid) == row.start_token
