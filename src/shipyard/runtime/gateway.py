"""The gateway: one port per environment that splits traffic between model versions.

Run as ``python -m shipyard.runtime.gateway --routes routes.json (--port P | --fd FD)``.

The routes file (format in ``routes.py``) is the desired state, written atomically by
:meth:`LocalRuntime.set_routes`. A background task looks at the file's identity (inode,
mtime, size) every 50 ms and swaps the whole table at once when it changes; the request path
never touches the disk. The gateway reports the generation it serves at
``/_shipyard/health``, which is how a writer knows its change is in force.

Per request, in order: a ``x-shipyard-version`` header naming a version pins it (the stable
version for anyone, another only with the environment's ``x-shipyard-pin-token``: 403
otherwise); a configured sticky header (``x-shipyard-key``) hashes its value onto the weights,
so one key keeps its version while the weights stand; otherwise a weighted random choice. Only
backends believed ready are chosen: each is probed at ``/v2/health/ready`` twice a second, and
one that refuses a connection or dies before answering is taken out at once (and the request
retried on another version, the standby included), so a request never waits on a dead model
server. A configured shadow gets a copy of a share of the requests in the background; its
answer and its failures never reach the client.

HTTP is spoken by ``http11.py`` (an asyncio protocol with httptools' parser, uvloop when
installed) towards clients and by ``upstream.py`` (keep-alive connections) towards the model
servers: an ASGI server plus a general HTTP client cost about 1.7 ms of CPU per proxied
request, far more than the model server's own work; these two cost about 0.1 ms. Bodies are
buffered both ways (model requests and answers are small).

Statistics per version (requests, errors, latencies, and predicted values while two versions
are compared) cover one observation window; a new ``window`` name starts them afresh. The
judge reads them at ``/_shipyard/stats``; only answers of 5xx and no answer at all count as
errors, so a client's bad inputs (4xx) never fail a canary. Admin endpoints, and the model
servers' own ``/metrics``, answer loopback clients only.

Clients are bounded by :class:`http11.Limits`, set on the command line (``--max-connections``,
``--header-timeout``, ``--body-timeout``, ``--idle-timeout``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from shipyard.runtime.http11 import Answer, Headers, HTTPServer, Limits, Request
from shipyard.runtime.http11 import json_answer as http_json
from shipyard.runtime.interface import PIN_TOKEN_HEADER, VERSION_HEADER, Backend, VersionStats
from shipyard.runtime.routes import RouteTable, Shadow, load_routes, sticky_point
from shipyard.runtime.upstream import Response, Upstream, UpstreamError

__all__ = ["Gateway", "RouteTable", "Shadow", "load_routes", "main"]

POLL_SECONDS = 0.05
PROBE_SECONDS = 0.5
PROBE_TIMEOUT = 2.0
SHADOW_TIMEOUT = 10.0
MAX_SHADOWS_IN_FLIGHT = 64
MAX_LATENCIES = 20_000
MAX_PREDICTION_VALUES = 20_000
MAX_PARSED_BODY = 64 * 1024
DRAIN_SECONDS = 10.0
ADMIN_PREFIX = b"/_shipyard/"
# A reverse proxy on this machine connects from loopback on behalf of remote clients; what it
# forwards is a client's request, not this machine's, so it gets no admin view.
PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})
VERSION_KEY = VERSION_HEADER.encode()
PIN_TOKEN_KEY = PIN_TOKEN_HEADER.encode()
INTERNAL_PATHS = frozenset({b"/metrics"})  # the model server's own, for this machine only
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
        b"expect",
        VERSION_KEY,
        PIN_TOKEN_KEY,
    }
)

log = logging.getLogger("shipyard.gateway")


@dataclass(slots=True)
class Steering:
    """What a request's headers ask of the gateway; none of it is forwarded."""

    pinned: str | None = None
    sticky: bytes | None = None
    pin_token: bytes | None = None


class WindowStats:
    """Mutable statistics of one version; snapshots become :class:`VersionStats`."""

    __slots__ = ("errors", "latencies_ms", "predictions", "requests")

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
        if not isinstance(predictions, list):
            return
        counts = self.predictions
        for value in predictions:
            if isinstance(value, list) and len(value) == 1:
                value = value[0]  # a one-output model answering [[y], ...]
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                key = str(value)
                if key in counts:
                    counts[key] += 1
                elif len(counts) < MAX_PREDICTION_VALUES:
                    counts[key] = 1

    def snapshot(self) -> VersionStats:
        return VersionStats(
            self.requests, self.errors, list(self.latencies_ms), dict(self.predictions)
        )


