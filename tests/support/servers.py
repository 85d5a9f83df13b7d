"""Shipyard as a subprocess of a test: `shipyard server` on a free port, and the environment
any `shipyard` subprocess runs in.

pytest puts this folder on ``sys.path`` (``pythonpath`` in pyproject.toml), so a test imports
it as ``from servers import ShipyardServer, clean_env, free_port``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from shipyard.paths import CACHE_ENV_VAR
from shipyard.pipeline.context import free_port

__all__ = ["ShipyardServer", "clean_env", "free_port"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment, wide enough not to wrap, without Shipyard's variables.

    The environment cache is kept: the session fixture points it at a temporary folder, and a
    subprocess must not fall back to the developer's own cache.
    """
    assert os.environ.get(CACHE_ENV_VAR), "tests/conftest.py sets the test environment cache"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_") or k == CACHE_ENV_VAR
    }
    return {**env, "COLUMNS": "200", **extra}


class ShipyardServer:
    """`shipyard server --state state` on 127.0.0.1, its output appended to ``server.log``
    beside the state directory.

    Each ``start()`` takes a new free port, so one object can be killed and started again over
    the same state. ``with ShipyardServer(state) as server:`` starts it, waits until it answers
    and stops it at the end.
    """

    def __init__(self, state: Path, *, workers: int = 2, lease_ttl: str | None = None) -> None:
        self.state = state
        self.workers = workers
        self.lease_ttl = lease_ttl
        self.log = state.parent / "server.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        """Its exit status; None while it runs."""
        return self._started().poll()

    def start(self) -> None:
        """Start it on a new free port; it may not answer yet (``wait_ready``)."""
        self.port = free_port()
        command = [sys.executable, "-m", "shipyard", "server", "--state", str(self.state)]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        if self.lease_ttl is not None:
            command += ["--lease-ttl", self.lease_ttl]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=clean_env(), stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until ``/api/v1/health`` answers. A server that exits, or does not answer in
        ``timeout`` seconds (it is stopped then), fails the test with the end of its log."""
        process = self._started()
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"shipyard server exited ({process.returncode}):\n{self.log_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"shipyard server did not answer in {timeout:g}s:\n{self.log_text()[-3000:]}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: what it started is left running, as after a crash."""
        process = self._started()
        process.kill()
        process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not ended in 60 s."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)

    def log_text(self) -> str:
        """All it has written, over every start."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> ShipyardServer:
        self.start()
        self.wait_ready()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _started(self) -> subprocess.Popen[bytes]:
        assert self.process is not None, "the server was not started"
        return self.process
