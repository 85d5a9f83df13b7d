"""A `shipyard server` started in the background (the demo's) outlives its starter: a sweep
adopts it rather than stopping it; `shipyard down` stops it, before the deployments."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from shipyard.adapters import Adapters
from shipyard.processes import (
    ProcessBook,
    ProcessKind,
    pid_alive,
    process_owner,
    set_process_owner,
)
from shipyard.services.processes import Processes, Settled

GONE_OWNER = "cli:host:1:gone"  # holds no lease: a starter that has exited


@pytest.fixture
def background(adapters: Adapters) -> Iterator[subprocess.Popen[bytes]]:
    """A long-lived process in its own session, recorded as a server by an owner now gone."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    ours = process_owner()
    set_process_owner(GONE_OWNER)
    try:
        ProcessBook(adapters.store).started(ProcessKind.SERVER, child.pid)
    finally:
        set_process_owner(ours)
    try:
        yield child
    finally:
        child.kill()
        child.wait(timeout=30)


def test_a_sweep_adopts_a_background_server_whose_starter_is_gone(
    adapters: Adapters, background: subprocess.Popen[bytes]
) -> None:
    settled = Processes(adapters).sweep()
    assert [(view.kind, view.pid, view.settled) for view in settled] == [
        (ProcessKind.SERVER, background.pid, Settled.ADOPTED)
    ]
    assert background.poll() is None
    [row] = ProcessBook(adapters.store).open_rows()
    assert row.owner == process_owner()
    assert Processes(adapters).sweep() == []  # ours now: left alone


def test_down_stops_a_background_server(
    adapters: Adapters, background: subprocess.Popen[bytes]
) -> None:
    done = Processes(adapters).down()
    assert [(view.kind, view.pid, view.settled) for view in done.processes] == [
        (ProcessKind.SERVER, background.pid, Settled.STOPPED)
    ]
    background.wait(timeout=30)  # reaped here: it was our child
    assert not pid_alive(background.pid)
    assert ProcessBook(adapters.store).open_rows() == []


def test_down_for_one_project_leaves_the_server_running(
    adapters: Adapters, background: subprocess.Popen[bytes]
) -> None:
    done = Processes(adapters).down("iris")
    assert done.processes == []
    assert background.poll() is None
    assert [row.pid for row in ProcessBook(adapters.store).open_rows()] == [background.pid]
