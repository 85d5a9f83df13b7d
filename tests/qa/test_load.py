"""The load generator against a real Starlette app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shipyard.errors import InvalidInput
from shipyard.qa.load import (
    NOT_SENT,
    UNKNOWN_VERSION,
    LoadReport,
    generate_load,
    rows_to_bodies,
    run_load,
)
from shipyard.runtime.interface import VERSION_HEADER

BODY = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}


def make_app() -> Starlette:
    """Versions alternate a, b, a, ...; every 5th request fails with 500."""
    counter = itertools.count(1)

    async def invocations(request: Request) -> JSONResponse:
        await request.json()
        n = next(counter)
        headers = {VERSION_HEADER: "a" if n % 2 else "b"}
        if n % 5 == 0:
            return JSONResponse({"error": "every fifth"}, status_code=500, headers=headers)
        return JSONResponse({"predictions": ["x"]}, headers=headers)

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(1.0)
        return JSONResponse({"predictions": ["late"]})

    return Starlette(
        routes=[
            Route("/invocations", invocations, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
        ]
    )


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that is bound but not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def server_url() -> Iterator[str]:
    config = uvicorn.Config(
        make_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_load_is_bounded_and_counted(server_url: str) -> None:
    report = run_load(server_url, [BODY], rate=200, duration=0.5, concurrency=4)
    total = math.ceil(200 * 0.5)
    assert report.requests == total == 100
    assert report.errors == total // 5
    assert report.statuses == {200: 80, 500: 20}
    assert report.error_rate == pytest.approx(0.2)
    a, b = report.per_version["a"], report.per_version["b"]
    assert (a.requests, b.requests) == (50, 50)
    # Failures are the 5th, 10th, ... request: odd ones went to a, even ones to b.
    assert (a.errors, b.errors) == (10, 10)
    assert a.predictions == {"x": 40} and b.predictions == {"x": 40}
    assert len(a.latencies_ms) == 50
    assert 0 < report.p50_ms <= report.p95_ms <= report.p99_ms
    # Open loop: 100 requests due over 0.5 s take about that long, not longer than a second.
    assert 0.45 <= report.duration_s < 3
    assert report.throughput_rps == pytest.approx(100 / report.duration_s)


def test_report_serialises_and_summarises(server_url: str) -> None:
    report = run_load(server_url, [BODY, BODY], rate=40, duration=0.25)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["requests"] == 10 and data["statuses"] == {"200": 8, "500": 2}
    assert data["per_version"]["a"]["requests"] == 5
    assert report.summary().startswith("10 requests in ")
    assert "2 errors (20.00%)" in report.summary()


def test_non_loopback_targets_are_refused() -> None:
    for url in (
        "http://10.0.0.1:8080",
        "http://example.com",
        "http://127.0.0.1.nip.io",
        "ftp://127.0.0.1",
    ):
        with pytest.raises(InvalidInput, match="never leaves this machine"):
            run_load(url, [BODY], rate=1, duration=1)


def test_loopback_spellings_are_accepted() -> None:
    with closed_port() as port:
        for host in ("localhost", "[::1]", "127.1.2.3"):
            report = run_load(f"http://{host}:{port}", [BODY], rate=100, duration=0.02, timeout=2)
            # Nothing listens: every request fails, but none was refused as non-local.
            assert report.requests == 2 and report.errors == 2, report.statuses


def test_stop_ends_the_load_early(server_url: str) -> None:
    began = time.monotonic()
    report = run_load(
        server_url, [BODY], rate=50, duration=20, stop=lambda: time.monotonic() - began > 0.3
    )
    assert 5 <= report.requests <= 30
    assert time.monotonic() - began < 3


def test_no_response_is_an_error_under_the_exception_name() -> None:
    with closed_port() as port:
        report = run_load(
            f"http://127.0.0.1:{port}",
            [BODY],
            rate=100,
            duration=0.05,
            headers={VERSION_HEADER: "b"},
        )
    assert report.requests == 5 and report.errors == 5
    assert report.statuses == {"ConnectError": 5}
    # The version the request pinned is the only one we can blame.
    assert report.per_version["b"].errors == 5 and UNKNOWN_VERSION not in report.per_version


def test_a_slow_service_is_cut_off_by_time(server_url: str) -> None:
    # 4 requests due in 0.2 s, one at a time, each timing out at 0.3 s: by the deadline
    # (duration + timeout = 0.5 s) only two were sent; the others count as not sent.
    began = time.monotonic()
    report = run_load(
        server_url, [BODY], path="/slow", rate=20, duration=0.2, concurrency=1, timeout=0.3
    )
    assert report.requests == 4 and report.errors == 4
    assert report.statuses.get(NOT_SENT) == 2, report.statuses
    assert time.monotonic() - began < 2


def test_run_load_works_from_a_thread_and_inside_a_loop(server_url: str) -> None:
    reports: list[LoadReport] = []
    worker = threading.Thread(
        target=lambda: reports.append(run_load(server_url, [BODY], rate=40, duration=0.1))
    )
    worker.start()
    worker.join(timeout=10)

    async def inside_loop() -> LoadReport:
        return run_load(server_url, [BODY], rate=40, duration=0.1)

    reports.append(asyncio.run(inside_loop()))
    reports.append(asyncio.run(generate_load(server_url, [BODY], rate=40, duration=0.1)))
    assert [r.requests for r in reports] == [4, 4, 4]


def test_bad_arguments_are_refused() -> None:
    url = "http://127.0.0.1:1"
    with pytest.raises(InvalidInput, match="no request bodies"):
        run_load(url, [], rate=1, duration=1)
    with pytest.raises(InvalidInput, match="rate"):
        run_load(url, [BODY], rate=0, duration=1)
    with pytest.raises(InvalidInput, match="concurrency"):
        run_load(url, [BODY], rate=1, duration=1, concurrency=0)


def test_rows_to_bodies() -> None:
    rows = [
        {"sepal_length": "5.1", "count": "3", "name": "a", "note": ""},
        {"sepal_length": "6.0", "count": "4", "name": "b", "note": "x"},
        {"sepal_length": "7.2", "count": "5", "name": "c", "note": "y"},
    ]
    bodies = rows_to_bodies(rows, batch=2)
    assert bodies == [
        {
            "dataframe_split": {
                "columns": ["sepal_length", "count", "name", "note"],
                "data": [[5.1, 3, "a", None], [6.0, 4, "b", "x"]],
            }
        },
        {
            "dataframe_split": {
                "columns": ["sepal_length", "count", "name", "note"],
                "data": [[7.2, 5, "c", "y"]],
            }
        },
    ]
    assert len(rows_to_bodies(rows)) == 3
    with pytest.raises(InvalidInput, match="batch"):
        rows_to_bodies(rows, batch=0)
    with pytest.raises(InvalidInput, match="columns"):
        rows_to_bodies([{"a": "1"}, {"b": "2"}], batch=2)
