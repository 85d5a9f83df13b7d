"""A small HTTP/1.1 server layer on asyncio and httptools, for the gateway.

It parses requests with httptools (the C parser uvicorn uses), buffers their bodies, hands
each to one ``handler(request, loopback)`` coroutine and writes the answers back in order,
pipelined requests included, with keep-alive. Nothing else: no ASGI, no streaming, no
upgrades, which is what makes it cheap enough to sit in front of a model server.

A client costs at most what :class:`Limits` allows. A request past a size limit is answered
at once (414, 431, 413) without reading further, and the connection closed. Header bytes are
counted before they reach the parser: httptools joins a header's pieces with ``+=``, so a
huge header fed in many pieces would cost quadratic time. Deadlines (headers, body, idle
keep-alive) are fields of the connection set as a request moves on, and one sweep every
half second closes the connections past theirs: no timer per request on the hot path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

import httptools

__all__ = ["MAX_BODY", "Answer", "HTTPServer", "Headers", "Limits", "Request", "json_answer"]

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Headers, bytes]  # status, headers, body
# The model server's own limit: a bigger body would only be refused there, after costing memory here.
MAX_BODY = 10 * 1024 * 1024
MAX_PIPELINED = 32
LOOPBACK = frozenset({"127.0.0.1", "::1"})
POLL_SECONDS = 0.05
SWEEP_SECONDS = 0.5
NEVER = float("inf")  # the deadline of a connection waiting on us, not on its client
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}

log = logging.getLogger("shipyard.gateway")


@dataclass(frozen=True)
class Limits:
    """What one client may cost; past a limit it gets an error answer and is disconnected."""

    max_target: int = 8 * 1024  # bytes of the request target (414)
    max_head: int = 64 * 1024  # bytes of the request line and headers together (431)
    max_headers: int = 100  # header fields (431)
    max_body: int = MAX_BODY  # bytes (413)
    header_timeout: float = 10.0  # seconds from connecting (or a request's first byte) to headers
    body_timeout: float = 30.0  # seconds from the headers to the end of the body
    idle_timeout: float = 15.0  # seconds a keep-alive connection may wait for its next request
    max_connections: int = 1024  # open client connections; one more gets 503


class Phase(Enum):
    """Where a connection is in reading its current request; each phase has its deadline."""

    HEAD = "head"  # connected, or a request began: headers due by header_timeout
    BODY = "body"  # headers read: the body is due by body_timeout
    ANSWERING = "answering"  # the request is whole: ours to answer, no deadline for the client
    IDLE = "idle"  # every request answered: the next is due by idle_timeout


# Module-level names for the hot path: an Enum member costs about 0.2 us per lookup on 3.11.
HEAD, BODY, ANSWERING, IDLE = Phase.HEAD, Phase.BODY, Phase.ANSWERING, Phase.IDLE


class _Rejected(Exception):
    """Raised in a parser callback to stop parsing a request that was answered already."""


class Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "rejection", "target")

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes,
        keep_alive: bool,
        rejection: Answer | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.rejection = rejection  # answered with this, never handed to the handler


Handler = Callable[[Request, bool], Awaitable[Answer]]


def json_answer(status: int, payload: Any, headers: Headers | None = None) -> Answer:
    return (
        status,
        [(b"content-type", b"application/json"), *(headers or [])],
        json.dumps(payload).encode(),
    )


class HTTPServer:
    """Makes a protocol per client connection; counts requests in flight for a clean stop."""

    def __init__(self, handler: Handler, limits: Limits | None = None) -> None:
        self.handler = handler
        self.limits = limits or Limits()
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self.in_flight = 0

    def connection(self) -> ClientConnection:
        return ClientConnection(self)

    async def sweep_forever(self) -> None:
        """Close the connections past their deadline, twice a second."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for connection in [c for c in self.connections if c.deadline < now]:
                connection.expire()

    async def drain(self, seconds: float) -> None:
        """Let requests in flight finish (at most ``seconds``), then close idle connections."""
        self.draining = True
        deadline = time.monotonic() + seconds
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
        for connection in list(self.connections):
            if connection.idle:
                connection.close()


