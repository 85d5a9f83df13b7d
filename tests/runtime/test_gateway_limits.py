"""Hostile clients against a real gateway process in front of the real iris model server.

Each test starts its own gateway with the limits it needs on the command line, so the
timeouts can be short; every client is bounded in bytes and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shipyard.runtime.http11 import MAX_BODY
from shipyard.runtime.interface import VERSION_HEADER, Backend, RunningServer
from shipyard.runtime.routes import RouteTable

from .test_gateway import VIRGINICA_BODY, free_port

HEADER_TIMEOUT = 2.0
SWEEP_MARGIN = 1.5  # the sweep runs twice a second; the rest is this busy machine's slack
HUGE_HEADER = 100 * 1024 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningGateway:
    url: str
    port: int


@contextmanager
def gateway_process(
    directory: Path, backend: RunningServer, *options: str
) -> Iterator[RunningGateway]:
    """``python -m shipyard.runtime.gateway`` on a free port, routing everything to ``backend``."""
    directory.mkdir(parents=True, exist_ok=True)
    routes = directory / "routes.json"
    table = RouteTable.of(1, "limits", [Backend(backend.version, backend.endpoint, 100)])
    routes.write_text(json.dumps(table.to_dict()))
    port = free_port()
    command = [sys.executable, "-m", "shipyard.runtime.gateway", "--routes", str(routes)]
    with (directory / "gateway.log").open("ab") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), *options], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not ready(url):
            assert process.poll() is None, (directory / "gateway.log").read_text()
            assert time.monotonic() < deadline, "the gateway did not start within 20 s"
            time.sleep(0.05)
        yield RunningGateway(url, port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def ready(url: str) -> bool:
    try:
        health = httpx.get(f"{url}/_shipyard/health", timeout=1)
    except httpx.HTTPError:
        return False
    return health.status_code == 200 and all(b["ready"] for b in health.json()["backends"])


@pytest.fixture
def gateway(iris_server: RunningServer, tmp_path: Path) -> Iterator[RunningGateway]:
    with gateway_process(
        tmp_path / "gateway", iris_server, "--header-timeout", str(HEADER_TIMEOUT)
    ) as running:
        yield running


def exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` whole and read until the gateway closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # closed early: what it answered is still to read
            sock.sendall(request)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


# --- sizes -----------------------------------------------------------------------------------


def test_a_request_target_over_8_kib_is_414(gateway: RunningGateway) -> None:
    request = b"GET /" + b"a" * (9 * 1024) + b" HTTP/1.1\r\nhost: x\r\n\r\n"
    answer = exchange(gateway.port, request)
    assert status_of(answer) == 414, answer
    assert b"request target is over 8192 bytes" in answer
    assert b"connection: close" in answer.lower()


def test_101_headers_are_431(gateway: RunningGateway) -> None:
    headers = b"".join(b"x-h%d: %d\r\n" % (i, i) for i in range(101))
    answer = exchange(gateway.port, b"GET /ping HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")
    assert status_of(answer) == 431, answer
    assert b"100 header fields at most" in answer
    fine = b"".join(b"x-h%d: %d\r\n" % (i, i) for i in range(90))
    answer = exchange(
        gateway.port, b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + fine + b"\r\n"
    )
    assert status_of(answer) == 200, answer


def test_headers_over_64_kib_are_431(gateway: RunningGateway) -> None:
    big = b"GET /ping HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (65 * 1024) + b"\r\n\r\n"
    answer = exchange(gateway.port, big)
    assert status_of(answer) == 431, answer
    assert b"over 65536 bytes" in answer
    under = b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: " + b"a" * 60_000
    answer = exchange(gateway.port, under + b"\r\n\r\n")
    assert status_of(answer) == 200, answer


def test_a_body_announced_over_the_limit_is_413_before_it_is_sent(gateway: RunningGateway) -> None:
    head = b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
    answer = exchange(gateway.port, head % (MAX_BODY + 1))
    assert status_of(answer) == 413, answer
    assert f"larger than {MAX_BODY} bytes".encode() in answer


# --- one 100 MB header against 20 honest clients -----------------------------------------------


@dataclass
class Hostile:
    sent: int = 0
    answer: bytes = b""
    ended_by: str = ""


def stream_huge_header(port: int, outcome: Hostile, stop: threading.Event) -> None:
    """Send a 100 MB header as fast as the socket takes it, until the gateway answers or closes."""
    chunk = b"a" * 65536
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nhost: x\r\nx-huge: ")
        sock.settimeout(0.2)
        deadline = time.monotonic() + 30
        while outcome.sent < HUGE_HEADER and not stop.is_set() and time.monotonic() < deadline:
            try:
                outcome.sent += sock.send(chunk)
            except TimeoutError:
                pass  # the socket is full: see whether the gateway answered
            except OSError as exc:
                outcome.ended_by = f"send: {exc.__class__.__name__}"
                break
            if read_answer(sock, outcome):
                break
        else:
            outcome.ended_by = outcome.ended_by or "gave up"
        read_answer(sock, outcome)


def read_answer(sock: socket.socket, outcome: Hostile) -> bool:
    """Whether the gateway has answered or closed; what it said goes to ``outcome.answer``."""
    try:
        sock.setblocking(False)
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError as exc:
        outcome.ended_by = outcome.ended_by or f"recv: {exc.__class__.__name__}"
        return True
    finally:
        sock.settimeout(0.2)
    outcome.answer += data
    outcome.ended_by = outcome.ended_by or ("answered" if data else "closed")
    return True


VALID_REQUEST = (
    b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s"
) % (len(json.dumps(VIRGINICA_BODY)), json.dumps(VIRGINICA_BODY).encode())


@dataclass(frozen=True)
class Answered:
    status: int  # 0: no answer
    seconds: float
    version: bytes = b""


async def honest_clients(port: int, clients: int, seconds: float) -> list[Answered]:
    """``clients`` keep-alive clients posting a valid row for ``seconds``, one at a time each.

    Raw streams rather than httpx: on a shared machine the client's own CPU would be most of
    the latency measured.
    """
    results: list[Answered] = []
    end = time.monotonic() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < end:
                started = time.monotonic()
                try:
                    status, version = await asyncio.wait_for(one_request(reader, writer), 5)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                    results.append(Answered(0, time.monotonic() - started))
                    return
                results.append(Answered(status, time.monotonic() - started, version))
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return results


async def one_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, bytes]:
    """Status and serving version of one valid request on a keep-alive connection."""
    writer.write(VALID_REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line)
    await reader.readexactly(int(fields[b"content-length"]))
    return status_of(head), fields.get(VERSION_HEADER.encode(), b"")


def test_a_100_mb_header_is_refused_early_while_20_clients_are_served(
    gateway: RunningGateway,
) -> None:
    hostile, stop = Hostile(), threading.Event()
    attacker = threading.Thread(target=stream_huge_header, args=(gateway.port, hostile, stop))
    attacker.start()
    try:
        results = asyncio.run(honest_clients(gateway.port, clients=20, seconds=5))
    finally:
        stop.set()
        attacker.join(40)
    assert not attacker.is_alive()

    statuses = [r.status for r in results]
    latencies = sorted(r.seconds for r in results)
    ok = statuses.count(200)
    log.info(
        "hostile: %d bytes sent, ended by %s; honest: %d of %d answered 200, p99 %.3f s",
        hostile.sent,
        hostile.ended_by,
        ok,
        len(results),
        latencies[int(0.99 * (len(latencies) - 1))],
    )
    # The hostile connection was answered 431 (or cut off) after a few MiB at most, most of
    # which sat in the kernel's socket buffers: the gateway itself read 64 KiB of it.
    assert hostile.ended_by not in ("", "gave up"), hostile
    assert hostile.sent < 16 * 1024 * 1024, hostile.sent
    assert hostile.answer == b"" or status_of(hostile.answer) == 431, hostile.answer[:200]

    assert len(results) >= 200, len(results)
    assert ok >= 0.99 * len(results), (ok, len(results), sorted(set(statuses)))
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    assert p99 < 1.0, p99


# --- slow clients ----------------------------------------------------------------------------


async def slow_header(port: int, give_up: float) -> float | None:
    """Send a request's head one byte a second; seconds until the gateway hung up, or None.

    The clock starts before the connection opens: the gateway's starts when it accepts, and on
    a loaded machine this side may learn of the open connection much later than that.
    """
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = b"GET /ping HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 60
    try:
        for byte in head:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
                if await asyncio.wait_for(reader.read(65536), 1.0) == b"":
                    return time.monotonic() - started  # closed without a word
                await reader.read()  # the 408, then the end
                return time.monotonic() - started
            except TimeoutError:
                if time.monotonic() - started > give_up:
                    return None
            except ConnectionError:
                return time.monotonic() - started
        return None
    finally:
        writer.close()


async def slow_headers(port: int, connections: int, give_up: float) -> list[float | None]:
    return await asyncio.gather(*(slow_header(port, give_up) for _ in range(connections)))


def test_200_slow_header_connections_are_closed_within_the_header_timeout(
    gateway: RunningGateway,
) -> None:
    give_up = HEADER_TIMEOUT + SWEEP_MARGIN + 3
    closed_after = asyncio.run(slow_headers(gateway.port, 200, give_up))
    assert all(seconds is not None for seconds in closed_after), closed_after.count(None)
    slowest = max(s for s in closed_after if s is not None)
    log.info("200 slow-header connections closed after %.2f-%.2f s", min(closed_after), slowest)  # type: ignore[type-var]
    assert HEADER_TIMEOUT - 0.1 <= slowest <= HEADER_TIMEOUT + SWEEP_MARGIN, slowest
    assert httpx.post(f"{gateway.url}/invocations", json=VIRGINICA_BODY).status_code == 200


def test_a_slow_header_is_answered_408(gateway: RunningGateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nhost: x\r\n")
        answer = sock.recv(65536)
    assert status_of(answer) == 408, answer
    assert b"header timeout" in answer


def test_a_body_that_does_not_arrive_is_408(iris_server: RunningServer, tmp_path: Path) -> None:
    with (
        gateway_process(tmp_path / "body", iris_server, "--body-timeout", "1") as running,
        socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock,
    ):
        sock.sendall(b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        started = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - started
    assert status_of(answer) == 408, answer
    assert b"body timeout" in answer
    assert 0.9 <= waited <= 1 + SWEEP_MARGIN, waited


def test_an_idle_keep_alive_connection_is_closed(
    iris_server: RunningServer, tmp_path: Path
) -> None:
    with (
        gateway_process(tmp_path / "idle", iris_server, "--idle-timeout", "1") as running,
        socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock,
    ):
        sock.sendall(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = sock.recv(65536)
        assert status_of(answer) == 200
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the gateway, without a word
        assert 0.9 <= time.monotonic() - started <= 1 + SWEEP_MARGIN


def test_connections_past_the_limit_get_503(iris_server: RunningServer, tmp_path: Path) -> None:
    with gateway_process(tmp_path / "limit", iris_server, "--max-connections", "4") as running:
        held = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(4)]
        try:
            for sock in held:  # each is served, so the gateway has accepted all four
                sock.sendall(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
                assert status_of(sock.recv(65536)) == 200
            answer = exchange(running.port, b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
            assert status_of(answer) == 503, answer
            assert b"4 connections at most" in answer
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            request = b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            if status_of(exchange(running.port, request)) == 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the gateway did not take connections again after four closed")
