"""Polling: a remote that sends no webhooks is asked for its heads; a new head queues a run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.server.polling import Poller
from shipyard.services import Services
from shipyard.wiring import open_adapters

from .forges import Remote, make_remote


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    made = make_remote(tmp_path)
    made.commit("first")
    return made


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    adapters = open_adapters(tmp_path / "state")
    yield Services(adapters)
    adapters.store.close()


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def shas(services: Services) -> list[str]:
    return [run.sha for run in reversed(services.runs.list("tiny"))]


def test_the_poller_queues_each_new_head_of_a_watched_branch(
    services: Services, remote: Remote
) -> None:
    first = remote.git_head()
    services.projects.add("tiny", str(remote.bare), branches=["main"], poll_interval="1s")
    stop = threading.Event()
    poller = threading.Thread(target=Poller(services).run, args=(stop,), daemon=True)
    poller.start()
    try:
        wait_for(lambda: shas(services) == [first])  # a branch never run: its head is built
        second = remote.commit("second")
        remote.commit("elsewhere", branch="feature/x")  # not watched
        wait_for(lambda: shas(services) == [first, second])
    finally:
        stop.set()
        poller.join(10)
    assert not poller.is_alive()
    runs = services.runs.list("tiny")
    assert {(run.trigger, run.ref, run.actor) for run in runs} == {("poll", "main", "poll")}


def test_one_poll_queues_nothing_when_the_heads_were_built(
    services: Services, remote: Remote
) -> None:
    project, _ = services.projects.add("tiny", str(remote.bare), poll_interval=60)
    poller = Poller(services)
    assert poller.poll(project) == [1]
    assert poller.poll(project) == []
    sha = remote.commit("second")
    # A webhook got there first: the poll sees that head built already.
    services.projects.push("tiny", trigger="github", ref="refs/heads/main", sha=sha)
    assert poller.poll(project) == []
    assert len(services.runs.list("tiny")) == 2


def test_a_second_poller_leaves_a_project_to_the_one_polling_it(
    services: Services, remote: Remote
) -> None:
    project, _ = services.projects.add("tiny", str(remote.bare), poll_interval=60)
    assert Poller(services).poll(project) == [1]
    remote.commit("second")
    assert Poller(services).poll(project) == []  # the first poller's lease holds


def test_projects_without_an_interval_are_not_polled(services: Services, remote: Remote) -> None:
    services.projects.add("tiny", str(remote.bare))
    Poller(services).poll_due()
    assert services.runs.list("tiny") == []
