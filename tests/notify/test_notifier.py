"""Notifications reach real receivers on 127.0.0.1: the four notices, retries, isolation, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.config.loader import parse_config
from shipyard.domain import Gate, NoticeKind, Role, Status
from shipyard.errors import InvalidInput
from shipyard.notify import Notifier
from shipyard.notify.delivery import QUEUE_SIZE, Courier, Delivery
from shipyard.pipeline.context import RunContext
from shipyard.services import Services
from shipyard.store.models import Deployment

from .conftest import Receiver

SHA = "cd" * 20
FAST = (0.05, 0.1, 0.2, 0.4)  # the backoff, shortened: the same five attempts
MANUAL = """\
name: tiny
build: {train: "true"}
model: {serve: "m:Model"}
release: {approval: manual}
"""


@pytest.fixture
def notifier(services: Services) -> Iterator[Notifier]:
    found = Notifier(services, poll=0.05, base_url="http://shipyard.test", backoff=FAST)
    assert found.poll_once() == []  # started: what happened before is history
    yield found
    found.close()


def failed_run(services: Services) -> int:
    store = services.adapters.store
    number = store.create_run("tiny", SHA, "main").number
    store.set_stage_status("tiny", number, "build", Status.FAILED, "`python train.py` exited 1")
    store.set_run_status("tiny", number, Status.FAILED, "failed")
    return number


def rolled_back_run(services: Services) -> int:
    store = services.adapters.store
    number = store.create_run("tiny", SHA, "main").number
    message = "rolled back; 1-cdcdcdc stays live"
    store.set_stage_status("tiny", number, "canary", Status.ROLLED_BACK, message)
    store.set_run_status("tiny", number, Status.ROLLED_BACK, "rolled-back")
    return number


def waiting_run(services: Services) -> int:
    number = services.adapters.store.create_run("tiny", SHA, "main").number
    ctx = RunContext(
        services.adapters, "tiny", number, SHA, "main", Path("."), parse_config(MANUAL)
    )
    ctx.log_path("release").parent.mkdir(parents=True, exist_ok=True)
    assert services.approvals.gate(ctx, Gate.RELEASE) is not None
    return number


def live_version(services: Services) -> tuple[int, str]:
    """A run's artifact going live in production, recorded as ``go_live`` records it."""
    store = services.adapters.store
    run = store.create_run("tiny", SHA, "main")
    version = f"{run.number}-{SHA[:7]}"
    artifact = store.add_artifact("tiny", version, "sha256:" + "1" * 64, 1, {}, run.id)
    row = Deployment(
        project="tiny",
        environment="production",
        version=version,
        artifact_id=artifact.id,
        role=Role.STABLE.value,
        weight=100,
        state="ready",
    )
    store.save_deployment(row, "live")
    return run.number, version


