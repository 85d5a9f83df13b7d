"""A rollout's record in the store: its status words and atomic changes to it.

The ``rollouts`` row is the rollout's desired state: the steps (JSON), where it is
(``step_index``, ``weight``), what was judged (``verdicts``) and its ``status``. Commands from
the CLI (promote, abort, pause, resume) are status changes that the controller driving the
rollout notices within a fraction of a second; every change is a read-modify-write in one
transaction, so a command and the controller never overwrite each other.

    running ──► waiting (a manual step) ──promote──► running ──► ... ──► passed
       │  ▲                                                  └─ judge fails ─► rolled-back
     pause resume          abort (any active status) ──► aborting ──► aborted
       ▼  │
      paused
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from shipyard.coordination import Leases
from shipyard.errors import NotFound
from shipyard.store import Store
from shipyard.store.models import Rollout

__all__ = [
    "ABORTED",
    "ABORTING",
    "ACTIVE",
    "FINISHED",
    "PASSED",
    "PAUSED",
    "PROMOTING",
    "ROLLED_BACK",
    "RUNNING",
    "WAITING",
    "active_rollouts",
    "driver_lease",
    "find_rollout",
    "is_driven",
    "update_rollout",
]

RUNNING = "running"
PAUSED = "paused"  # held by `shipyard rollout pause`: weights stay, the judge keeps watching
WAITING = "waiting"  # at a `pause: manual` step, until `shipyard rollout promote`
PROMOTING = "promoting"  # promote asked for; the controller ends the step
ABORTING = "aborting"  # abort asked for; the controller rolls back
PASSED = "passed"
ROLLED_BACK = "rolled-back"
ABORTED = "aborted"
ACTIVE = (RUNNING, PAUSED, WAITING, PROMOTING, ABORTING)
FINISHED = (PASSED, ROLLED_BACK, ABORTED)


def find_rollout(
    store: Store, project: str, environment: str, rollout_id: int | None = None
) -> Rollout:
    """One rollout by id, or the newest of the environment."""
    with store.session() as s:
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


def active_rollouts(store: Store, project: str | None = None) -> Sequence[Rollout]:
    with store.session() as s:
        query = select(Rollout).where(Rollout.status.in_(ACTIVE)).order_by(Rollout.id)
        if project is not None:
            query = query.where(Rollout.project == project)
        return s.scalars(query).all()


def update_rollout(
    store: Store,
    rollout_id: int,
    action: str,
    change: Callable[[Rollout], None],
    **detail: Any,
) -> Rollout:
    """Apply ``change`` to the stored row in one transaction and log ``rollout.<action>``."""
    with store.session() as s:
        row = s.get(Rollout, rollout_id)
        if row is None:
            raise NotFound(f"There is no rollout {rollout_id}.")
        change(row)
        subject = f"{row.project}/{row.environment}/{row.canary_version}"
        facts = {"status": row.status, "step": row.step_index, "weight": row.weight}
        store.record(s, f"rollout.{action}", subject, **{**facts, **detail})
        s.flush()
        return row


def driver_lease(rollout_id: int) -> str:
    """The lease held by the one owner driving a rollout (ARCHITECTURE.md 8)."""
    return f"rollout:{rollout_id}"


def is_driven(leases: Leases, rollout_id: int) -> bool:
    return leases.holder(driver_lease(rollout_id)) is not None
