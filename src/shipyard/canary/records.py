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

from shipyard.coordination import Leases
from shipyard.domain import RolloutStatus
from shipyard.store import Store
from shipyard.store.models import Rollout
from shipyard.store.rollouts import ACTIVE

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
    "RolloutStatus",
    "active_rollouts",
    "driver_lease",
    "end_reason",
    "find_rollout",
    "is_driven",
    "update_rollout",
]

# Short names for the statuses, as the controller and the commands have always written them.
RUNNING = RolloutStatus.RUNNING
PAUSED = RolloutStatus.PAUSED
WAITING = RolloutStatus.WAITING
PROMOTING = RolloutStatus.PROMOTING
ABORTING = RolloutStatus.ABORTING
PASSED = RolloutStatus.PASSED
ROLLED_BACK = RolloutStatus.ROLLED_BACK
ABORTED = RolloutStatus.ABORTED
FINISHED = tuple(status for status in RolloutStatus if status.finished)


def find_rollout(
    store: Store, project: str, environment: str, rollout_id: int | None = None
) -> Rollout:
    """One rollout by id, or the newest of the environment."""
    return store.rollouts.find(project, environment, rollout_id)


def active_rollouts(store: Store, project: str | None = None) -> Sequence[Rollout]:
    return store.rollouts.active(project)


def update_rollout(
    store: Store,
    rollout_id: int,
    action: str,
    change: Callable[[Rollout], None],
    **detail: Any,
) -> Rollout:
    """Apply ``change`` to the stored row in one transaction and log ``rollout.<action>``."""
    return store.rollouts.update(rollout_id, action, change, **detail)


def end_reason(store: Store, rollout: Rollout) -> str | None:
    """Why a rollout that did not pass ended, as its driver recorded it (None otherwise)."""
    if rollout.status not in (ROLLED_BACK, ABORTED):
        return None
    ends = [event for event in store.rollouts.moves(rollout) if event.action != "rollout.step"]
    return str(ends[0].detail.get("reason") or "") or None if ends else None


def driver_lease(rollout_id: int) -> str:
    """The lease held by the one owner driving a rollout (ARCHITECTURE.md 7)."""
    return f"rollout:{rollout_id}"


def is_driven(leases: Leases, rollout_id: int) -> bool:
    return leases.holder(driver_lease(rollout_id)) is not None
