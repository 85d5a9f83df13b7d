"""Leases in a dict: the in-memory twin for fast tests (one process, a settable clock)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from shipyard.coordination.interface import LeaseInfo, Leases
from shipyard.store.models import utcnow

__all__ = ["MemoryLeases"]


class MemoryLeases(Leases):
    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self._leases: dict[str, LeaseInfo] = {}
        self._lock = threading.Lock()

    def acquire(self, name: str, owner: str, ttl: float = 15.0) -> bool:
        with self._lock:
            now = self.clock()
            current = self._leases.get(name)
            if current is not None and current.owner != owner and current.expires_at > now:
                return False
            acquired = current.acquired_at if current and current.owner == owner else now
            self._leases[name] = LeaseInfo(name, owner, acquired, now + timedelta(seconds=ttl))
            return True

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            current = self._leases.get(name)
            if current is not None and current.owner == owner:
                del self._leases[name]

    def holder(self, name: str) -> LeaseInfo | None:
        with self._lock:
            current = self._leases.get(name)
            return current if current is not None and current.expires_at > self.clock() else None

    def held_by(self, prefix: str) -> list[LeaseInfo]:
        with self._lock:
            now = self.clock()
            return [
                info
                for name, info in sorted(self._leases.items())
                if name.startswith(prefix) and info.expires_at > now
            ]
