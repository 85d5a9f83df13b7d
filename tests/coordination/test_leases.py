"""The lease seam, on both backends: the store's rows and the in-memory twin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shipyard.coordination import Leases
from shipyard.coordination.memory import MemoryLeases
from shipyard.coordination.store import StoreLeases
from shipyard.store import Store


@pytest.fixture(params=["store", "memory"])
def leases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Leases]:
    if request.param == "memory":
        yield MemoryLeases()
        return
    store = Store(f"sqlite:///{tmp_path / 'leases.db'}")
    yield StoreLeases(store)
    store.close()


def test_a_held_lease_is_refused_to_another_owner_and_renewed_for_its_own(leases: Leases) -> None:
    assert leases.acquire("run:iris#1", "a", ttl=30)
    assert not leases.acquire("run:iris#1", "b", ttl=30)
    assert leases.acquire("run:iris#1", "a", ttl=30)
    holder = leases.holder("run:iris#1")
    assert holder is not None and holder.owner == "a"


def test_an_expired_lease_is_taken_over(leases: Leases) -> None:
    assert leases.acquire("deploy:iris", "dead", ttl=0.01)
    threading.Event().wait(0.05)
    assert leases.holder("deploy:iris") is None
    assert leases.acquire("deploy:iris", "alive", ttl=30)
    holder = leases.holder("deploy:iris")
    assert holder is not None and holder.owner == "alive"


def test_release_frees_the_lease_only_for_its_owner(leases: Leases) -> None:
    leases.acquire("rollout:7", "a", ttl=30)
    leases.release("rollout:7", "b")
    assert leases.holder("rollout:7") is not None
    leases.release("rollout:7", "a")
    assert leases.holder("rollout:7") is None
    assert leases.acquire("rollout:7", "b", ttl=30)


def test_held_by_lists_unexpired_leases_under_a_prefix(leases: Leases) -> None:
    leases.acquire("run:iris#1", "a", ttl=30)
    leases.acquire("run:iris#2", "b", ttl=0.01)
    leases.acquire("run:wine#1", "a", ttl=30)
    leases.acquire("rollout:1", "a", ttl=30)
    threading.Event().wait(0.05)
    assert [info.name for info in leases.held_by("run:")] == ["run:iris#1", "run:wine#1"]


def test_a_held_lease_is_kept_alive_by_its_heartbeat_past_its_ttl(leases: Leases) -> None:
    with leases.hold("run:iris#1", "a", ttl=0.3) as held:
        deadline = datetime.now() + timedelta(seconds=1)
        while datetime.now() < deadline:
            assert not leases.acquire("run:iris#1", "b", ttl=0.3)
            threading.Event().wait(0.05)
        held.check()
    assert leases.acquire("run:iris#1", "b", ttl=0.3)


def test_of_many_threads_racing_for_one_lease_exactly_one_wins(leases: Leases) -> None:
    winners: list[str] = []
    start = threading.Barrier(8)

    def race(owner: str) -> None:
        start.wait()
        if leases.acquire("deploy:iris", owner, ttl=30):
            winners.append(owner)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_settle_names_a_holder_that_renews_and_waits_out_one_that_stopped(leases: Leases) -> None:
    assert leases.settle("rollout:1") is None  # nobody holds it
    with leases.hold("rollout:1", "alive", ttl=0.6) as _:
        holder = leases.settle("rollout:1", poll=0.05)
        assert holder is not None and holder.owner == "alive"
    assert leases.acquire("rollout:2", "killed", ttl=0.5)  # taken, then never renewed
    assert leases.settle("rollout:2", poll=0.05) is None
    assert leases.acquire("rollout:2", "resumer", ttl=30)
