"""The gateway's route table: the routes file's format and how one request picks a version.

The routes file is the desired state of one environment's traffic, written atomically by
:meth:`LocalRuntime.set_routes` and re-read by the gateway::

    {"generation": 7, "window": "rollout-3-step-1",
     "sticky_header": "x-shipyard-key",
     "backends": [{"version": "3", "url": "http://127.0.0.1:41234", "weight": 80},
                  {"version": "4", "url": "http://127.0.0.1:41240", "weight": 20}],
     "shadow": {"version": "5", "url": "http://127.0.0.1:41250", "percent": 10}}

A choice only ever lands on a backend the gateway believes ready: a backend that failed its
readiness probe (or refused a connection) is left out and its weight is shared by the others,
so no request waits on a dead model server.
"""

from __future__ import annotations

import bisect
import json
import random
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.runtime.interface import Backend, Shadow

__all__ = ["Choice", "RouteTable", "Shadow", "load_routes", "sticky_point"]

STICKY_BUCKETS = 10_000  # a key's place in [0, 100) to two decimals


@dataclass(frozen=True)
class Choice:
    """Backends with weight > 0 and their running totals, for one weighted pick."""

    backends: tuple[Backend, ...] = ()
    cumulative: tuple[int, ...] = ()

    @classmethod
    def of(cls, backends: Sequence[Backend]) -> Choice:
        weighted = [b for b in backends if b.weight > 0]
        running, cumulative = 0, []
        for backend in weighted:
            running += backend.weight
            cumulative.append(running)
        return cls(tuple(weighted), tuple(cumulative))

    def pick(self, point: float | None = None) -> Backend | None:
        """The backend at ``point`` in [0, 1) of the total weight; random when None."""
        if not self.cumulative:
            return None
        where = (random.random() if point is None else point) * self.cumulative[-1]
        return self.backends[bisect.bisect_right(self.cumulative, where)]

    def without(self, version: str) -> Choice:
        return Choice.of([b for b in self.backends if b.version != version])


@dataclass(frozen=True)
class RouteTable:
    """One generation of the routes file."""

    generation: int = 0
    window: str = ""
    backends: tuple[Backend, ...] = ()
    shadow: Shadow | None = None
    sticky_header: str | None = None
    by_version: dict[str, Backend] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        generation: int,
        window: str,
        backends: Sequence[Backend],
        shadow: Shadow | None = None,
        sticky_header: str | None = None,
    ) -> RouteTable:
        by_version = {backend.version: backend for backend in backends}
        header = sticky_header.lower() if sticky_header else None
        return cls(generation, window, tuple(backends), shadow, header, by_version)

    @property
    def compares(self) -> bool:
        """Whether two versions share the traffic: only then are predictions worth counting."""
        return self.shadow is not None or sum(1 for b in self.backends if b.weight > 0) > 1

    def urls(self) -> set[str]:
        urls = {backend.url for backend in self.backends}
        return urls | {self.shadow.url} if self.shadow else urls

    def choice(self, not_ready: Collection[str]) -> Choice:
        """The weighted choice among the backends whose URL is not in ``not_ready``."""
        return Choice.of([b for b in self.backends if b.url not in not_ready])

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "generation": self.generation,
            "window": self.window,
            "backends": [
                {"version": b.version, "url": b.url, "weight": b.weight} for b in self.backends
            ],
        }
        if self.sticky_header:
            data["sticky_header"] = self.sticky_header
        if self.shadow:
            data["shadow"] = {
                "version": self.shadow.version,
                "url": self.shadow.url,
                "percent": self.shadow.percent,
            }
        return data


def sticky_point(key: bytes) -> float:
    """Where a sticky key falls in [0, 1): the same key, the same place, in every process."""
    return (zlib.crc32(key) % STICKY_BUCKETS) / STICKY_BUCKETS


def load_routes(path: Path) -> RouteTable:
    data = json.loads(path.read_text())
    backends = [
        Backend(version=str(b["version"]), url=str(b["url"]).rstrip("/"), weight=int(b["weight"]))
        for b in data.get("backends", [])
    ]
    shadow_data = data.get("shadow")
    shadow = (
        Shadow(
            str(shadow_data["version"]),
            str(shadow_data["url"]).rstrip("/"),
            float(shadow_data["percent"]),
        )
        if shadow_data
        else None
    )
    return RouteTable.of(
        int(data.get("generation", 0)),
        str(data.get("window", "")),
        backends,
        shadow,
        data.get("sticky_header") or None,
    )
