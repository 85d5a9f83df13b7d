"""The API on a real state directory: real SQLite, real log files, a real uvicorn on 127.0.0.1.

``api`` is the app in process (Starlette's TestClient); ``live`` serves the same app over a
real socket, for streams and for the CLI talking to a server. ``seed`` writes runs the way
the engine does (through the store, with stage logs on disk).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from shipyard.domain import STAGES, Status, TokenRole
from shipyard.server.app import create_app
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.wiring import open_adapters

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    adapters = open_adapters(tmp_path / "state")
    yield Services(adapters)
    adapters.store.close()


@pytest.fixture
def tokens(services: Services) -> dict[TokenRole, str]:
    """One token per role, named after it (``viewer-token``, ...), created by ``root``."""
    with acting_as("root"):
        return {role: services.tokens.create(f"{role}-token", role)[1] for role in TokenRole}


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client


@dataclass(frozen=True)
class Live:
    url: str
    services: Services


@pytest.fixture
def live(services: Services) -> Iterator[Live]:
    """The app served by uvicorn on a free port of 127.0.0.1, in a thread of this process."""
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Live(f"http://127.0.0.1:{port}", services)
    server.should_exit = True
    thread.join(timeout=10)


Seed = Callable[..., int]


@pytest.fixture
def seed(services: Services) -> Seed:
    """A run of ``project`` whose stages up to ``upto`` passed with a log line each."""

    def create(project: str = "tiny", *, upto: str = "build", finished: bool = True) -> int:
        store, state = services.adapters.store, services.adapters.state
        store.ensure_project(project, f"/repos/{project}")
        number = store.create_run(project, SHA, "main", trigger="webhook").number
        store.set_run_status(project, number, Status.RUNNING)
        for stage in STAGES[: STAGES.index(upto) + 1]:
            store.set_stage_status(project, number, stage, Status.RUNNING)
            log = state.stage_log(project, number, stage)
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"{stage} of {project}#{number}\n")
            store.set_stage_status(project, number, stage, Status.PASSED, "ok")
        if finished:
            for stage in STAGES[STAGES.index(upto) + 1 :]:
                store.set_stage_status(project, number, stage, Status.SKIPPED, "not configured")
            store.set_run_status(project, number, Status.PASSED, "live")
        return number

    return create


@pytest.fixture
def no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SHIPYARD_") and name != "SHIPYARD_CACHE":
            monkeypatch.delenv(name)
