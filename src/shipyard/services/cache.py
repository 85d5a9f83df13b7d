"""Read models remembered until the store changes: the API's hot reads cost one tiny query.

Every change to the store writes an event in the same transaction (``Store.record``), so the
newest event's id is a change counter: a view computed at generation N is current for as long
as the newest event is still N. Entries also age out after ``ttl`` seconds, so what is not an
event (a token's last use) is refreshed now and then, and the cache holds at most ``size``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from shipyard.store import Store

__all__ = ["ViewCache"]

T = TypeVar("T")


class ViewCache:
    def __init__(self, store: Store, *, size: int = 512, ttl: float = 30.0) -> None:
        self.store, self.size, self.ttl = store, size, ttl
        self._entries: OrderedDict[Hashable, tuple[int, float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        generation = self.store.generation()
        hit, found = self._current(key, generation)
        if hit:
            return found  # type: ignore[no-any-return]
        value = compute()
        self.put(key, generation, value)
        return value

    def fresh(self, key: Hashable) -> Any | None:
        """The value kept for ``key`` if it is still current, else None; never computes.

        For callers that must not block on a computation (an event loop): they ask here
        first and compute elsewhere on a miss.
        """
        hit, found = self._current(key, self.store.generation())
        return found if hit else None

    def _current(self, key: Hashable, generation: int) -> tuple[bool, Any]:
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == generation and found[1] > time.monotonic():
                self._entries.move_to_end(key)
                return True, found[2]
        return False, None

    def put(self, key: Hashable, generation: int, value: Any) -> None:
        with self._lock:
            self._entries[key] = (generation, time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
