"""Builds the adapters for a state directory: the embedded defaults (ARCHITECTURE.md 1)."""

from __future__ import annotations

from pathlib import Path

from shipyard.adapters import Adapters
from shipyard.artifacts.local import LocalBlobStore
from shipyard.coordination.store import StoreLeases
from shipyard.executor.local import LocalExecutor
from shipyard.paths import StateDir, resolve_cache_dir, resolve_state_dir
from shipyard.processes import ProcessBook
from shipyard.runtime.local import LocalRuntime
from shipyard.store import Store


def open_adapters(
    state_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    *,
    create: bool = True,
) -> Adapters:
    """The adapters of a state directory; without ``create``, NotFound if it has no state."""
    root = resolve_state_dir(state_dir, must_exist=not create)
    state = StateDir(root, resolve_cache_dir(cache_dir)).ensure()
    blobs = LocalBlobStore(state.blobs)
    blobs.sweep()  # temporary files of writers that were killed mid-write
    store = Store(state.database_url)
    leases = StoreLeases(store)
    return Adapters(
        state=state,
        store=store,
        executor=LocalExecutor(state),
        runtime=LocalRuntime(ProcessBook(store, leases)),
        blobs=blobs,
        leases=leases,
    )
