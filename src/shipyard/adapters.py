"""The backends a run, a controller or a service works with (ARCHITECTURE.md 1).

One value bundles them; ``wiring.open_adapters`` builds the embedded defaults, tests build
in-memory twins. Nothing here knows which backend it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.artifacts.interface import BlobStore
from shipyard.coordination import Leases
from shipyard.executor.interface import Executor
from shipyard.paths import StateDir
from shipyard.runtime.interface import Runtime
from shipyard.store import Store

__all__ = ["Adapters"]


@dataclass(frozen=True)
class Adapters:
    state: StateDir
    store: Store
    executor: Executor
    runtime: Runtime
    blobs: BlobStore
    leases: Leases