class ClientConnection(asyncio.Protocol):
    """One client connection: parse requests, answer them in order (pipelining included)."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.loopback = False
        self.pending: deque[Request] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.closing = False
        self.rejected = False  # answered with an error: nothing more is read
        self.writing_paused = False  # the client reads its answers slower than it asks
        self.phase = HEAD
        self.deadline = time.monotonic() + self.limits.header_timeout
        self.head_size = 0  # bytes of the current request's head fed to the parser so far
        self._reset()

    def _reset(self) -> None:
        self.url: list[bytes] = []
        self.url_size = 0
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.size = 0

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        if len(self.server.connections) >= self.limits.max_connections:
            message = f"the gateway serves {self.limits.max_connections} connections at most"
            self._write(*json_answer(503, {"error": message}), keep_alive=False)
            self.close()
            return
        peer = transport.get_extra_info("peername")
        self.loopback = bool(peer) and peer[0] in LOOPBACK
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()

    def pause_writing(self) -> None:
        # Answers pile up unread: stop reading requests until the client catches up.
        self.writing_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._resume_reading()

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase is not BODY:
            if phase is not HEAD:  # these bytes begin the next request: its head is due
                self.phase = HEAD
                self.deadline = time.monotonic() + self.limits.header_timeout
            if self.head_size + len(data) > self.limits.max_head:
                self._feed_up_to_the_limit(data)
                return
            self.head_size += len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_error(exc)

    def _feed_up_to_the_limit(self, data: bytes) -> None:
        """Feed the head only up to its limit, so that no byte past it is ever parsed."""
        room = self.limits.max_head - self.head_size
        self.head_size += room
        try:
            self.parser.feed_data(data[:room])
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_error(exc)
        if self.rejected:
            return
        if self.phase is HEAD:
            self._reject(431, f"the request line and headers are over {self.limits.max_head} bytes")
        else:  # the head ended within the limit: the rest is its body or the next request
            self.data_received(data[room:])

    def _parse_error(self, exc: Exception) -> None:
        if self.rejected:  # a callback stopped the parser, having answered already
            return
        if isinstance(exc, httptools.HttpParserUpgrade):
            self._reject(400, "protocol upgrades are not supported")
        else:
            self._reject(400, f"invalid HTTP request: {exc}")

    # -- httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url_size += len(url)
        if self.url_size > self.limits.max_target:
            self._reject(414, f"the request target is over {self.limits.max_target} bytes")
            raise _Rejected
        self.url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))  # how many: counted once they are all in

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.limits.max_headers:
            self._reject(431, f"a request has {self.limits.max_headers} header fields at most")
            raise _Rejected
        self.phase = BODY
        self.deadline = time.monotonic() + self.limits.body_timeout
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length":
                # Refused before the body is read (on_body counts all the same); a length of
                # under 8 digits is below the default limit and costs nothing to skip.
                if len(value) > 7 and value.isdigit():
                    self._check_body_size(int(value))
            elif lower == b"expect" and value.lower() == b"100-continue":
                assert self.transport is not None
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _check_body_size(self, size: int) -> None:
        if size > self.limits.max_body:
            self._reject(413, f"the body is larger than {self.limits.max_body} bytes")
            raise _Rejected

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        self._check_body_size(self.size)  # chunked bodies announce no size
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        keep_alive = self.parser.should_keep_alive() and not self.server.draining
        target = b"".join(self.url)
        request = Request(method, target, self.headers, b"".join(self.chunks), keep_alive)
        self._reset()
        self.phase = ANSWERING
        self.deadline = NEVER
        self.head_size = 0
        self._queue(request)

    # -- answering
    def _queue(self, request: Request) -> None:
        self.pending.append(request)
        if len(self.pending) > MAX_PIPELINED and self.transport is not None:
            self.transport.pause_reading()
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._drain())

    def _reject(self, status: int, message: str) -> None:
        """Answer ``status`` after the requests before this one, then close; read no more."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self.phase, self.deadline = ANSWERING, NEVER
        self.rejected = True
        rejection = json_answer(status, {"error": message})
        self._queue(Request("", b"", [], b"", keep_alive=False, rejection=rejection))

    async def _drain(self) -> None:
        while self.pending and not self.closing:
            request = self.pending.popleft()
            self.server.in_flight += 1
            try:
                status, headers, body = await self._answer(request)
            except Exception:
                log.exception("internal error on %s %r", request.method, request.target)
                status, headers, body = json_answer(500, {"error": "internal gateway error"})
            finally:
                self.server.in_flight -= 1
            self._write(status, headers, body, request.keep_alive, request.method == "HEAD")
            if not request.keep_alive:
                self.close()
                return
            self._resume_reading()
        if self.phase is ANSWERING:
            self.phase = IDLE
            self.deadline = time.monotonic() + self.limits.idle_timeout

    def _resume_reading(self) -> None:
        busy = len(self.pending) > MAX_PIPELINED // 2 or self.writing_paused
        if self.transport is not None and not busy and not self.rejected:
            self.transport.resume_reading()

    async def _answer(self, request: Request) -> Answer:
        if request.rejection is not None:
            return request.rejection
        return await self.server.handler(request, self.loopback)

    def _write(
        self, status: int, headers: Headers, body: bytes, keep_alive: bool, head: bool = False
    ) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = REASONS.get(status, b"")
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        parts.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", b"" if head else body]
        self.transport.write(b"".join(parts))

    def expire(self) -> None:
        """Past the deadline: a request still arriving gets 408; an idle connection just closes."""
        if self.phase in (HEAD, BODY) and not self.pending:
            what = "header" if self.phase is HEAD else "body"
            message = f"the request did not arrive within the {what} timeout"
            self._write(*json_answer(408, {"error": message}), keep_alive=False)
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    @property
    def idle(self) -> bool:
        return not self.pending and (self.worker is None or self.worker.done())