def by_event(bodies: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {body["event"]: body for body in bodies}


def test_each_notice_reaches_the_receiver_with_its_fields(
    services: Services, notifier: Notifier, receiver: Receiver
) -> None:
    services.notifications.add(receiver.url)
    failed, rolled_back = failed_run(services), rolled_back_run(services)
    waiting, (live, version) = waiting_run(services), live_version(services)
    kinds = [notice.kind for notice in notifier.poll_once()]
    assert kinds == [
        NoticeKind.RUN_FAILED,
        NoticeKind.ROLLED_BACK,
        NoticeKind.APPROVAL_NEEDED,
        NoticeKind.LIVE,
    ]
    got = by_event(receiver.wait_for(4))
    assert got["run.failed"] == {
        "event": "run.failed",
        "project": "tiny",
        "run": failed,
        "version": f"{failed}-cdcdcdc",
        "message": "build: `python train.py` exited 1",
        "url": f"http://shipyard.test/api/v1/runs/tiny/{failed}",
        "text": f":x: tiny#{failed} ({failed}-cdcdcdc) run failed: build: `python train.py` exited 1",
    }
    assert got["rolled-back"]["run"] == rolled_back
    assert got["rolled-back"]["message"] == "canary: rolled back; 1-cdcdcdc stays live"
    assert got["approval.needed"]["run"] == waiting
    assert got["approval.needed"]["message"] == (
        f"release waits for qa: `shipyard approve {waiting} --project tiny`"
    )
    assert got["approval.needed"]["text"].startswith(f":raised_hand: tiny#{waiting} ")
    assert (got["live"]["run"], got["live"]["version"]) == (live, version)
    assert got["live"]["message"] == f"{version} serves all traffic in production"
    # Handed over once each, and the audit log says to whom.
    assert notifier.poll_once() == []
    queued = [
        e for e in services.adapters.store.events(limit=500) if e.action == "notification.queued"
    ]
    assert len(queued) == 4


def test_a_receiver_failing_twice_gets_the_notice_on_the_third_try(
    receiver_factory: Callable[..., Receiver],
) -> None:
    flaky = receiver_factory(failures=2)
    outcomes: list[tuple[int, str | None]] = []
    done = threading.Event()

    def record(delivery: Delivery, attempts: int, error: str | None) -> None:
        outcomes.append((attempts, error))
        done.set()

    courier = Courier(flaky.url, backoff=FAST, on_done=record)
    try:
        assert courier.send(Delivery({"event": "run.failed", "run": 7}, "run.failed", "tiny#7"))
        assert done.wait(10)
    finally:
        courier.close(wait=5)
    assert outcomes == [(3, None)]
    assert flaky.bodies == [{"event": "run.failed", "run": 7}] * 3


def test_a_receiver_that_never_answers_gets_five_attempts_and_an_audit_line(
    services: Services, notifier: Notifier, receiver_factory: Callable[..., Receiver]
) -> None:
    down = receiver_factory(failures=100)
    services.notifications.add(down.url)
    failed_run(services)
    notifier.poll_once()
    assert len(down.wait_for(5)) == 5
    deadline = time.monotonic() + 10
    failures: list[object] = []
    while not failures and time.monotonic() < deadline:
        failures = [
            e
            for e in services.adapters.store.events(limit=500)
            if e.action == "notification.failed"
        ]
        threading.Event().wait(0.02)
    [event] = failures
    assert event.detail["attempts"] == 5 and event.detail["error"] == "answered 500"
    assert "/hook" not in str(event.detail)  # the URL's path may be a secret: never logged
    assert len(down.bodies) == 5  # and no sixth


def test_a_receiver_that_hangs_delays_neither_the_other_targets_nor_the_notifier(
    services: Services, notifier: Notifier, receiver_factory: Callable[..., Receiver]
) -> None:
    stuck, healthy = receiver_factory(hang=True), receiver_factory()
    services.notifications.add(stuck.url)
    services.notifications.add(healthy.url)
    started = time.monotonic()
    numbers = [failed_run(services) for _ in range(3)]
    notifier.poll_once()
    handed_over = time.monotonic() - started
    got = healthy.wait_for(3, seconds=3)
    assert [body["run"] for body in got] == numbers
    assert len(stuck.bodies) == 1  # still holding the first one open
    assert handed_over < 2.0


def test_handing_over_never_waits_even_when_a_receiver_is_stuck(
    receiver_factory: Callable[..., Receiver],
) -> None:
    stuck = receiver_factory(hang=True)
    courier = Courier(stuck.url, backoff=FAST)
    try:
        started = time.monotonic()
        taken = [
            courier.send(Delivery({"run": n}, "run.failed", f"tiny#{n}"))
            for n in range(QUEUE_SIZE + 50)
        ]
        assert time.monotonic() - started < 1.0
    finally:
        courier.close()
    assert taken.count(False) >= 49  # the overflow is dropped (and logged), never waited for


def test_targets_choose_their_events_and_projects(
    services: Services, notifier: Notifier, receiver_factory: Callable[..., Receiver]
) -> None:
    approvals, other_project = receiver_factory(), receiver_factory()
    services.notifications.add(approvals.url, [NoticeKind.APPROVAL_NEEDED])
    services.notifications.add(other_project.url, project="other")
    failed_run(services)
    waiting = waiting_run(services)
    notifier.poll_once()
    [only] = approvals.wait_for(1)
    assert (only["event"], only["run"]) == ("approval.needed", waiting)
    assert other_project.bodies == []


def test_only_http_urls_are_targets(services: Services) -> None:
    for url in (
        "ftp://example.com/x",
        "file:///etc/passwd",
        "example.com/hook",
        "http://",
        "http://h:x/",
        "http://[::1",
    ):
        with pytest.raises(InvalidInput, match="is not an http"):
            services.notifications.add(url)
    added = services.notifications.add(" https://hooks.example.com/services/T0/B0/secret ")
    assert added.url == "https://hooks.example.com/services/T0/B0/secret"
    [event] = [
        e
        for e in services.adapters.store.events(limit=50)
        if e.action == "notification.target-added"
    ]
    assert event.detail["host"] == "hooks.example.com" and "secret" not in str(event.detail)
    assert services.notifications.remove(added.id).id == added.id
    assert services.notifications.list() == []


def test_a_restarted_notifier_sends_what_happened_while_it_was_down_and_nothing_twice(
    services: Services, receiver: Receiver
) -> None:
    services.notifications.add(receiver.url)
    history = failed_run(services)
    first = Notifier(services, poll=0.05, backoff=FAST)
    assert first.poll_once() == []  # the first start ever: history is not news
    sent = failed_run(services)
    assert [n.run for n in first.poll_once()] == [sent]
    receiver.wait_for(1)
    first.close()
    while_down = waiting_run(services)
    second = Notifier(services, poll=0.05, backoff=FAST)
    assert [n.run for n in second.poll_once()] == [while_down]
    second.close()
    assert [b["run"] for b in receiver.wait_for(2)] == [sent, while_down]
    assert history not in [b["run"] for b in receiver.bodies]


def test_two_servers_notifying_from_one_store_send_each_notice_once(
    services: Services, receiver: Receiver
) -> None:
    services.notifications.add(receiver.url)
    stop = threading.Event()
    notifiers = [Notifier(services, poll=0.05, backoff=FAST) for _ in range(2)]
    threads = [threading.Thread(target=n.run, args=(stop,)) for n in notifiers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while not any(n.cursor is not None for n in notifiers):
        assert time.monotonic() < deadline
        threading.Event().wait(0.02)
    numbers = [failed_run(services) for _ in range(3)]
    assert [b["run"] for b in receiver.wait_for(3)] == numbers
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    # Every hand-over is in the audit log: one per notice, so no second server sent it.
    queued = [
        e for e in services.adapters.store.events(limit=500) if e.action == "notification.queued"
    ]
    assert sorted(e.subject for e in queued) == sorted(f"tiny#{n}" for n in numbers)
    assert [b["run"] for b in receiver.bodies] == numbers
