"""``LocalRuntime.routes``: what a real gateway serves, as the reconciler reads it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.runtime.interface import Backend, Shadow
from shipyard.runtime.local import LocalRuntime

from .test_gateway import Environment, free_port, gateway_in

ONE = Backend("1", f"http://127.0.0.1:{free_port()}", 80, stable=True)
TWO = Backend("2", f"http://127.0.0.1:{free_port()}", 20)
MIRROR = Shadow("3", f"http://127.0.0.1:{free_port()}", 5.0)


@pytest.fixture
def env(runtime: LocalRuntime, tmp_path: Path) -> Iterator[Environment]:
    yield from gateway_in(runtime, tmp_path)


def test_routes_are_the_table_the_gateway_serves(runtime: LocalRuntime, env: Environment) -> None:
    runtime.set_routes(env.directory, [ONE, TWO], "rollout-7-step-0", shadow=MIRROR)

    served = runtime.routes(env.directory)

    assert served is not None
    assert (served.window, served.backends, served.shadow) == (
        "rollout-7-step-0",
        (ONE, TWO),
        MIRROR,
    )
    assert served.serves([TWO, ONE], MIRROR) and not served.serves([ONE, TWO], None)


def test_a_dead_gateway_serves_nothing_whatever_its_file_says(
    runtime: LocalRuntime, env: Environment
) -> None:
    runtime.set_routes(env.directory, [ONE, TWO], "served")
    pid = int((env.directory / "gateway.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    runtime.stop_server(pid)  # reaps it

    assert (env.directory / "routes.json").exists()
    assert runtime.routes(env.directory) is None


def test_no_gateway_serves_no_routes(runtime: LocalRuntime, tmp_path: Path) -> None:
    assert runtime.routes(tmp_path / "environments" / "iris" / "staging") is None


def test_an_empty_table_is_served_as_such(runtime: LocalRuntime, env: Environment) -> None:
    runtime.set_routes(env.directory, [], "empty")

    served = runtime.routes(env.directory)

    assert served is not None and served.generation >= 1
    assert (served.window, served.backends, served.shadow) == ("empty", (), None)
