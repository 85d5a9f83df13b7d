"""The gateway's route table: the routes file's format and how one request picks a version.

The routes file is the desired state of one environment's traffic, written atomically by
:meth:`LocalRuntime.set_routes` and re-read by the gateway::

    {"generation": 7, "window": "rollout-3-step-1",
     "sticky_header": "x-shipyard-key", "pin_token_sha256": "9f86d0...",
     "backends": [{"version": "3", "url": "http://127.0.0.1:41234", "weight": 80,
                   "stable": true},
                  {"version": "4", "url": "http://127.0.0.1:41240", "weight": 20}],
     "shadow": {"version": "5", "url": "http://127.0.0.1:41250", "percent": 10}}

A choice only ever lands on a backend the gateway believes ready: a backend that failed its
readiness probe (or refused a connection) is left out and its weight is shared by the others,
so no request waits on a dead model server. When no weighted backend is ready, the first
ready one of weight 0 (the standby kept for a rollback) takes all the traffic: production
fails over at once instead of answering 503 until its server is restarted.

Any client may pin the stable version; pinning another one (a canary, a standby) takes the
pin token, kept in the file only as its SHA-256, so a client cannot aim its own bad inputs
at a canary and have the judge roll it back.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import random
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.runtime.interface import Backend, Routes, Shadow

__all__ = [
    "Choice",
    "RouteTable",
    "Shadow",
    "check_routes",
    "load_routes",
    "pin_digest",
    "sticky_point",
    "table_of",
]

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
    pin_token_sha256: str | None = None
    by_version: dict[str, Backend] = field(default_factory=dict)
    stable: Backend | None = None

    @classmethod
    def of(
        cls,
        generation: int,
        window: str,
        backends: Sequence[Backend],
        shadow: Shadow | None = None,
        sticky_header: str | None = None,
        pin_token_sha256: str | None = None,
    ) -> RouteTable:
        by_version = {backend.version: backend for backend in backends}
        header = sticky_header.lower() if sticky_header else None
        stable = stable_backend(backends)
        return cls(
            generation,
            window,
            tuple(backends),
            shadow,
            header,
            pin_token_sha256,
            by_version,
            stable,
        )

    @property
    def compares(self) -> bool:
        """Whether two versions share the traffic: only then are predictions worth counting."""
        return self.shadow is not None or sum(1 for b in self.backends if b.weight > 0) > 1

    @property
    def served(self) -> Routes:
        """What the runtime seam reports of this table."""
        return Routes(self.generation, self.window, self.backends, self.shadow)

    def urls(self) -> set[str]:
        urls = {backend.url for backend in self.backends}
        return urls | {self.shadow.url} if self.shadow else urls

    def choice(self, not_ready: Collection[str]) -> Choice:
        """The weighted choice among the ready backends (URL not in ``not_ready``).

        With no weighted backend ready, the first ready backend of weight 0 takes everything.
        """
        ready = [b for b in self.backends if b.url not in not_ready]
        choice = Choice.of(ready)
        if choice.backends or not ready:
            return choice
        return Choice.of([replace(ready[0], weight=100)])

    def may_pin(self, backend: Backend, token: bytes | None) -> bool:
        """Whether a request may pin ``backend``: the stable one always, others with the token."""
        if backend is self.stable:
            return True
        if token is None or self.pin_token_sha256 is None:
            return False
        return hmac.compare_digest(pin_digest(token), self.pin_token_sha256)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "generation": self.generation,
            "window": self.window,
            "backends": [
                {"version": b.version, "url": b.url, "weight": b.weight}
                | ({"stable": True} if b.stable else {})
                for b in self.backends
            ],
        }
        if self.sticky_header:
            data["sticky_header"] = self.sticky_header
        if self.pin_token_sha256:
            data["pin_token_sha256"] = self.pin_token_sha256
        if self.shadow:
            data["shadow"] = {
                "version": self.shadow.version,
                "url": self.shadow.url,
                "percent": self.shadow.percent,
            }
        return data


def stable_backend(backends: Sequence[Backend]) -> Backend | None:
    """The backend marked stable while it has traffic, else the one with the most traffic.

    Going live routes everything to the new version while the old one is still marked
    stable (at weight 0): the weight decides then.
    """
    marked = next((b for b in backends if b.stable and b.weight > 0), None)
    if marked is not None or not backends:
        return marked
    return max(backends, key=lambda b: b.weight)


def pin_digest(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


def sticky_point(key: bytes) -> float:
    """Where a sticky key falls in [0, 1): the same key, the same place, in every process."""
    return (zlib.crc32(key) % STICKY_BUCKETS) / STICKY_BUCKETS


def load_routes(path: Path) -> RouteTable:
    return table_of(json.loads(path.read_text()))


def table_of(data: Mapping[str, Any]) -> RouteTable:
    """A route table from the routes file's JSON (or the gateway's health view of it)."""
    backends = [
        Backend(
            version=str(b["version"]),
            url=str(b["url"]).rstrip("/"),
            weight=int(b["weight"]),
            stable=bool(b.get("stable", False)),
        )
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
        data.get("pin_token_sha256") or None,
    )


def check_routes(backends: Sequence[Backend], shadow: Shadow | None = None) -> None:
    versions = [backend.version for backend in backends]
    if len(set(versions)) != len(versions):
        raise InvalidInput(f"a route table names a version twice: {versions}")
    if shadow is not None:
        if not 0 < shadow.percent <= 100:
            raise InvalidInput(
                f"shadow version {shadow.version} gets {shadow.percent}% of requests",
                hint="give the shadow a percentage above 0 and at most 100",
            )
        if not shadow.url.startswith(("http://", "https://")):
            raise InvalidInput(f"shadow version {shadow.version} has URL {shadow.url!r}")
    for backend in backends:
        if backend.weight < 0:
            raise InvalidInput(
                f"version {backend.version} has weight {backend.weight}; weights are >= 0"
            )
        if not backend.url.startswith(("http://", "https://")):
            raise InvalidInput(
                f"version {backend.version} has URL {backend.url!r}; expected http://..."
            )
    total = sum(backend.weight for backend in backends)
    if backends and total != 100:
        raise InvalidInput(
            f"the weights add up to {total}, not 100: "
            + ", ".join(f"{b.version}={b.weight}" for b in backends),
            hint="give every version a percentage of traffic; together they make 100",
        )
