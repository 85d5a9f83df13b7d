"""The gateway: one port per environment that splits traffic between model versions by weight.

Run as ``python -m shipyard.runtime.gateway --routes routes.json (--port P | --fd FD)``.

The routes file is the desired state, written atomically by :class:`LocalRuntime.set_routes`::

    {"generation": 7, "window": "canary-3-step-2",
     "backends": [{"version": "3", "url": "http://127.0.0.1:41234", "weight": 20}, ...]}

A background task looks at the file's identity (inode, mtime, size) every 50 ms and swaps the
whole table at once when it changes; the request path never touches the disk. The gateway
reports the generation it serves at ``/_shipyard/health``, which is how a writer knows its
change is in force.

Per request: a ``x-shipyard-version`` header naming a version in the table pins it; otherwise
a weighted random choice (weight 0 is never chosen). A backend that refuses the connection is
retried once on another version with weight > 0, so a request racing a switch is not lost.

Statistics per version (requests, errors, latencies, predicted values) cover one observation
window; a new ``window`` name in the routes file starts them afresh. The canary judge reads
them from ``/_shipyard/stats``. Admin endpoints answer loopback clients only.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import http.cookiejar
import importlib.util
import json
import logging
import os
import random
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from shipyard.runtime.interface import VERSION_HEADER, Backend, VersionStats

__all__ = ["Gateway", "RouteTable", "load_routes", "main"]

POLL_SECONDS = 0.05
MAX_LATENCIES = 20_000
MAX_PARSED_BODY = 64 * 1024
ADMIN_PREFIX = "/_shipyard/"
LOOPBACK = frozenset({"127.0.0.1", "::1"})
# Connection-level headers (RFC 9110 7.6.1) plus the ones the proxy recomputes itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        VERSION_HEADER.encode(),
    }
)
VERSION_KEY = VERSION_HEADER.encode()

log = logging.getLogger("shipyard.gateway")

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class RouteTable:
    """One generation of the routes file, with what a weighted choice needs precomputed."""

    generation: int = 0
    window: str = ""
    backends: tuple[Backend, ...] = ()
    by_version: dict[str, Backend] = field(default_factory=dict)
    cumulative: tuple[int, ...] = ()

    @classmethod
    def of(cls, generation: int, window: str, backends: Sequence[Backend]) -> RouteTable:
        running = 0
        cumulative = []
        for backend in backends:
            running += backend.weight
            cumulative.append(running)
        by_version = {backend.version: backend for backend in backends}
        return cls(generation, window, tuple(backends), by_version, tuple(cumulative))

    def choose(self) -> Backend | None:
        if not self.cumulative or self.cumulative[-1] <= 0:
            return None
        # bisect_right skips weight-0 entries: their cumulative equals the previous one.
        point = random.random() * self.cumulative[-1]
        return self.backends[bisect.bisect_right(self.cumulative, point)]

    def fallback(self, failed: str) -> Backend | None:
        others = [b for b in self.backends if b.version != failed and b.weight > 0]
        return RouteTable.of(0, "", others).choose() if others else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "window": self.window,
            "backends": [
                {"version": b.version, "url": b.url, "weight": b.weight} for b in self.backends
            ],
        }


def load_routes(path: Path) -> RouteTable:
    data = json.loads(path.read_text())
    backends = [
        Backend(version=str(b["version"]), url=str(b["url"]).rstrip("/"), weight=int(b["weight"]))
        for b in data.get("backends", [])
    ]
    return RouteTable.of(int(data.get("generation", 0)), str(data.get("window", "")), backends)


class WindowStats:
    """Mutable statistics of one version; snapshots become :class:`VersionStats`."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latencies_ms: deque[float] = deque(maxlen=MAX_LATENCIES)
        self.predictions: dict[str, int] = {}

    def record(self, status: int | None, latency_ms: float) -> None:
        self.requests += 1
        if status is None or status >= 500:
            self.errors += 1
        self.latencies_ms.append(latency_ms)

    def count_predictions(self, body: bytes) -> None:
        try:
            predictions = json.loads(body).get("predictions")
        except (ValueError, AttributeError):
            return
        if isinstance(predictions, list):
            for value in predictions:
                if isinstance(value, str | int | float):
                    key = str(value)
                    self.predictions[key] = self.predictions.get(key, 0) + 1

    def snapshot(self) -> VersionStats:
        return VersionStats(
            self.requests, self.errors, list(self.latencies_ms), dict(self.predictions)
        )


