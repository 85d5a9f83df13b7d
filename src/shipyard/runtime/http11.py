"""A small HTTP/1.1 server layer on asyncio and httptools, for the gateway.

It parses requests with httptools (the C parser uvicorn uses), buffers their bodies up to
``MAX_BODY``, hands each to one ``handler(request, loopback)`` coroutine and writes the
answers back in order, pipelined requests included, with keep-alive. Nothing else: no ASGI,
no streaming, no upgrades, which is what makes it cheap enough to sit in front of a model
server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httptools

__all__ = ["MAX_BODY", "Answer", "HTTPServer", "Headers", "Request", "json_answer"]

Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Headers, bytes]  # status, headers, body
MAX_BODY = 64 * 1024 * 1024
MAX_PIPELINED = 32
LOOPBACK = frozenset({"127.0.0.1", "::1"})
POLL_SECONDS = 0.05
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    413: b"Content Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}

log = logging.getLogger("shipyard.gateway")


class Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "target", "too_large")

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes,
        keep_alive: bool,
        too_large: bool = False,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.too_large = too_large


Handler = Callable[[Request, bool], Awaitable[Answer]]


def json_answer(status: int, payload: Any, headers: Headers | None = None) -> Answer:
    return (
        status,
        [(b"content-type", b"application/json"), *(headers or [])],
        json.dumps(payload).encode(),
    )


class HTTPServer:
    """Makes a protocol per client connection; counts requests in flight for a clean stop."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self.in_flight = 0

    def connection(self) -> ClientConnection:
        return ClientConnection(self)

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
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.loopback = False
        self.pending: deque[Request] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.closing = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.loopback = bool(peer) and peer[0] in LOOPBACK
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"invalid HTTP request: {exc}")

    # -- httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        for name, value in self.headers:
            if name.lower() == b"expect" and value.lower() == b"100-continue":
                assert self.transport is not None
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            self.too_large = True
            self.chunks = []
        elif not self.too_large:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        keep_alive = self.parser.should_keep_alive() and not self.server.draining
        body = b"".join(self.chunks) if not self.too_large else b""
        request = Request(method, self.url, self.headers, body, keep_alive, self.too_large)
        self._reset()
        self.pending.append(request)
        if len(self.pending) > MAX_PIPELINED and self.transport is not None:
            self.transport.pause_reading()
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._drain())

    # -- answering
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
            if self.transport is not None and len(self.pending) <= MAX_PIPELINED // 2:
                self.transport.resume_reading()

    async def _answer(self, request: Request) -> Answer:
        if request.too_large:
            return json_answer(413, {"error": f"the body is larger than {MAX_BODY} bytes"})
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

    def _fail(self, status: int, message: str) -> None:
        self._write(*json_answer(status, {"error": message}), keep_alive=False)
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    @property
    def idle(self) -> bool:
        return not self.pending and (self.worker is None or self.worker.done())
