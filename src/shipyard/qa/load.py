"""A bounded load generator for the QA load gate and the canary's probe traffic.

The schedule is open-loop: request ``i`` is due ``i / rate`` seconds after the start whether or
not earlier requests have returned, so a slow service shows up as latency and errors instead of
quietly lowering the rate (a closed loop would hide exactly the overload we test for). At most
``concurrency`` requests are in flight; the total is bounded by ``ceil(rate * duration)`` and
the time by ``duration + 2 * timeout``: a request that could not even be sent by
``duration + timeout`` counts as an error under the status ``"NotSent"``.

An error is a response with status >= 400 or no response at all. That is stricter than the
gateway's own statistics (>= 500): the bodies we send come from the project's data, so a
refusal is the service's fault too, e.g. a canary that rejects inputs stable accepts.

Shipyard's load only ever targets this machine: non-loopback URLs are refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shipyard.canary.judge import percentile
from shipyard.errors import InvalidInput
from shipyard.runtime.interface import VERSION_HEADER, VersionStats

__all__ = [
    "NOT_SENT",
    "UNKNOWN_VERSION",
    "LoadReport",
    "generate_load",
    "rows_to_bodies",
    "run_load",
]

UNKNOWN_VERSION = "unknown"  # per_version key of responses (or failures) with no version header
NOT_SENT = "NotSent"  # status key of requests the schedule could not start in time
_TICK = 0.05  # how often a waiting scheduler looks at stop()
_ROUNDING = 1e-9  # so that rate=0.1, duration=30 bounds at 3 requests, not 4


@dataclass
class LoadReport:
    requests: int
    errors: int
    statuses: dict[int | str, int]  # HTTP status, or the exception class name of a failure
    duration_s: float
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_version: dict[str, VersionStats] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "statuses": {str(key): count for key, count in self.statuses.items()},
            "duration_s": self.duration_s,
            "throughput_rps": self.throughput_rps,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "per_version": {name: stats.to_dict() for name, stats in self.per_version.items()},
        }

    def summary(self) -> str:
        statuses = ", ".join(
            f"{key}: {count}" for key, count in sorted(self.statuses.items(), key=str)
        )
        versions = ", ".join(
            f"{name}: {s.requests}" for name, s in sorted(self.per_version.items())
        )
        return (
            f"{self.requests} requests in {self.duration_s:.1f} s ({self.throughput_rps:.1f}/s), "
            f"{self.errors} errors ({self.error_rate:.2%}); "
            f"p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, p99 {self.p99_ms:.1f} ms; "
            f"statuses {{{statuses}}}; versions {{{versions}}}"
        )


@dataclass(frozen=True)
class _Outcome:
    """What one request got back."""

    status: int | str
    version: str
    latency_ms: float | None  # None when there was no response
    predictions: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return isinstance(self.status, str) or self.status >= 400


async def generate_load(
    url: str,
    bodies: Sequence[Mapping[str, Any]],
    *,
    path: str = "/invocations",
    rate: float,
    duration: float,
    concurrency: int = 8,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    stop: Callable[[], bool] | None = None,
) -> LoadReport:
    """POST ``bodies`` in turn to ``url + path`` at ``rate`` per second for ``duration`` seconds."""
    _check_arguments(url, bodies, rate, duration, concurrency, timeout)
    total = math.ceil(rate * duration - _ROUNDING)
    pinned = httpx.Headers(headers or {}).get(VERSION_HEADER, UNKNOWN_VERSION)
    async with _client(url, headers, timeout, concurrency) as client:

        async def send(body: Mapping[str, Any]) -> _Outcome:
            return await _post(client, path, body, pinned, timeout)

        started = time.monotonic()
        outcomes = await _schedule(send, bodies, total, rate, duration + timeout, concurrency, stop)
        elapsed = time.monotonic() - started
    return _report(outcomes, elapsed)


def run_load(
    url: str,
    bodies: Sequence[Mapping[str, Any]],
    *,
    path: str = "/invocations",
    rate: float,
    duration: float,
    concurrency: int = 8,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    stop: Callable[[], bool] | None = None,
) -> LoadReport:
    """:func:`generate_load` for synchronous callers, including threads and running loops."""

    def run() -> LoadReport:
        return asyncio.run(
            generate_load(
                url,
                bodies,
                path=path,
                rate=rate,
                duration=duration,
                concurrency=concurrency,
                headers=headers,
                timeout=timeout,
                stop=stop,
            )
        )

    if not _loop_running():
        return run()
    # asyncio.run refuses to nest inside a running loop: give the load a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def rows_to_bodies(rows: Sequence[Mapping[str, Any]], batch: int = 1) -> list[dict[str, Any]]:
    """MLflow ``dataframe_split`` bodies of ``batch`` rows each.

    CSV cells arrive as text: numbers are sent as numbers and empty cells as null, so that the
    model gets what it would get from a JSON client. Every row of a batch needs the same columns.
    """
    if batch < 1:
        raise InvalidInput(
            f"batch size {batch} is too small", hint="Use a batch of 1 or more rows."
        )
    return [_split_body(rows[start : start + batch]) for start in range(0, len(rows), batch)]


# -- scheduling ----------------------------------------------------------------------------


async def _schedule(
    send: Callable[[Mapping[str, Any]], Awaitable[_Outcome]],
    bodies: Sequence[Mapping[str, Any]],
    total: int,
    rate: float,
    deadline: float,
    concurrency: int,
    stop: Callable[[], bool] | None,
) -> list[_Outcome]:
    slots = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[_Outcome]] = []
    outcomes: list[_Outcome] = []
    start = asyncio.get_running_loop().time()

    async def one(body: Mapping[str, Any]) -> _Outcome:
        try:
            return await send(body)
        finally:
            slots.release()

    for i in range(total):
        if not await _wait_until(start + i / rate, stop):
            break  # stopped on purpose: the rest is not counted
        if await _out_of_time(slots, start + deadline):
            outcomes.extend(_not_sent(total - i))
            break
        tasks.append(asyncio.create_task(one(bodies[i % len(bodies)])))
    outcomes.extend(await asyncio.gather(*tasks))
    return outcomes


async def _wait_until(due: float, stop: Callable[[], bool] | None) -> bool:
    """Sleep until ``due`` (loop time); False as soon as ``stop()`` says so."""
    loop = asyncio.get_running_loop()
    while not _stopped(stop):
        remaining = due - loop.time()
        if remaining <= 0:
            return True
        await asyncio.sleep(min(remaining, _TICK))
    return False


async def _out_of_time(slots: asyncio.Semaphore, deadline: float) -> bool:
    """Take a concurrency slot; True when the deadline passed first."""
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(slots.acquire(), timeout=max(remaining, 0.0))
    except TimeoutError:
        return True
    return False


def _stopped(stop: Callable[[], bool] | None) -> bool:
    return stop is not None and stop()


def _not_sent(count: int) -> list[_Outcome]:
    return [_Outcome(status=NOT_SENT, version=UNKNOWN_VERSION, latency_ms=None)] * count


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# -- one request ---------------------------------------------------------------------------


def _client(
    url: str, headers: Mapping[str, str] | None, timeout: float, concurrency: int
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # trust_env=False: a proxy from the environment must never carry loopback traffic away.
    return httpx.AsyncClient(
        base_url=url, headers=dict(headers or {}), timeout=timeout, limits=limits, trust_env=False
    )


async def _post(
    client: httpx.AsyncClient, path: str, body: Mapping[str, Any], pinned: str, timeout: float
) -> _Outcome:
    started = time.perf_counter()
    try:
        # httpx times each phase; this bounds the whole exchange, slow trickles included.
        async with asyncio.timeout(timeout):
            response = await client.post(path, json=body)
    except (httpx.HTTPError, TimeoutError) as error:
        # No response: we only know the version the request asked for, if any.
        return _Outcome(status=type(error).__name__, version=pinned, latency_ms=None)
    latency_ms = (time.perf_counter() - started) * 1000
    version = response.headers.get(VERSION_HEADER, pinned)
    return _Outcome(response.status_code, version, latency_ms, _predictions(response))


def _predictions(response: httpx.Response) -> tuple[str, ...]:
    if response.status_code >= 400:
        return ()
    try:
        payload = response.json()
    except ValueError:
        return ()
    found = payload.get("predictions") if isinstance(payload, dict) else None
    if not isinstance(found, list):
        return ()
    return tuple(_label(value) for value in found)


def _label(value: Any) -> str:
    # Strings as they are; anything else (numbers, lists of scores) in one stable spelling.
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# -- the report ----------------------------------------------------------------------------


def _report(outcomes: Sequence[_Outcome], elapsed: float) -> LoadReport:
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    return LoadReport(
        requests=len(outcomes),
        errors=sum(o.failed for o in outcomes),
        statuses=dict(Counter(o.status for o in outcomes)),
        duration_s=elapsed,
        throughput_rps=len(outcomes) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        per_version=_per_version(outcomes),
    )


def _per_version(outcomes: Sequence[_Outcome]) -> dict[str, VersionStats]:
    versions: dict[str, VersionStats] = {}
    for outcome in outcomes:
        if outcome.status == NOT_SENT:
            continue  # never reached any version
        stats = versions.setdefault(outcome.version, VersionStats())
        stats.requests += 1
        stats.errors += outcome.failed
        if outcome.latency_ms is not None:
            stats.latencies_ms.append(outcome.latency_ms)
        for label in outcome.predictions:
            stats.predictions[label] = stats.predictions.get(label, 0) + 1
    return versions


# -- request bodies ------------------------------------------------------------------------


def _split_body(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    columns = list(rows[0])
    for row in rows:
        if set(row) != set(columns):
            raise InvalidInput(
                f"row {dict(row)!r} has columns {list(row)}, expected {columns}",
                hint="Every row of the data file needs the same columns.",
            )
    data = [[_cell(row[name]) for name in columns] for row in rows]
    return {"dataframe_split": {"columns": columns, "data": data}}


def _cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        return number if math.isfinite(number) else value
    return value


# -- arguments -----------------------------------------------------------------------------


def _check_arguments(
    url: str,
    bodies: Sequence[Mapping[str, Any]],
    rate: float,
    duration: float,
    concurrency: int,
    timeout: float,
) -> None:
    _check_loopback(url)
    if not bodies:
        raise InvalidInput("no request bodies to send", hint="Give at least one body.")
    if not (rate > 0 and math.isfinite(rate)):
        raise InvalidInput(f"load rate {rate} is not a positive number", hint="e.g. rate=50")
    if not (duration >= 0 and math.isfinite(duration)):
        raise InvalidInput(f"load duration {duration} is not a number of seconds", hint="e.g. 5")
    if concurrency < 1:
        raise InvalidInput(f"concurrency {concurrency} is too small", hint="Use 1 or more.")
    if not timeout > 0:
        raise InvalidInput(f"timeout {timeout} is not a positive number of seconds")


def _check_loopback(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise InvalidInput(f"{url!r} is not a URL: {error}") from error
    if parsed.scheme not in ("http", "https") or not _is_loopback(parsed.host):
        raise InvalidInput(
            f"refusing to send load to {url!r}: Shipyard's load never leaves this machine",
            hint="Use an http://127.0.0.1, http://localhost or http://[::1] endpoint.",
        )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # other names are not resolved: DNS could point them anywhere