class Gateway:
    """The ASGI app: admin endpoints for loopback clients, everything else proxied."""

    def __init__(self, routes_path: Path) -> None:
        self.routes_path = routes_path
        self.table = RouteTable()
        self.stats: dict[str, WindowStats] = {}
        self.file_identity: tuple[int, int, int] | None = None
        # The gateway is the only client of its backends: no cookies, no proxies from the env.
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(60.0, connect=5.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
            trust_env=False,
        )
        self.client.headers.clear()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["path"].startswith(ADMIN_PREFIX):
                await self.admin(scope, send)
            else:
                await self.proxy(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    # --- lifespan and routes reloading -------------------------------------------------------

    async def lifespan(self, receive: Any, send: Any) -> None:
        async with self.running():
            await receive()  # lifespan.startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.reload()
        poller = asyncio.create_task(self.poll_routes())
        try:
            yield
        finally:
            poller.cancel()
            await self.client.aclose()

    async def poll_routes(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self.reload()
            except Exception:  # a dead poller would freeze the routes: log and keep polling
                log.exception("could not reload %s", self.routes_path)

    def reload(self) -> None:
        try:
            info = os.stat(self.routes_path)
        except OSError:
            return
        identity = (info.st_ino, info.st_mtime_ns, info.st_size)
        if identity == self.file_identity:
            return
        try:
            table = load_routes(self.routes_path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error(
                "keeping generation %d: %s is invalid: %s",
                self.table.generation,
                self.routes_path,
                exc,
            )
        else:
            if table.window != self.table.window:
                self.stats = {}
            self.table = table
            log.info("serving generation %d: %s", table.generation, table.to_dict()["backends"])
        self.file_identity = identity

    # --- admin -------------------------------------------------------------------------------

    async def admin(self, scope: Scope, send: Any) -> None:
        client = scope.get("client")
        path = scope["path"]
        if not client or client[0] not in LOOPBACK or scope["method"] != "GET":
            await respond_json(send, 404, {"error": "not found"})
        elif path == "/_shipyard/health":
            await respond_json(send, 200, {**self.table.to_dict(), "pid": os.getpid()})
        elif path == "/_shipyard/stats":
            versions = {v: s.snapshot().to_dict() for v, s in self.stats.items()}
            body = {"generation": self.table.generation, "window": self.table.window}
            await respond_json(send, 200, {**body, "versions": versions})
        else:
            await respond_json(send, 404, {"error": f"no admin endpoint {path}"})

    # --- the hot path ------------------------------------------------------------------------

    async def proxy(self, scope: Scope, receive: Any, send: Any) -> None:
        body = await read_body(receive)
        headers, pinned = forwarded_headers(scope["headers"])
        table = self.table
        if pinned is not None:
            backend = table.by_version.get(pinned)
            if backend is None:
                known = ", ".join(table.by_version) or "none"
                message = f"version {pinned!r} is not deployed here; known versions: {known}"
                await respond_json(send, 404, {"error": message})
                return
        else:
            backend = table.choose()
        if backend is None:
            await respond_json(send, 503, {"error": "no version is deployed in this environment"})
            return
        await self.forward(scope, body, headers, backend, table, retry=pinned is None, send=send)

    async def forward(
        self,
        scope: Scope,
        body: bytes,
        headers: Headers,
        backend: Backend,
        table: RouteTable,
        *,
        retry: bool,
        send: Any,
    ) -> None:
        stats = self.stats.setdefault(backend.version, WindowStats())
        request = self.client.build_request(
            scope["method"], target_url(backend.url, scope), headers=headers, content=body
        )
        started = time.perf_counter()
        try:
            response = await self.client.send(request, stream=True)
            try:
                content = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            stats.record(None, (time.perf_counter() - started) * 1000)
            other = table.fallback(backend.version) if retry else None
            if isinstance(exc, httpx.ConnectError) and other is not None:
                await self.forward(scope, body, headers, other, table, retry=False, send=send)
                return
            status = 504 if isinstance(exc, httpx.TimeoutException) else 502
            message = f"version {backend.version} did not answer: {type(exc).__name__}: {exc}"
            await respond_json(send, status, {"error": message}, backend.version)
            return
        stats.record(response.status_code, (time.perf_counter() - started) * 1000)
        if len(content) < MAX_PARSED_BODY and "json" in response.headers.get("content-type", ""):
            stats.count_predictions(content)
        await respond(send, response.status_code, response.headers.raw, content, backend.version)


async def read_body(receive: Any) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def forwarded_headers(raw: Headers) -> tuple[Headers, str | None]:
    """End-to-end headers to pass on, and the pinned version if the client named one."""
    pinned = None
    connection_tokens: set[bytes] = set()
    headers = []
    for name, value in raw:
        if name == VERSION_KEY:
            pinned = value.decode("latin-1").strip()
        elif name == b"connection":
            connection_tokens.update(t.strip().lower() for t in value.split(b","))
        elif name not in HOP_BY_HOP:
            headers.append((name, value))
    if connection_tokens:
        headers = [(n, v) for n, v in headers if n not in connection_tokens]
    return headers, pinned


def target_url(base: str, scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = base + path.decode("latin-1")
    return f"{url}?{query.decode('latin-1')}" if query else url


async def respond(
    send: Any, status: int, raw: Headers, body: bytes, version: str | None = None
) -> None:
    headers = [(n, v) for n, v in raw if n.lower() not in HOP_BY_HOP]
    headers.append((b"content-length", str(len(body)).encode()))
    if version is not None:
        headers.append((VERSION_KEY, version.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Any, status: int, payload: Any, version: str | None = None) -> None:
    body = json.dumps(payload).encode()
    await respond(send, status, [(b"content-type", b"application/json")], body, version)


def remember_missing_sniffio() -> None:
    """httpcore tries ``import sniffio`` on every request; when it is not installed, each failed
    import walks all of sys.path again (a tenth of the gateway's time). Record the absence once.
    """
    if importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Shipyard's traffic-splitting gateway.")
    parser.add_argument("--routes", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--fd", type=int, help="serve on this already-bound socket")
    args = parser.parse_args(argv)
    remember_missing_sniffio()
    # Root at WARNING: httpx logs every request at INFO, which would be a write per request.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    # The backends' own Date and Server headers are forwarded; uvicorn must not add second ones.
    config = uvicorn.Config(
        Gateway(args.routes.resolve()),
        host=args.host,
        port=args.port or 0,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    # socket(fileno=...) detects AF_INET, so asyncio sets TCP_NODELAY (uvicorn's fd= would not).
    server.run(sockets=[socket.socket(fileno=args.fd)] if args.fd is not None else None)


if __name__ == "__main__":
    main()
