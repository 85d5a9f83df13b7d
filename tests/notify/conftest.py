"""A real receiver on 127.0.0.1 (an HTTP server in a thread) and the services of a real store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.services import Services
from shipyard.wiring import open_adapters


@dataclass
class Receiver:
    """Records each JSON body posted; answers 500 to the first ``failures`` posts, and with
    ``hang`` set holds every request open until the test ends."""

    url: str = ""
    failures: int = 0
    hang: bool = False
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every post, failed ones too
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> int:
        with self.lock:
            self.bodies.append(body)
            if len(self.bodies) <= self.failures:
                return 500
        if self.hang:
            self.released.wait(30)
        return 204

    def wait_for(self, count: int, seconds: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"{len(self.bodies)} of {count} posts arrived"
            threading.Event().wait(0.01)
        return list(self.bodies)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            status = receiver.answer(json.loads(self.rfile.read(length)))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(**options: Any) -> Receiver:
        receiver = Receiver(**options)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.daemon_threads = True
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, receiver))
        return receiver

    yield start
    for server, receiver in servers:
        receiver.released.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(receiver_factory: Callable[..., Receiver]) -> Receiver:
    return receiver_factory()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    adapters = open_adapters(tmp_path / "state")
    adapters.store.ensure_project("tiny", str(tmp_path))
    yield Services(adapters)
    adapters.store.close()
