"""Posting notices to one receiver: its own thread, a bounded queue, retries with backoff.

Each target has a :class:`Courier`, so a receiver that is down or slow holds up only its own
notices; handing one over never blocks (a full queue drops the notice and says so in the
server's log), so nothing a receiver does can slow a run or fail it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["BACKOFF", "Courier", "Delivery", "redacted"]

log = logging.getLogger("shipyard.notify")

BACKOFF = (0.5, 1.0, 2.0, 4.0)  # seconds before the 2nd..5th attempt: 5 attempts in all
TIMEOUT = 5.0  # seconds per POST
QUEUE_SIZE = 200


@dataclass(frozen=True)
class Delivery:
    body: dict[str, Any]
    kind: str  # the notice's kind: "run.failed"
    subject: str  # what it is about: "iris#4"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.subject}"


Outcome = Callable[[Delivery, int, str | None], None]  # (delivery, attempts, error or None)


def redacted(url: str) -> str:
    """``url`` fit for a log: a chat's webhook URL carries its secret in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/..."


class Courier:
    """Delivers to ``url`` in order, each notice retried until it is taken or attempts run out."""

    def __init__(
        self,
        url: str,
        *,
        backoff: Sequence[float] = BACKOFF,
        timeout: float = TIMEOUT,
        on_done: Outcome | None = None,
    ) -> None:
        self.url, self.backoff, self.timeout = url, tuple(backoff), timeout
        self.on_done = on_done
        self._queue: queue.Queue[Delivery] = queue.Queue(maxsize=QUEUE_SIZE)
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self.shown = redacted(url)
        self._thread = threading.Thread(target=self._work, name=f"notify {self.shown}", daemon=True)
        self._thread.start()

    def send(self, delivery: Delivery) -> bool:
        """Hand ``delivery`` over without waiting; False when the queue is full (dropped)."""
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            log.warning("notifications to %s are backed up; dropped %s", self.shown, delivery.label)
            return False
        return True

    def close(self, wait: float = 0.0) -> None:
        self._stop.set()
        self._thread.join(wait)
        if not self._thread.is_alive():
            self._client.close()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                delivery = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            attempts, error = self._deliver(delivery)
            if self.on_done is not None:
                self.on_done(delivery, attempts, error)

    def _deliver(self, delivery: Delivery) -> tuple[int, str | None]:
        error: str | None = None
        for attempt, pause in enumerate((0.0, *self.backoff), start=1):
            if pause and self._stop.wait(pause):
                break
            error = self._post(delivery.body)
            if error is None:
                return attempt, None
            log.info(
                "notifying %s of %s: %s (attempt %d)", self.shown, delivery.label, error, attempt
            )
        log.warning("gave up notifying %s of %s: %s", self.shown, delivery.label, error)
        return attempt, error

    def _post(self, body: dict[str, Any]) -> str | None:
        """None when the receiver took it (2xx), else why not, in a few words."""
        try:
            response = self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return None
        return f"answered {response.status_code}"
