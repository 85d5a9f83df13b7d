"""The gateway's client for its model servers: HTTP/1.1 keep-alive connections, nothing more.

A general client (httpx) cost the gateway about 0.8 ms of CPU per request; the gateway only
ever sends a buffered request to a loopback server it knows and reads a buffered answer, so
this one writes the request in one call and parses the answer with httptools (the C parser
uvicorn uses). Connections are kept per backend URL and reused.

Errors are :class:`UpstreamError`; ``retryable`` is true when no byte of an answer came back:
the connection was refused, a reused idle connection was closed, or the server died before
answering. Predictions are treated as idempotent, so such a request is sent again (to a
fresh connection, or by the gateway to another version) rather than failed: a model server
killed mid-request must not cost the client its answer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["Response", "Upstream", "UpstreamError"]

Headers = list[tuple[bytes, bytes]]
CONNECT_SECONDS = 5.0
MAX_IDLE_PER_BACKEND = 64


class UpstreamError(Exception):
    def __init__(self, message: str, *, retryable: bool, timeout: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.timeout = timeout


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.received = False
        self.closed = False
        self.reusable = False
        self.exchanges = 0  # answers read on this connection so far

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"invalid HTTP answer: {exc}", retryable=False))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.received:
            # Nothing of an answer arrived: the server closed an idle connection or died
            # before answering; the request may be sent again (see the module docstring).
            self._fail(UpstreamError("the connection was closed", retryable=True))
        else:
            self._fail(UpstreamError("the connection was closed mid-answer", retryable=False))

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        self.exchanges += 1
        self.reusable = self.parser.should_keep_alive()
        response = Response(self.parser.get_status_code(), self.headers, b"".join(self.chunks))
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # -- exchange
    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self.headers, self.chunks, self.received = [], [], False
        self.reusable = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def _fail(self, error: UpstreamError) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Upstream:
    """Keep-alive connections to backends, by base URL (``http://127.0.0.1:PORT``)."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.idle: dict[str, deque[_Connection]] = {}
        self.addresses: dict[str, tuple[str, int, bytes]] = {}

    async def request(
        self,
        base: str,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        *,
        timeout: float | None = None,
    ) -> Response:
        """Send one request; a stale idle connection is replaced transparently, once."""
        host, port, host_header = self._address(base)
        head = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1"), b"host: ", host_header]
        for name, value in headers:
            head += [b"\r\n", name, b": ", value]
        head.append(b"\r\ncontent-length: %d\r\n\r\n" % len(body))
        data = b"".join(head) + body
        connection = self._idle(base)
        if connection is not None:
            try:
                return await self._exchange(base, connection, data, timeout)
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
        connection = await self._connect(host, port)
        return await self._exchange(base, connection, data, timeout)

    async def _exchange(
        self, base: str, connection: _Connection, data: bytes, timeout: float | None
    ) -> Response:
        waiter = connection.send(data)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(timeout or self.timeout, _expire, waiter)
        try:
            response = await waiter
        except asyncio.CancelledError:
            connection.close()  # an answer may still come: the connection cannot be reused
            raise
        except UpstreamError:
            connection.close()
            raise
        finally:
            timer.cancel()
        if connection.reusable and not connection.closed:
            pool = self.idle.setdefault(base, deque())
            if len(pool) < MAX_IDLE_PER_BACKEND:
                pool.append(connection)
                return response
        connection.close()
        return response

    def _idle(self, base: str) -> _Connection | None:
        pool = self.idle.get(base)
        while pool:
            connection = pool.pop()
            transport = connection.transport
            if not connection.closed and transport is not None and not transport.is_closing():
                return connection
        return None

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(_Connection, host, port), CONNECT_SECONDS
            )
        except TimeoutError:
            raise UpstreamError("connecting timed out", retryable=True, timeout=True) from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc.strerror or exc}", retryable=True) from None
        return protocol

    def _address(self, base: str) -> tuple[str, int, bytes]:
        address = self.addresses.get(base)
        if address is None:
            parts = urlsplit(base)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            address = (host, port, parts.netloc.encode("latin-1"))
            self.addresses[base] = address
        return address

    def forget(self, base: str) -> None:
        """Close the idle connections to a backend that left the table."""
        for connection in self.idle.pop(base, ()):
            connection.close()
        self.addresses.pop(base, None)

    def close(self) -> None:
        for base in list(self.idle):
            self.forget(base)


def _expire(waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamError("no answer in time", retryable=False, timeout=True))