class Gateway:
    """Routing, forwarding and statistics; :class:`_ClientConnection` speaks HTTP for it."""

    def __init__(self, routes_path: Path) -> None:
        self.routes_path = routes_path
        self.table = RouteTable()
        self.not_ready: set[str] = set()  # backend URLs
        self.choice = self.table.choice(self.not_ready)
        self.stats: dict[str, WindowStats] = {}
        self.file_identity: tuple[int, int, int] | None = None
        self.upstream = Upstream()
        self.probes = Upstream(timeout=PROBE_TIMEOUT)
        self.shadows: set[asyncio.Task[None]] = set()
        self.in_flight = 0

    # --- routes and readiness ----------------------------------------------------------------

    def reload(self) -> bool:
        """Swap in the routes file if it changed; True when a new table was loaded."""
        try:
            info = os.stat(self.routes_path)
        except OSError:
            return False
        identity = (info.st_ino, info.st_mtime_ns, info.st_size)
        if identity == self.file_identity:
            return False
        self.file_identity = identity
        try:
            table = load_routes(self.routes_path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error(
                "keeping generation %d: %s is invalid: %s",
                self.table.generation,
                self.routes_path,
                exc,
            )
            return False
        if table.window != self.table.window:
            self.stats = {}
        for gone in self.table.urls() - table.urls():
            self.upstream.forget(gone)
            self.not_ready.discard(gone)
        self.table = table
        self.choice = table.choice(self.not_ready)
        log.info("serving generation %d: %s", table.generation, table.to_dict()["backends"])
        return True

    def set_ready(self, url: str, ready: bool) -> None:
        if ready == (url not in self.not_ready):
            return
        if ready:
            self.not_ready.discard(url)
        else:
            self.not_ready.add(url)
        self.choice = self.table.choice(self.not_ready)
        log.warning("backend %s is %s", url, "ready again" if ready else "NOT ready")

    async def watch_routes(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if self.reload():
                    await self.probe_all()
            except Exception:  # a dead watcher would freeze the routes: log and keep watching
                log.exception("could not reload %s", self.routes_path)

    async def probe_forever(self) -> None:
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            try:
                await self.probe_all()
            except Exception:
                log.exception("readiness probes failed")

    async def probe_all(self) -> None:
        urls = sorted(self.table.urls())
        results = await asyncio.gather(*(self.probe(url) for url in urls))
        for url, ready in zip(urls, results, strict=True):
            if url in self.table.urls():  # the table may have changed meanwhile
                self.set_ready(url, ready)

    async def probe(self, url: str) -> bool:
        try:
            response = await self.probes.request(url, "GET", "/v2/health/ready", [], b"")
        except UpstreamError:
            return False
        return response.status == 200

    # --- the hot path ------------------------------------------------------------------------

    async def handle(self, request: Request) -> Answer:
        if request.target.startswith(ADMIN_PREFIX):
            return json_answer(404, {"error": "not found"})  # admin, from a remote client
        headers, steering = self.forwarded_headers(request.headers)
        table, choice = self.table, self.choice
        pinned, sticky = steering.pinned, steering.sticky
        if pinned is not None:
            backend = table.by_version.get(pinned)
            if backend is None:
                known = ", ".join(table.by_version) or "none"
                message = f"version {pinned!r} is not deployed here; known versions: {known}"
                return json_answer(404, {"error": message})
            if not table.may_pin(backend, steering.pin_token):
                return refuse_pin(backend, table)
            if backend.url in self.not_ready:
                return json_answer(503, {"error": f"version {pinned} is not ready"}, pinned)
        else:
            backend = choice.pick(sticky_point(sticky) if sticky is not None else None)
        if backend is None:
            return self.nothing_to_route(table)
        if table.shadow is not None and random.random() * 100 < table.shadow.percent:
            self.mirror(table.shadow, request, headers)
        return await self.forward(request, headers, backend, table, retry=pinned is None)

    def nothing_to_route(self, table: RouteTable) -> Answer:
        if any(b.weight > 0 for b in table.backends):
            return json_answer(503, {"error": "no version in this environment is ready"})
        return json_answer(503, {"error": "no version is deployed in this environment"})

    async def forward(
        self,
        request: Request,
        headers: Headers,
        backend: Backend,
        table: RouteTable,
        *,
        retry: bool,
    ) -> Answer:
        stats = self.stats.get(backend.version)
        if stats is None:
            stats = self.stats[backend.version] = WindowStats()
        target = request.target.decode("latin-1")
        started = time.perf_counter()
        try:
            response = await self.upstream.request(
                backend.url, upstream_method(request), target, headers, request.body
            )
        except UpstreamError as exc:
            stats.record(None, (time.perf_counter() - started) * 1000)
            if exc.retryable:
                self.set_ready(backend.url, False)
                other = self.choice.without(backend.version).pick() if retry else None
                if other is not None:
                    return await self.forward(request, headers, other, table, retry=False)
            status = 504 if exc.timeout else 502
            message = f"version {backend.version} did not answer: {exc}"
            return json_answer(status, {"error": message}, backend.version)
        stats.record(response.status, (time.perf_counter() - started) * 1000)
        if table.compares and response.status == 200:
            self.observe(stats, response)
        return response.status, response_headers(response, backend.version), response.body

    @staticmethod
    def observe(stats: WindowStats, response: Response) -> None:
        if len(response.body) < MAX_PARSED_BODY:
            content_type = response.header(b"content-type") or b""
            if b"json" in content_type:
                stats.count_predictions(response.body)

    def mirror(self, shadow: Shadow, request: Request, headers: Headers) -> None:
        """Send a copy to the shadow in the background; the client never waits for it."""
        if len(self.shadows) >= MAX_SHADOWS_IN_FLIGHT:
            return  # a slow shadow must not pile up work: skip, it is a sample anyway
        task = asyncio.get_running_loop().create_task(self._shadow(shadow, request, headers))
        self.shadows.add(task)
        task.add_done_callback(self.shadows.discard)

    async def _shadow(self, shadow: Shadow, request: Request, headers: Headers) -> None:
        stats = self.stats.get(shadow.version)
        if stats is None:
            stats = self.stats[shadow.version] = WindowStats()
        started = time.perf_counter()
        target = request.target.decode("latin-1")
        try:
            response = await self.upstream.request(
                shadow.url,
                upstream_method(request),
                target,
                headers,
                request.body,
                timeout=SHADOW_TIMEOUT,
            )
        except UpstreamError:
            stats.record(None, (time.perf_counter() - started) * 1000)
            return
        stats.record(response.status, (time.perf_counter() - started) * 1000)
        if response.status == 200:
            self.observe(stats, response)

    def forwarded_headers(self, raw: Headers) -> tuple[Headers, Steering]:
        """End-to-end headers to pass on, and what the others ask of the gateway."""
        steering = Steering()
        sticky_name = self.table.sticky_header
        sticky_key = sticky_name.encode() if sticky_name else None
        connection_tokens: set[bytes] = set()
        headers = []
        for name, value in raw:
            lower = name.lower()
            if lower == VERSION_KEY:
                steering.pinned = value.decode("latin-1").strip()
            elif lower == PIN_TOKEN_KEY:
                steering.pin_token = value.strip()
            elif lower == b"connection":
                connection_tokens.update(t.strip().lower() for t in value.split(b","))
            elif lower not in HOP_BY_HOP:
                if lower == sticky_key:
                    steering.sticky = value
                headers.append((name, value))
        if connection_tokens:
            headers = [(n, v) for n, v in headers if n.lower() not in connection_tokens]
        return headers, steering

    # --- admin -------------------------------------------------------------------------------

    def admin(self, request: Request) -> Answer:
        path = request.target.split(b"?", 1)[0]
        if request.method != "GET":
            return json_answer(404, {"error": "not found"})
        if path == b"/_shipyard/health":
            backends = [
                {**b, "ready": b["url"] not in self.not_ready}
                for b in self.table.to_dict()["backends"]
            ]
            table = self.table.to_dict()
            # Whether pins need a token, never the token's digest: a short token could be guessed from it.
            table["pin_token"] = table.pop("pin_token_sha256", None) is not None
            body = {**table, "backends": backends, "pid": os.getpid()}
            return json_answer(200, body)
        if path == b"/_shipyard/stats":
            versions = {v: s.snapshot().to_dict() for v, s in self.stats.items()}
            body = {"generation": self.table.generation, "window": self.table.window}
            return json_answer(200, {**body, "versions": versions})
        return json_answer(404, {"error": f"no admin endpoint {path.decode('latin-1')}"})


def json_answer(status: int, payload: Any, version: str | None = None) -> Answer:
    return http_json(status, payload, [(VERSION_KEY, version.encode())] if version else None)


def refuse_pin(backend: Backend, table: RouteTable) -> Answer:
    stable = (
        f"; the stable version {table.stable.version} may be pinned freely" if table.stable else ""
    )
    message = (
        f"pinning version {backend.version} needs the pin token: pinning to a version that is "
        f"not the stable one takes a {PIN_TOKEN_HEADER} header{stable}"
    )
    return json_answer(403, {"error": message})


def proxied(request: Request) -> bool:
    """Whether a proxy sent ``request`` on behalf of another client."""
    return any(name.lower() in PROXY_HEADERS for name, _ in request.headers)


def internal(target: bytes) -> bool:
    """Whether ``target`` names a model server's internal endpoint, however it is spelled."""
    path = unquote_to_bytes(target.split(b"?", 1)[0])
    return path.rstrip(b"/") in INTERNAL_PATHS


def upstream_method(request: Request) -> str:
    # A HEAD answer announces a body it does not send, which a buffering client cannot frame;
    # the backend is asked for the whole answer and the client gets its headers only.
    return "GET" if request.method == "HEAD" else request.method


def response_headers(response: Response, version: str) -> Headers:
    headers = [(n, v) for n, v in response.headers if n.lower() not in HOP_BY_HOP]
    headers.append((VERSION_KEY, version.encode()))
    return headers


class GatewayServer:
    """The listening socket, the background tasks, and a graceful stop on SIGTERM."""

    def __init__(self, gateway: Gateway, limits: Limits | None = None) -> None:
        self.gateway = gateway
        self.http = HTTPServer(self.answer, limits)

    async def answer(self, request: Request, loopback: bool) -> Answer:
        if loopback and not proxied(request):
            if request.target.startswith(ADMIN_PREFIX):
                return self.gateway.admin(request)
        elif internal(request.target):
            return json_answer(404, {"error": "not found"})
        return await self.gateway.handle(request)

    async def serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.gateway.reload()
        server = await loop.create_server(self.http.connection, sock=sock)
        stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        tasks = [
            loop.create_task(self.gateway.watch_routes()),
            loop.create_task(self.gateway.probe_forever()),
            loop.create_task(self.http.sweep_forever()),
        ]
        await self.gateway.probe_all()
        log.info("gateway %d listening on %s", os.getpid(), sock.getsockname())
        await stopped.wait()
        server.close()  # no new connections; the requests in flight are answered
        await self.http.drain(DRAIN_SECONDS)
        for task in tasks:
            task.cancel()
        self.gateway.upstream.close()
        self.gateway.probes.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Shipyard's traffic-splitting gateway.")
    parser.add_argument("--routes", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--fd", type=int, help="serve on this already-bound socket")
    default = Limits()
    for option, value, text in (
        ("--max-connections", default.max_connections, "open client connections; more get 503"),
        ("--header-timeout", default.header_timeout, "seconds for a request's headers"),
        ("--body-timeout", default.body_timeout, "seconds for a body after its headers"),
        ("--idle-timeout", default.idle_timeout, "seconds a keep-alive connection may idle"),
    ):
        kind = positive(type(value))
        parser.add_argument(option, type=kind, default=value, help=f"{text} ({value})")
    args = parser.parse_args(argv)
    limits = Limits(
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        idle_timeout=args.idle_timeout,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.fd is not None:
        # socket(fileno=...) detects AF_INET, so the event loop sets TCP_NODELAY on clients.
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server((args.host, args.port), reuse_port=False)
    sock.listen(1024)
    gateway = Gateway(args.routes.resolve())
    run(GatewayServer(gateway, limits).serve(sock))


def positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return value

    return parse


def run(main_coroutine: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(main_coroutine)


if __name__ == "__main__":
    main()
