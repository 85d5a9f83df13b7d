"""The runtime's in-memory twin: servers are records, gateways are route tables in a dict.

Nothing listens anywhere: a server is a record with its version and a fake endpoint, a
gateway is the routes it was last given. The test decides what the world looks like: which
server is alive (``kill``), which versions fail to start (``failing``), and the per-version
statistics each gateway reports (``set_stats``; they stand across windows until the test
changes them), so the canary judge sees what the test wants.
Every route change is kept in ``history`` so a test can check the weights of each step.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import RuntimeFailure
from shipyard.runtime.interface import (
    Backend,
    Routes,
    RunningServer,
    Runtime,
    ServerSpec,
    Shadow,
    VersionStats,
    gateway_url,
)
from shipyard.runtime.routes import check_routes

__all__ = ["MemoryGateway", "MemoryRuntime", "MemoryServer"]


@dataclass
class MemoryServer:
    version: str
    handle: int  # what the seam hands out in place of a pid
    endpoint: str
    spec: ServerSpec
    alive: bool = True


@dataclass
class MemoryGateway:
    port: int | None = None  # None until its first start
    running: bool = False
    routes: Routes = field(default_factory=Routes)
    stats: dict[str, VersionStats] = field(default_factory=dict)
    history: list[Routes] = field(default_factory=list)


class MemoryRuntime(Runtime):
    def __init__(self) -> None:
        self.servers: dict[int, MemoryServer] = {}
        self.gateways: dict[Path, MemoryGateway] = {}
        self.failing: set[str] = set()  # versions whose servers never become ready
        self.taken_ports: set[int] = set()  # ports another program listens on
        self._handles = itertools.count(1001)
        self._lock = threading.Lock()

    # --- what a test steers --------------------------------------------------------------------

    def kill(self, version: str) -> list[int]:
        """Every live server of ``version`` dies, as a crash would; returns their handles."""
        dead = [s for s in self.servers.values() if s.version == version and s.alive]
        for server in dead:
            server.alive = False
        return [server.handle for server in dead]

    def set_stats(self, environment_dir: Path, version: str, stats: VersionStats) -> None:
        self._gateway(environment_dir).stats[version] = stats

    def live(self, version: str | None = None) -> list[MemoryServer]:
        return [s for s in self.servers.values() if s.alive and version in (None, s.version)]

    def history(self, environment_dir: Path) -> list[Routes]:
        return list(self._gateway(environment_dir).history)

    # --- model servers -------------------------------------------------------------------------

    def start_server(self, spec: ServerSpec, *, ready_timeout: float = 120.0) -> RunningServer:
        if spec.version in self.failing:
            raise RuntimeFailure(
                f"the model server of version {spec.version} exited with code 1 before it was ready",
                hint="fix the model or its serve setting; the log above says why it failed",
            )
        with self._lock:
            handle = next(self._handles)
            endpoint = f"http://twin-{handle}.invalid"
            self.servers[handle] = MemoryServer(spec.version, handle, endpoint, spec)
        return RunningServer(version=spec.version, pid=handle, endpoint=endpoint)

    def stop_server(self, pid: int) -> None:
        server = self.servers.get(pid)
        if server is not None:
            server.alive = False

    def is_alive(self, pid: int) -> bool:
        server = self.servers.get(pid)
        return server is not None and server.alive

    # --- gateways ------------------------------------------------------------------------------

    def crash_gateway(self, environment_dir: Path) -> None:
        """The gateway dies; like the real one, it serves its last routes again once restarted."""
        self._gateway(environment_dir).running = False

    def ensure_gateway(self, environment_dir: Path, port: int) -> str:
        gateway = self._gateway(environment_dir)
        if port in self.taken_ports and not (gateway.running and gateway.port == port):
            raise RuntimeFailure(
                f"port {port} is in use by another program",
                hint=f"stop it or set environments.{environment_dir.name}.port in shipyard.yaml",
            )
        gateway.port, gateway.running = port, True
        return gateway_url(port)

    def gateway_port(self, environment_dir: Path) -> int | None:
        gateway = self.gateways.get(environment_dir)
        return gateway.port if gateway is not None else None

    def set_routes(
        self,
        environment_dir: Path,
        backends: Sequence[Backend],
        window: str,
        *,
        shadow: Shadow | None = None,
        sticky_header: str | None = None,
        pin_token: str | None = None,
    ) -> None:
        check_routes(backends, shadow)
        gateway = self._running(environment_dir)
        gateway.routes = Routes(gateway.routes.generation + 1, window, tuple(backends), shadow)
        gateway.history.append(gateway.routes)

    def routes(self, environment_dir: Path) -> Routes | None:
        gateway = self.gateways.get(environment_dir)
        return gateway.routes if gateway is not None and gateway.running else None

    def gateway_stats(self, environment_dir: Path) -> dict[str, VersionStats]:
        return dict(self._running(environment_dir).stats)

    def stop_gateway(self, environment_dir: Path) -> None:
        self.gateways.pop(environment_dir, None)

    def _running(self, environment_dir: Path) -> MemoryGateway:
        gateway = self.gateways.get(environment_dir)
        if gateway is None or not gateway.running:
            raise RuntimeFailure(
                f"no gateway is running for {environment_dir.name}",
                hint="deploy to the environment first; that starts its gateway",
            )
        return gateway

    def _gateway(self, environment_dir: Path) -> MemoryGateway:
        with self._lock:
            return self.gateways.setdefault(environment_dir, MemoryGateway())
