"""Adapters built from the in-memory twins, and a project with versions to deploy.

The store is SQLite in memory, the runtime and executor are records, blobs live in a dict,
leases in a dict, and time is a fake clock that ``wait`` moves forward: a canary step of a
minute takes no time at all. Artifacts are real archives (packed, published, unpacked), so
the deploy code runs exactly as in production, minus the processes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipyard.adapters import Adapters
from shipyard.artifacts import pack, publish
from shipyard.artifacts.memory import MemoryBlobStore
from shipyard.canary.rollout import RolloutHooks
from shipyard.config.loader import load_config
from shipyard.config.schema import ProjectConfig
from shipyard.coordination.memory import MemoryLeases
from shipyard.executor.memory import MemoryExecutor
from shipyard.paths import StateDir
from shipyard.runtime.interface import VersionStats
from shipyard.runtime.memory import MemoryRuntime
from shipyard.store import Store

PROJECT = "iris"
PORT = 18787

CONFIG = """\
name: iris
install: requirements.txt
build:
  train: python train.py
model:
  serve: iris_model:Model
canary:
  interval: 10s
  steps:
    - {{weight: 20, pause: 30s}}
    - {{weight: 50, pause: {second_pause}}}
    - 100
  analysis:
    min_requests: 20
    max_extensions: 1
  rollback_window: 1h
environments:
  production:
    port: {port}
"""


@dataclass
class FakeClock:
    """Seconds that pass only when someone waits; things scheduled ``at`` a time happen then."""

    now: float = 1000.0
    _due: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        while self._due and self._due[0][0] <= self.now:
            _, _, action = heapq.heappop(self._due)
            action()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Do ``action`` once the clock reaches ``when`` seconds after now."""
        heapq.heappush(self._due, (self.now + when, next(self._order), action))


@dataclass(frozen=True)
class World:
    """What a twin test works with."""

    adapters: Adapters
    runtime: MemoryRuntime
    executor: MemoryExecutor
    blobs: MemoryBlobStore
    leases: MemoryLeases
    clock: FakeClock
    env_dir: Path
    said: list[str]

    @property
    def store(self) -> Store:
        return self.adapters.store

    def hooks(self) -> RolloutHooks:
        return RolloutHooks(self.said.append, self.clock.wait, lambda: False, self.clock)

    def traffic(self, version: str, requests: int, errors: int = 0) -> None:
        """The gateway reports ``requests`` for ``version`` in every window from now on."""
        stats = VersionStats(
            requests=requests,
            errors=errors,
            latencies_ms=[20.0] * requests,
            predictions={"setosa": requests},
        )
        self.runtime.set_stats(self.env_dir, version, stats)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    state = StateDir(tmp_path / "state", tmp_path / "cache").ensure()
    store = Store("sqlite://")
    runtime, executor = MemoryRuntime(), MemoryExecutor(tmp_path / "envs")
    blobs, leases = MemoryBlobStore(), MemoryLeases()
    adapters = Adapters(state, store, executor, runtime, blobs, leases)
    env_dir = state.environment_dir(PROJECT, "production")
    yield World(adapters, runtime, executor, blobs, leases, FakeClock(), env_dir, [])
    store.close()


@pytest.fixture
def adapters(world: World) -> Adapters:
    """The twins' adapters alone, for tests that need nothing else."""
    return world.adapters


def release(
    world: World, version: str, *, second_pause: str = "30s", port: int = PORT
) -> ProjectConfig:
    """Pack and publish ``iris:<version>`` (into ``dev``); returns the config it was built with."""
    src = world.adapters.state.root.parent / "src" / version
    code, model = src / "code", src / "model"
    code.mkdir(parents=True)
    model.mkdir(parents=True)
    (code / "shipyard.yaml").write_text(CONFIG.format(second_pause=second_pause, port=port))
    (code / "requirements.txt").write_text("scikit-learn\n")
    (code / "iris_model.py").write_text("class Model: ...\n")
    (model / "model.txt").write_text(f"version {version}\n")
    info = {"name": PROJECT, "version": version}
    packed = pack(
        src / "out",
        model_dir=model,
        code_dir=code,
        lock_file=code / "requirements.txt",
        build_info=info,
    )
    world.store.ensure_project(PROJECT, str(src))
    publish(world.store, world.blobs, packed, info, run_id=None)
    return load_config(code / "shipyard.yaml")
