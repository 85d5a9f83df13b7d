"""The ``rollouts`` rows: find one, list the active ones, change one atomically.

Reached as ``store.rollouts``; what the statuses mean lives in canary/records.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.domain import RolloutStatus
from shipyard.errors import NotFound
from shipyard.store.models import Event, Rollout

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = ["ACTIVE", "RolloutRows"]

ACTIVE = tuple(status for status in RolloutStatus if not status.finished)
# The audit events that move a rollout to a step or end it.
MOVES = ("rollout.step", *(f"rollout.{status}" for status in RolloutStatus if status.finished))


def subject(row: Rollout) -> str:
    """What a rollout's audit events are about."""
    return f"{row.project}/{row.environment}/{row.canary_version}"


class RolloutRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    def find(self, project: str, environment: str, rollout_id: int | None = None) -> Rollout:
        """One rollout by id, or the newest of the environment."""
        with self.store.session() as s:
            query = select(Rollout).where(
                Rollout.project == project, Rollout.environment == environment
            )
            if rollout_id is not None:
                query = query.where(Rollout.id == rollout_id)
            rollout = s.scalars(query.order_by(Rollout.id.desc()).limit(1)).first()
        if rollout is None:
            what = f"rollout {rollout_id}" if rollout_id is not None else "rollout"
            raise NotFound(
                f"There is no {what} in {project}/{environment}.",
                hint="A rollout starts in the canary stage of `shipyard run`.",
            )
        return rollout

    def get(self, rollout_id: int) -> Rollout:
        """One rollout by its id alone, whatever its project and environment."""
        with self.store.session() as s:
            rollout = s.get(Rollout, rollout_id)
        if rollout is None:
            raise NotFound(
                f"There is no rollout {rollout_id}.",
                hint="The rollouts page lists the recent ones; `shipyard rollout status` shows "
                "a project's newest.",
            )
        return rollout

    def recent(self, limit: int) -> Sequence[Rollout]:
        """The newest ``limit`` rollouts of every project, newest first."""
        with self.store.session() as s:
            return s.scalars(select(Rollout).order_by(Rollout.id.desc()).limit(limit)).all()

    def moves(self, rollout: Rollout) -> Sequence[Event]:
        """The events that moved ``rollout`` to a step or ended it, oldest first."""
        with self.store.session() as s:
            query = select(Event).where(
                Event.subject == subject(rollout),
                Event.action.in_(MOVES),
                Event.at >= rollout.created_at,
            )
            return s.scalars(query.order_by(Event.id)).all()

    def active(
        self, project: str | None = None, environment: str | None = None
    ) -> Sequence[Rollout]:
        """Rollouts not yet finished, oldest first."""
        with self.store.session() as s:
            query = select(Rollout).where(Rollout.status.in_(ACTIVE)).order_by(Rollout.id)
            if project is not None:
                query = query.where(Rollout.project == project)
            if environment is not None:
                query = query.where(Rollout.environment == environment)
            return s.scalars(query).all()

    def update(
        self, rollout_id: int, action: str, change: Callable[[Rollout], None], **detail: Any
    ) -> Rollout:
        """Apply ``change`` to the stored row in one transaction and log ``rollout.<action>``."""
        with self.store.session() as s:
            row = s.get(Rollout, rollout_id)
            if row is None:
                raise NotFound(f"There is no rollout {rollout_id}.")
            change(row)
            facts = {"status": row.status, "step": row.step_index, "weight": row.weight}
            self.store.record(s, f"rollout.{action}", subject(row), **{**facts, **detail})
            s.flush()
            return row
