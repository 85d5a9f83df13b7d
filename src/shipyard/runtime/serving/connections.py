"""Limits on what one client connection may send before its request reaches the app.

uvicorn's httptools protocol has none for the request head: llhttp parses a header of any
size, and httptools gathers a header split across reads with ``bytes +=`` (quadratic), so
one client streaming a 100 MB header held the event loop for everyone. Its h11 protocol has
a single limit (``h11_max_incomplete_event_size``, answered 400) and costs throughput. This
protocol keeps httptools and adds, per request head:

* the request line (the URL) at most :data:`MAX_REQUEST_LINE` bytes, else 414;
* at most :data:`MAX_HEADERS` headers and :data:`MAX_HEAD_BYTES` bytes of them, else 431,
  checked on every read, so no more than one read past the limit is ever parsed;
* the head complete within :data:`HEAD_SECONDS` of the connection's start or of its first
  byte, else 408 (a connection that sent nothing is closed without an answer);
* the body complete within :data:`BODY_SECONDS` of the head, else the connection is closed
  (the app is already reading it, so it answers 408 as the client is gone).

The answer is sent and the connection closed without reading further. The timers run only
while a head or body is incomplete at the end of a read, so a request that arrives whole costs
none (``asyncio.timeout`` around every body read cost a fifth of the throughput at -c64). Idle
keep-alive connections and the connection limit (503 past it) are uvicorn's own settings.
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
HEAD_SECONDS = 10.0
BODY_SECONDS = 30.0  # from the end of the head to the end of the body


class Refused(Exception):
    """Raised from a parser callback to stop parsing: the answer is already sent."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_head = False  # a request head has begun and is not complete
        self.head_bytes = 0  # bytes of the reads that began and ended inside the current head
        self.heads = 0  # request heads completed on this connection
        self.refused = False
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.start_head_timer()  # the first head is due from the start

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_head_timer()
        self.stop_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        was_in_head, heads = self.in_head, self.heads
        super().data_received(data)
        if self.refused:
            return
        if not self.in_head:
            if self.cycle is not None and self.cycle.more_body and self.body_timer is None:
                self.body_timer = self.loop.call_later(BODY_SECONDS, self.body_timed_out)
            return
        # Counted after parsing, so a read holding a small head and a large body (or whole
        # requests) is not a large head; a head that arrives in one read costs no timer.
        if was_in_head and self.heads == heads:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES:
                self.refuse(431, f"the request headers are over {MAX_HEAD_BYTES} bytes")
                return
        self.start_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = 0

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.heads += 1
        self.stop_head_timer()
        # The head is whole, and at most one read past MAX_HEAD_BYTES: checked here rather
        # than per header, which would cost every request a Python call per header.
        refusal = head_refusal(self.url, self.headers)
        if refusal:
            self.refuse(*refusal)
            raise Refused  # stops the parser: the app never sees this request
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.stop_body_timer()
        super().on_message_complete()

    def stop_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def body_timed_out(self) -> None:
        self.body_timer = None
        self.logger.warning("closing a connection whose body took over %g s", BODY_SECONDS)
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if not self.refused:  # a callback raised Refused: the answer is already sent
            super().send_400_response(msg)

    def start_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(HEAD_SECONDS, self.head_timed_out)

    def stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.in_head:
            self.refuse(408, f"the request headers did not arrive within {HEAD_SECONDS:g} s")
        elif self.heads == 0:
            self.transport.close()  # connected and sent nothing: nobody to answer

    def refuse(self, status: int, reason: str) -> None:
        self.refused = True
        self.stop_head_timer()
        body = json.dumps({"error": reason}).encode()
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def head_refusal(url: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, str] | None:
    if len(url) > MAX_REQUEST_LINE:
        return 414, f"the request URL is over {MAX_REQUEST_LINE} bytes"
    if len(headers) > MAX_HEADERS:
        return 431, f"the request has more than {MAX_HEADERS} headers"
    if sum(len(name) + len(value) + 4 for name, value in headers) > MAX_HEAD_BYTES:
        return 431, f"the request headers are over {MAX_HEAD_BYTES} bytes"
    return None
