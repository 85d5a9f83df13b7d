"""One client cannot take the model server down: limits on the request head, the time to send
it, and the number of connections, checked with raw sockets against a real server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.pipeline.context import free_port
from shipyard.runtime.interface import RunningServer
from shipyard.runtime.local import MODEL_SERVER, LocalRuntime

from .conftest import started

HEAD_SECONDS = 10.0  # serving.connections.HEAD_SECONDS
SETOSA = [5.1, 3.5, 1.4, 0.2]
VALID = json.dumps({"instances": [SETOSA]}).encode()
SKOPS = {"format": "skops", "path": "model.skops"}


@pytest.fixture(scope="module")
def server(
    runtime: LocalRuntime,
    iris_model_dir: Path,
    make_spec: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("connections") / "server.log"
    yield from started(runtime, make_spec("c1", iris_model_dir, iris_model_dir, SKOPS, log))


def address(server: RunningServer) -> tuple[str, int]:
    host, port = server.endpoint.removeprefix("http://").split(":")
    return host, int(port)


def wait_until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting ({seconds} s)"
        time.sleep(0.05)


def answer(sock: socket.socket, seconds: float = 10) -> bytes:
    """What the server sent before it closed the connection, or within ``seconds``."""
    sock.settimeout(seconds)
    chunks = []
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def send_head(server: RunningServer, head: bytes) -> bytes:
    with socket.create_connection(address(server)) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        return answer(sock)


# --- the head: size, count, time ----------------------------------------------------------------


def test_a_long_url_is_414(server: RunningServer) -> None:
    reply = send_head(server, b"GET /v2/health/live?" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 414 ")
    assert b"the request URL is over 8192 bytes" in reply


def test_too_many_headers_are_431(server: RunningServer) -> None:
    headers = b"".join(b"x-h%d: 1\r\n" % i for i in range(101))
    reply = send_head(server, b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert b"more than 100 headers" in reply


def test_100_headers_of_60_kib_are_served(server: RunningServer) -> None:
    headers = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 600) for i in range(98))
    reply = send_head(
        server,
        b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + headers + b"\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200 ")


def test_headers_over_64_kib_in_one_read_are_431(server: RunningServer) -> None:
    head = b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-big: " + b"v" * 70_000 + b"\r\n\r\n"
    reply = send_head(server, head)
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert b"over 65536 bytes" in reply


def test_a_large_body_in_the_same_read_as_its_head_is_not_a_large_head(
    server: RunningServer,
) -> None:
    body = json.dumps({"instances": [SETOSA] * 8000}).encode()  # ~200 KiB
    head = b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    head += b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
    reply = send_head(server, head + body)
    assert reply.startswith(b"HTTP/1.1 200 ")


@dataclass
class Attack:
    sent: int = 0
    reply: bytes = b""
    seconds: float = 0.0


def send_huge_header(server: RunningServer, total: int, deadline: float) -> Attack:
    """One header of ``total`` bytes, sent as fast as the server reads it, until it hangs up."""
    attack = Attack()
    started = time.monotonic()
    chunk = b"a" * 65536
    with socket.create_connection(address(server)) as sock:
        sock.settimeout(5)
        try:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nhost: x\r\nx-huge: ")
            while attack.sent < total and time.monotonic() < deadline:
                attack.sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        attack.reply = answer(sock, 5)
    attack.seconds = time.monotonic() - started
    return attack


@dataclass
class Load:
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def valid_client(server: RunningServer, load: Load, stop: threading.Event) -> None:
    with httpx.Client(base_url=server.endpoint, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status = client.post(
                    "/invocations", content=VALID, headers={"content-type": "application/json"}
                ).status_code
            except httpx.HTTPError:
                status = 0
            with load.lock:
                load.statuses.append(status)
                load.latencies.append(time.perf_counter() - started)


def test_a_100_mb_header_is_cut_off_while_20_clients_are_served(server: RunningServer) -> None:
    load, stop = Load(), threading.Event()
    clients = [threading.Thread(target=valid_client, args=(server, load, stop)) for _ in range(20)]
    for thread in clients:
        thread.start()
    try:
        wait_until(lambda: len(load.statuses) >= 100, 30)  # all 20 are under way
        attack = send_huge_header(server, 100 * 1024 * 1024, time.monotonic() + 30)
        before = len(load.statuses)
        wait_until(lambda: len(load.statuses) >= before + 400, 30)  # and after it
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)
    assert attack.sent < 16 * 1024 * 1024, f"the server read {attack.sent} bytes of one header"
    assert attack.reply == b"" or attack.reply.startswith(b"HTTP/1.1 431 "), attack.reply[:80]
    ok = load.statuses.count(200) / len(load.statuses)
    p99 = sorted(load.latencies)[int(len(load.latencies) * 0.99)]
    assert ok >= 0.99, f"{ok:.2%} of {len(load.statuses)} valid requests got 200"
    assert p99 < 1.0, f"p99 {p99:.3f} s over {len(load.latencies)} requests"


def test_slow_heads_are_answered_408_within_the_head_timeout(server: RunningServer) -> None:
    started = time.monotonic()
    sockets = [socket.create_connection(address(server)) for _ in range(50)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-slow: ")
        replies = [answer(sock, HEAD_SECONDS + 10) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    elapsed = time.monotonic() - started
    assert all(reply.startswith(b"HTTP/1.1 408 ") for reply in replies), replies[0][:80]
    assert HEAD_SECONDS - 1 < elapsed < HEAD_SECONDS + 5
    assert httpx.get(f"{server.endpoint}/v2/health/ready").status_code == 200


# --- the connection limit -----------------------------------------------------------------------


@contextlib.contextmanager
def limited_server(model_dir: Path, max_connections: int) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, str(MODEL_SERVER), "--model-dir", str(model_dir)]
    command += ["--serve", json.dumps(SKOPS), "--model-name", "iris", "--version", "9"]
    command += ["--port", str(port), "--max-connections", str(max_connections)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: ready(endpoint) or process.poll() is not None, 60)
        assert process.poll() is None, "the model server exited"
        yield endpoint
        assert process.poll() is None, "the model server died"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def ready(endpoint: str) -> bool:
    try:
        return httpx.get(f"{endpoint}/v2/health/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_connections_past_the_limit_get_503_and_the_server_stays_up(iris_model_dir: Path) -> None:
    with limited_server(iris_model_dir, 8) as endpoint:
        port = int(endpoint.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
        try:
            response = httpx.post(f"{endpoint}/invocations", content=VALID, timeout=10)
            assert response.status_code == 503
        finally:
            for sock in idle:
                sock.close()
        wait_until(lambda: ready(endpoint), 10)
        response = httpx.post(f"{endpoint}/invocations", content=VALID, timeout=10)
        assert response.json() == {"predictions": ["setosa"]}


def test_max_connections_must_be_positive(iris_model_dir: Path) -> None:
    command = [sys.executable, str(MODEL_SERVER), "--model-dir", str(iris_model_dir)]
    command += ["--serve", "m:C", "--model-name", "iris", "--version", "1", "--port", "0"]
    result = subprocess.run(
        [*command, "--max-connections", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--max-connections must be >= 1" in result.stderr
