"""The audit log: who did what to what, and when, newest first.

Every change in Shipyard writes an event in the transaction that makes it (``Store.record``),
so this reads the one record there is. Subjects name their project first: ``iris`` (the
project), ``iris#3`` and ``iris#3/build`` (a run and its stages), ``iris:3-1a2b3c4`` (an
artifact), ``iris/production/3-1a2b3c4`` (a deployment or rollout).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from shipyard.adapters import Adapters
from shipyard.errors import InvalidInput
from shipyard.services.views import View
from shipyard.store.models import Event

__all__ = ["Audit", "EventView"]

MAX_LIMIT = 1000
# What follows a project's name in the subject of an event about it.
SUBJECT_SEPARATORS = ("#", ":", "/")


class EventView(View):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: Event) -> EventView:
        return cls(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            detail=row.detail or {},
        )


class Audit:
    def __init__(self, adapters: Adapters) -> None:
        self.store = adapters.store

    def events(
        self,
        actor: str | None = None,
        project: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        *,
        until: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
    ) -> list[EventView]:
        """Events matching every filter given, newest first. ``action`` is an action
        (``rollout.abort``) or its family (``rollout``); ``since`` is inclusive, ``until``
        exclusive; ``after`` keeps the events newer than that event id (a live feed),
        ``before`` those older than it (the next page)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(
                f"limit {limit} is out of range.", hint=f"Ask for 1 to {MAX_LIMIT} events."
            )
        query = select(Event).order_by(Event.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(Event.actor == actor)
        if project is not None:
            query = query.where(_about_project(project))
        if action is not None:
            query = query.where(or_(Event.action == action, Event.action.startswith(f"{action}.")))
        if since is not None:
            query = query.where(Event.at >= _naive_utc(since))
        if until is not None:
            query = query.where(Event.at < _naive_utc(until))
        if after is not None:
            query = query.where(Event.id > after)
        if before is not None:
            query = query.where(Event.id < before)
        with self.store.session() as s:
            return [EventView.of(row) for row in s.scalars(query)]


def _about_project(project: str) -> ColumnElement[bool]:
    """The subject is the project, or starts with it and a separator: every string that
    starts with ``iris#`` sorts at or after ``iris#`` and before ``iris$`` (no LIKE, so no
    wildcard in a project's name can match another's)."""
    ranges = [
        and_(Event.subject >= project + sep, Event.subject < project + chr(ord(sep) + 1))
        for sep in SUBJECT_SEPARATORS
    ]
    return or_(Event.subject == project, *ranges)


def _naive_utc(moment: datetime) -> datetime:
    """The store keeps naive UTC times (``models.utcnow``); an aware time is converted."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
