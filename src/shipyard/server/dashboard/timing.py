"""``Server-Timing: app;dur=<ms>`` on every dashboard response: how long the server took from
the request's arrival to the start of its response (the page's data and its rendering), so a
browser's developer tools and ``benchmarks/dashboard.py`` read the server's share apart from
the network's."""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ServerTiming"]


class ServerTiming:
    """Times HTTP requests except those whose path starts with one of ``skip``."""

    def __init__(self, app: ASGIApp, skip: tuple[str, ...] = ()) -> None:
        self.app, self.skip = app, skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                spent = (time.perf_counter() - started) * 1000
                MutableHeaders(scope=message).append("server-timing", f"app;dur={spent:.1f}")
            await send(message)

        await self.app(scope, receive, timed)
