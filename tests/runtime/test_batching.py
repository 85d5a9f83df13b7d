"""Adaptive batching: the Batcher on a real event loop, then through a real model server.

Throughput gains are measured by benchmarks/serving.py; these tests check the behaviour:
requests that wait together share one predict call, each gets its own outputs back, a batch
never exceeds its size, a bad request fails alone, and batching off means one call per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.runtime.interface import RunningServer
from shipyard.runtime.local import LocalRuntime
from shipyard.runtime.serving.batching import Batcher

ECHO_MODEL = '''
import time


class Echo:
    """Slow enough for requests to queue; tells each row the size of the batch it was in."""

    def __init__(self, model_dir):
        pass

    def predict(self, records):
        if any(record["id"] < 0 for record in records):
            raise ValueError("negative ids are refused")
        time.sleep(0.03)
        return [{"id": record["id"], "batch": len(records)} for record in records]
'''


class Recorder:
    """A predict function that keeps the rows of every call."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def __call__(self, rows: list[Any]) -> list[Any]:
        self.calls.append(list(rows))
        if any(row < 0 for row in rows):
            raise ValueError(f"negative row in {rows}")
        return [row * 10 for row in rows]


async def submit_all(batcher: Batcher, requests: list[list[int]]) -> list[Any]:
    batcher.start()
    try:
        return await asyncio.gather(
            *(batcher.submit(rows) for rows in requests), return_exceptions=True
        )
    finally:
        await batcher.stop()


def test_requests_waiting_together_share_one_predict_call() -> None:
    recorder = Recorder()
    requests = [[1], [2, 3], [4], [5]]
    results = asyncio.run(submit_all(Batcher(recorder, 32, 0.0), requests))
    assert results == [[10], [20, 30], [40], [50]]
    assert recorder.calls == [[1, 2, 3, 4, 5]]


def test_a_batch_never_exceeds_its_size() -> None:
    recorder = Recorder()
    requests = [[i, i] for i in range(1, 6)]
    results = asyncio.run(submit_all(Batcher(recorder, 4, 0.0), requests))
    assert results == [[10 * i, 10 * i] for i in range(1, 6)]
    assert [len(call) for call in recorder.calls] == [4, 4, 2]


def test_a_request_that_breaks_the_batch_fails_alone() -> None:
    recorder = Recorder()
    results = asyncio.run(submit_all(Batcher(recorder, 32, 0.0), [[1], [-1], [3]]))
    assert results[0] == [10] and results[2] == [30]
    assert isinstance(results[1], ValueError)
    assert recorder.calls == [[1, -1, 3], [1], [-1], [3]]  # the batch, then one by one


def test_batching_off_predicts_each_request_alone() -> None:
    recorder = Recorder()
    results = asyncio.run(submit_all(Batcher(recorder, 1, 0.0), [[1], [2], [3]]))
    assert results == [[10], [20], [30]]
    assert recorder.calls == [[1], [2], [3]]


def test_max_wait_holds_a_batch_until_it_is_full() -> None:
    recorder = Recorder()

    async def scenario() -> list[Any]:
        batcher = Batcher(recorder, 2, max_wait=30.0)  # full long before the wait is over
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(0.05)
        assert not first.done() and recorder.calls == []  # waiting for company
        second = await batcher.submit([2])
        await batcher.stop()
        return [await first, second]

    assert asyncio.run(scenario()) == [[10], [20]]
    assert recorder.calls == [[1, 2]]


# --- through a real model server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code = tmp_path_factory.mktemp("echo-code")
    (code / "echo_model.py").write_text(ECHO_MODEL)
    return code


def echo_server(
    runtime: LocalRuntime, code: Path, make_spec: Any, batch: int
) -> Iterator[RunningServer]:
    spec = make_spec(f"b{batch}", code, code, "echo_model:Echo", code / f"b{batch}.log")
    server = runtime.start_server(dataclasses.replace(spec, max_batch_size=batch), ready_timeout=60)
    try:
        yield server
    finally:
        runtime.stop_server(server.pid)


@pytest.fixture(scope="module")
def batching_on(runtime: LocalRuntime, echo_code: Path, make_spec: Any) -> Iterator[RunningServer]:
    yield from echo_server(runtime, echo_code, make_spec, 8)


@pytest.fixture(scope="module")
def batching_off(runtime: LocalRuntime, echo_code: Path, make_spec: Any) -> Iterator[RunningServer]:
    yield from echo_server(runtime, echo_code, make_spec, 1)


async def concurrent(endpoint: str, count: int, rows: int = 1) -> list[httpx.Response]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=count)) as client:

        def body(n: int) -> dict[str, Any]:
            return {"instances": [{"id": n * 100 + row} for row in range(rows)]}

        return await asyncio.gather(
            *(client.post(f"{endpoint}/invocations", json=body(n)) for n in range(count))
        )


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(
    batching_on: RunningServer,
) -> None:
    responses = asyncio.run(concurrent(batching_on.endpoint, 16, rows=2))
    batches = []
    for n, response in enumerate(responses):
        assert response.status_code == 200, response.text
        outputs = response.json()["predictions"]
        assert [output["id"] for output in outputs] == [n * 100, n * 100 + 1]
        batches += [output["batch"] for output in outputs]
    assert max(batches) > 2  # rows of several requests in one predict call
    assert max(batches) <= 8  # never above max_batch_size


def test_batching_off_calls_predict_once_per_request(batching_off: RunningServer) -> None:
    responses = asyncio.run(concurrent(batching_off.endpoint, 8, rows=2))
    assert {output["batch"] for r in responses for output in r.json()["predictions"]} == {2}


def test_a_bad_request_in_a_batch_does_not_fail_the_others(batching_on: RunningServer) -> None:
    async def mixed() -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            bodies = [{"instances": [{"id": n if n != 3 else -1}]} for n in range(8)]
            return await asyncio.gather(
                *(client.post(f"{batching_on.endpoint}/invocations", json=b) for b in bodies)
            )

    responses = asyncio.run(mixed())
    assert [r.status_code for r in responses] == [200, 200, 200, 422, 200, 200, 200, 200]
    assert "negative ids are refused" in responses[3].json()["error"]
