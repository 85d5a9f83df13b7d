"""Adaptive batching: the requests that wait together share one ``predict`` call.

``predict`` runs on the event loop (for the small inputs of online serving a hop to a thread
costs more than the prediction, and the GIL would serialize predictions anyway). While one
batch predicts, the loop cannot read, so the requests that arrive meanwhile queue up; the next
batch takes all of them, up to ``max_rows`` rows. That is what makes it adaptive: one client
gets no added wait (a lone request goes out on the next loop turn), sixteen concurrent clients
get batches of about sixteen, and the fixed cost of a predict call (input validation, array
building, the library's own checks) is paid once per batch instead of once per request.

``max_wait`` > 0 additionally holds a batch that is not full for up to that long, for
open-loop traffic that arrives spread out; it is 0 by default because closed-loop clients
(the common case: each waits for its answer before sending the next) never fill a batch by
waiting, they only see the wait added to their latency.

A batch whose predict raises is split: every request is predicted alone, so only the request
that broke it gets the error. ``max_rows`` <= 1 turns batching off: each request predicts
inline, with no queue at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Predict = Callable[[list[Any]], list[Any]]  # one output per input row, or it raises


@dataclass
class Waiting:
    rows: list[Any]
    future: asyncio.Future[list[Any]]


class Batcher:
    def __init__(
        self,
        predict: Predict,
        max_rows: int,
        max_wait: float,
        observe: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.observe = observe  # rows per predict call, for the metrics
        self._waiting: deque[Waiting] = deque()
        self._rows = 0
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.max_rows > 1

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, rows: list[Any]) -> list[Any]:
        """The outputs for ``rows``; raises what the model raised for them."""
        if self._task is None:
            self.observe(len(rows))
            return self.predict(rows)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append(Waiting(rows, future))
        self._rows += len(rows)
        self._arrived.set()
        if self._rows >= self.max_rows:
            self._full.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if self.max_wait > 0 and self._rows < self.max_rows:
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
            batch = self._take()
            self._dispatch(batch)
            # Let the answered handlers send their responses and new requests be read before
            # the next predict blocks the loop again.
            await asyncio.sleep(0)

    def _take(self) -> list[Waiting]:
        batch = [self._waiting.popleft()]
        rows = len(batch[0].rows)
        while self._waiting and rows + len(self._waiting[0].rows) <= self.max_rows:
            rows += len(self._waiting[0].rows)
            batch.append(self._waiting.popleft())
        self._rows -= rows
        if not self._waiting:
            self._arrived.clear()
        if self._rows < self.max_rows:
            self._full.clear()
        return batch

    def _dispatch(self, batch: list[Waiting]) -> None:
        live = [waiting for waiting in batch if not waiting.future.done()]  # cancelled: gone
        if len(live) == 1:
            self._settle(live[0])
            return
        if not live:
            return
        rows = [row for waiting in live for row in waiting.rows]
        try:
            self.observe(len(rows))
            outputs = self.predict(rows)
        except Exception:
            for waiting in live:  # find the request that broke the batch
                self._settle(waiting)
            return
        start = 0
        for waiting in live:
            end = start + len(waiting.rows)
            waiting.future.set_result(outputs[start:end])
            start = end

    def _settle(self, waiting: Waiting) -> None:
        try:
            self.observe(len(waiting.rows))
            waiting.future.set_result(self.predict(waiting.rows))
        except Exception as exc:
            waiting.future.set_exception(exc)
