"""The locking seam: named leases with an owner, a heartbeat and an expiry.

A lease is held while its owner renews it; once it has expired anyone may take it. That is
what lets a second worker (or a restarted server) pick up the work of one that died, on one
machine (SQLite rows) or several (PostgreSQL rows), on any executor. A lease is the only
answer to "is somebody driving this?": never a pid, never a file lock.

Backends: ``store.py`` (rows of the ``leases`` table) and ``memory.py`` (a dict, for tests).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from shipyard.errors import Conflict

__all__ = ["HeldLease", "LeaseInfo", "LeaseLost", "Leases", "new_owner"]

DEFAULT_TTL = 15.0  # seconds; renewed every third of it


class LeaseLost(Conflict):
    """The lease was taken by another owner (ours expired while we were not renewing)."""


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    owner: str
    acquired_at: datetime
    expires_at: datetime


def new_owner(kind: str) -> str:
    """A fresh owner identity: what it is, where it runs, and a nonce (pids are reused)."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases(ABC):
    @abstractmethod
    def acquire(self, name: str, owner: str, ttl: float = DEFAULT_TTL) -> bool:
        """Take ``name`` (or renew it when ``owner`` holds it); False while another holds it."""

    @abstractmethod
    def release(self, name: str, owner: str) -> None:
        """Give ``name`` up; nothing happens when ``owner`` does not hold it."""

    @abstractmethod
    def holder(self, name: str) -> LeaseInfo | None:
        """Who holds ``name`` now; None when nobody does or the lease has expired."""

    @abstractmethod
    def held_by(self, prefix: str) -> list[LeaseInfo]:
        """Every unexpired lease whose name starts with ``prefix``."""

    def settle(self, name: str, poll: float = 0.2) -> LeaseInfo | None:
        """The live holder of ``name``, or None once it is free.

        A holder that renews is alive; one that was killed stops renewing and its lease runs
        out. So this waits at most until the current expiry: it returns the holder as soon as
        it renews, and None as soon as the lease is free.
        """
        seen = self.holder(name)
        while seen is not None:
            threading.Event().wait(poll)
            now = self.holder(name)
            if now is None or now.owner != seen.owner:
                return now
            if now.expires_at > seen.expires_at:
                return now
        return None

    def hold(self, name: str, owner: str, ttl: float = DEFAULT_TTL) -> HeldLease | None:
        """Take ``name`` and keep renewing it in the background until released; None if taken."""
        if not self.acquire(name, owner, ttl):
            return None
        return HeldLease(self, name, owner, ttl)


class HeldLease:
    """A lease kept alive by a heartbeat thread; a context manager that releases it."""

    def __init__(self, leases: Leases, name: str, owner: str, ttl: float) -> None:
        self.leases, self.name, self.owner, self.ttl = leases, name, owner, ttl
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                still_ours = self.leases.acquire(self.name, self.owner, self.ttl)
            except Exception:  # the store is briefly unreachable: try again on the next beat
                continue
            if not still_ours:
                self.lost.set()
                return

    def check(self) -> None:
        """Raise :class:`LeaseLost` once another owner has taken the lease."""
        if self.lost.is_set():
            raise LeaseLost(f"Lease {self.name} was taken over by another owner.")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        if not self.lost.is_set():
            self.leases.release(self.name, self.owner)

    def __enter__(self) -> HeldLease:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
