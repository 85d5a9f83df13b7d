"""The server's notifier: tails the audit log and hands each notice to its targets' couriers.

Where it resumes: the event id up to which notices were handed over is itself written to the
audit log (``notification.queued``, one per notice, naming the targets), so a restarted
server, or another server on the same database, carries on where the last one stopped and
an approval request made while the server was down is still announced. On the very first
start it begins at the newest event: history is not news. One server notifies at a time: the
one holding the ``notifier`` lease.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.coordination import HeldLease, LeaseLost, new_owner
from shipyard.notify.delivery import BACKOFF, TIMEOUT, Courier, Delivery, redacted
from shipyard.notify.notices import Notice, notice_of
from shipyard.services import Services
from shipyard.services.notifications import TargetView
from shipyard.store.models import Event

__all__ = ["LEASE", "Notifier"]

log = logging.getLogger("shipyard.notify")

LEASE = "notifier"
QUEUED = "notification.queued"
BATCH = 500  # events read per query


class Notifier:
    def __init__(
        self,
        services: Services,
        *,
        poll: float = 1.0,
        base_url: str | None = None,
        backoff: Sequence[float] = BACKOFF,
        timeout: float = TIMEOUT,
    ) -> None:
        self.services, self.poll, self.base_url = services, poll, base_url
        self.backoff, self.timeout = backoff, timeout
        self.store = services.adapters.store
        self.cursor: int | None = None  # the last event id looked at
        self.couriers: dict[int, Courier] = {}  # by target id

    def run(self, stop: threading.Event) -> None:
        """Notify until ``stop`` is set, while this process holds the notifier lease."""
        owner, held = new_owner("notifier"), None
        try:
            while not stop.is_set():
                held = held or self.services.adapters.leases.hold(LEASE, owner)
                if held is not None:
                    held = self._turn(held)
                stop.wait(self.poll)
        finally:
            if held is not None:
                held.release()
            self.close()

    def _turn(self, held: HeldLease) -> HeldLease | None:
        try:
            held.check()
            self.poll_once()
        except LeaseLost:
            self.cursor = None  # another server notifies now; read its place when ours again
            return None
        except Exception:  # the store is briefly unreachable: the next turn tries again
            log.exception("notifier: could not read the audit log")
        return held

    def poll_once(self) -> list[Notice]:
        """Hand the notices of the events since the last look to their targets' couriers."""
        if self.cursor is None:
            self.cursor = self._resume_point()
        targets = self._targets()
        handed: list[Notice] = []
        while True:
            with self.store.session() as s:
                query = select(Event).where(Event.id > self.cursor).order_by(Event.id).limit(BATCH)
                events = s.scalars(query).all()
                for event in events:
                    notice = notice_of(s, event) if event.action != QUEUED else None
                    if notice is not None and self._hand_over(s, notice, targets):
                        handed.append(notice)
            if events:
                self.cursor = events[-1].id
            if len(events) < BATCH:
                return handed

    def close(self) -> None:
        for courier in self.couriers.values():
            courier.close()
        self.couriers.clear()

    def _hand_over(self, s: Session, notice: Notice, targets: list[TargetView]) -> bool:
        wanting = [t for t in targets if t.wants(notice.kind, notice.project)]
        if not wanting:
            return False
        body = notice.payload(self.base_url)
        subject = f"{notice.project}#{notice.run}" if notice.run is not None else notice.project
        for target in wanting:
            self._courier(target).send(Delivery(body, notice.kind.value, subject))
        self.store.record(
            s,
            QUEUED,
            subject,
            notice=notice.kind.value,
            upto=notice.event_id,
            targets=[t.id for t in wanting],
        )
        return True

    def _targets(self) -> list[TargetView]:
        """The targets now; couriers of removed ones are stopped."""
        targets = self.services.notifications.list()
        gone = set(self.couriers) - {t.id for t in targets}
        for target_id in gone:
            self.couriers.pop(target_id).close()
        return targets

    def _courier(self, target: TargetView) -> Courier:
        if target.id not in self.couriers:
            self.couriers[target.id] = Courier(
                target.url,
                backoff=self.backoff,
                timeout=self.timeout,
                on_done=partial(self._done, target.id, redacted(target.url)),
            )
        return self.couriers[target.id]

    def _done(
        self, target: int, host: str, delivery: Delivery, attempts: int, error: str | None
    ) -> None:
        """A notice that never got through is worth an audit line: someone was not told."""
        if error is None:
            return
        with self.store.session() as s:
            self.store.record(
                s,
                "notification.failed",
                delivery.subject,
                target=target,
                host=host,
                attempts=attempts,
                error=error,
            )

    def _resume_point(self) -> int:
        with self.store.session() as s:
            last = s.scalar(
                select(Event).where(Event.action == QUEUED).order_by(Event.id.desc()).limit(1)
            )
            if last is not None and isinstance(last.detail.get("upto"), int):
                return int(last.detail["upto"])
            newest = s.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
            return newest or 0
