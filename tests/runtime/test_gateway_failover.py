"""Production fails over: the stable server dies under load and the standby answers at once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.runtime.interface import Backend, RunningServer
from shipyard.runtime.local import LocalRuntime

from .test_gateway import Environment, gateway_in
from .test_gateway_limits import honest_clients

log = logging.getLogger(__name__)


@pytest.fixture
def env(runtime: LocalRuntime, tmp_path: Path) -> Iterator[Environment]:
    yield from gateway_in(runtime, tmp_path)


def test_the_standby_takes_over_when_the_only_stable_server_is_killed_under_load(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    fake_code_dir: Path,
    tmp_path: Path,
    make_spec: Any,
) -> None:
    stable = runtime.start_server(
        make_spec("5", tmp_path, fake_code_dir, "fake_models:AlwaysSetosa", tmp_path / "5.log")
    )
    killed = threading.Event()

    def kill() -> None:
        # Three seconds into the load, like a crash: no warning, the whole process group.
        if not killed.wait(3):
            os.killpg(stable.pid, signal.SIGKILL)

    try:
        standby = Backend("1", iris_server.endpoint, 0)
        runtime.set_routes(
            env.directory, [Backend("5", stable.endpoint, 100, stable=True), standby], "failover"
        )
        killer = threading.Thread(target=kill)
        killer.start()
        results = asyncio.run(honest_clients(env.port, clients=10, seconds=15))
    finally:
        killed.set()
        killer.join()
        runtime.stop_server(stable.pid)

    served = Counter(r.version for r in results if r.status == 200)
    statuses = Counter(r.status for r in results)
    log.info("%d requests: %s, served by %s", len(results), dict(statuses), dict(served))
    assert len(results) >= 1000, len(results)
    assert statuses[200] >= 0.99 * len(results), statuses
    assert served[b"5"] > 0 and served[b"1"] > 0, served  # the standby took over
    slowest = max(r.seconds for r in results)
    assert slowest < 2.0, slowest  # no client waited for a restart
    assert not runtime.is_alive(stable.pid)
