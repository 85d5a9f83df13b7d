"""Rollouts: where a canary rollout is, and the commands that steer it.

A command is a change of the rollout's stored status, made in one transaction with its audit
event; the process driving the rollout (the holder of its lease) acts on it within a fraction
of a second. The allowed transitions live here and nowhere else:

    promote   running, waiting, paused  ──► promoting
    pause     running, waiting          ──► paused
    resume    paused                    ──► running  (another active status: nothing to change)
    abort     any active status         ──► aborting (nobody drives it: rolled back here ──► aborted)

A resumed rollout that nobody drives waits for a driver: a server's reconciler, or the CLI's
foreground `shipyard rollout resume`, which drives it to its verdict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import Field, computed_field

from shipyard.adapters import Adapters
from shipyard.canary import records, wording
from shipyard.domain import RolloutAction, Status
from shipyard.errors import Conflict
from shipyard.services.views import View
from shipyard.store import current_actor
from shipyard.store.models import Rollout

__all__ = [
    "CheckView",
    "ObservedView",
    "RolloutStepView",
    "RolloutView",
    "Rollouts",
    "StepTimeView",
    "VerdictView",
]

log = logging.getLogger(__name__)


class RolloutStepView(View):
    """One step of the stored plan: its traffic weight and how long it is held."""

    weight: int
    pause: float | Literal["manual"]
    # Only a shadow phase has one; left out otherwise, as in the stored plan.
    shadow: float | None = Field(default=None, exclude_if=lambda value: value is None)


class StepTimeView(View):
    """A step on the rollout's timeline: its plan, how it went, and when it ran."""

    index: int
    weight: int
    pause: float | Literal["manual"]
    shadow: float | None = None
    status: Status  # passed, running, waiting, rolled-back, cancelled, skipped or queued
    started_at: datetime | None = None
    ended_at: datetime | None = None


class CheckView(View):
    name: str
    outcome: str  # pass, fail or inconclusive
    value: float | None = None
    threshold: float | None = None
    detail: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sentence(self) -> str:
        """``latency: pass: canary p95 14.7 ms vs stable 12.3 ms, +19%, ...``: the one wording."""
        return wording.sentence(self)


class ObservedView(View):
    """What one side showed in a judged window (canary/judge.py's Observed)."""

    requests: int
    error_rate: float
    p95_ms: float | None
    predictions: dict[str, float]  # share per class, or p10/p50/p90 of numeric outputs


class VerdictView(View):
    """What the judge decided at a step."""

    step: int
    outcome: str  # pass, fail or inconclusive
    canary_requests: int
    stable_requests: int
    checks: list[CheckView]
    weight: int | None = None
    extension: int = 0
    at: float | None = None  # Unix time
    # Judgements stored before the judge kept each side's numbers have neither.
    stable: ObservedView | None = Field(default=None, exclude_if=lambda value: value is None)
    canary: ObservedView | None = Field(default=None, exclude_if=lambda value: value is None)


class RolloutView(View):
    id: int
    project: str
    environment: str
    stable: str | None
    canary: str
    status: str  # a status word of canary/records.py
    # Why one that was rolled back or aborted ended (the failed checks' sentences, ...).
    reason: str | None = None
    step_index: int
    weight: int
    steps: list[RolloutStepView]
    verdicts: list[VerdictView]
    driven: bool  # some process holds its driver lease
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Rollout, *, driven: bool, reason: str | None = None) -> RolloutView:
        return cls(
            id=row.id,
            project=row.project,
            environment=row.environment,
            stable=row.stable_version,
            canary=row.canary_version,
            status=str(row.status),
            reason=reason,
            step_index=row.step_index,
            weight=row.weight,
            steps=[RolloutStepView.model_validate(step) for step in row.steps],
            verdicts=[VerdictView.model_validate(verdict) for verdict in row.verdicts],
            driven=driven,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @property
    def active(self) -> bool:
        return self.status in records.ACTIVE

    @property
    def actions(self) -> list[RolloutAction]:
        """The commands its status allows now, as `steer` decides them."""
        return [action for action, rule in TRANSITIONS.items() if self.status in rule.allowed]


@dataclass(frozen=True)
class Transition:
    to: str
    allowed: tuple[str, ...]


TRANSITIONS = {
    RolloutAction.PROMOTE: Transition(
        records.PROMOTING, (records.RUNNING, records.WAITING, records.PAUSED)
    ),
    RolloutAction.PAUSE: Transition(records.PAUSED, (records.RUNNING, records.WAITING)),
    RolloutAction.RESUME: Transition(records.RUNNING, (records.PAUSED,)),
    RolloutAction.ABORT: Transition(records.ABORTING, tuple(records.ACTIVE)),
}


class Rollouts:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters

    def get(
        self, project: str, environment: str = "production", rollout_id: int | None = None
    ) -> RolloutView:
        """One rollout by id, or the newest of the environment."""
        return self._view(
            records.find_rollout(self.adapters.store, project, environment, rollout_id)
        )

    def by_id(self, rollout_id: int) -> RolloutView:
        """One rollout by its id alone (NotFound, saying where to look, if there is none)."""
        return self._view(self.adapters.store.rollouts.get(rollout_id))

    def recent(self, limit: int = 50) -> list[RolloutView]:
        """The newest rollouts of every project, newest first."""
        return [self._view(row) for row in self.adapters.store.rollouts.recent(limit)]

    def timeline(self, rollout_id: int) -> list[StepTimeView]:
        """Every step of the plan with its status, and when it started and ended."""
        store = self.adapters.store
        row = store.rollouts.get(rollout_id)
        started: dict[int, datetime] = {}
        finished: datetime | None = None
        for event in store.rollouts.moves(row):
            if event.action == "rollout.step":
                started.setdefault(int(event.detail["step"]), event.at)
            else:  # it ended; a later rollout of the same version writes after this
                finished = event.at
                break
        view = self._view(row)
        return [
            StepTimeView(
                **step.model_dump(),
                index=index,
                status=_step_status(view, index),
                started_at=started.get(index),
                ended_at=started.get(index + 1) or (finished if index == row.step_index else None),
            )
            for index, step in enumerate(view.steps)
        ]

    def steer(
        self,
        project: str,
        environment: str,
        action: RolloutAction,
        rollout_id: int | None = None,
    ) -> RolloutView:
        """Apply ``action`` if the rollout's status allows it (Conflict, saying why, if not)."""
        action = RolloutAction(action)
        row = records.find_rollout(self.adapters.store, project, environment, rollout_id)
        if action is RolloutAction.RESUME:
            self._resume(row)
        else:
            self._change(row, action)
        if action is RolloutAction.ABORT and not self._driven(row):
            self._roll_back(row)
        return self.get(project, environment, row.id)

    def _resume(self, row: Rollout) -> None:
        if row.status not in records.ACTIVE:
            raise Conflict(
                f"Rollout {row.id} has finished ({row.status}).",
                hint="`shipyard rollout status` shows its verdicts.",
            )
        # Resuming one that is not paused asks for nothing but a driver, which it may lack.
        if row.status == records.PAUSED:
            self._change(row, RolloutAction.RESUME)

    def _change(self, row: Rollout, action: RolloutAction) -> None:
        transition = TRANSITIONS[action]

        def change(current: Rollout) -> None:
            # Checked on the row as this transaction reads it, not on an earlier read.
            if current.status not in transition.allowed:
                raise Conflict(
                    f"Rollout {current.id} is {current.status}; `{action}` applies to a rollout"
                    f" that is {' or '.join(transition.allowed)}.",
                    hint="`shipyard rollout status` shows where it is.",
                )
            current.status = transition.to

        records.update_rollout(self.adapters.store, row.id, action.value, change)

    def _roll_back(self, row: Rollout) -> None:
        """Nobody drives it, so nobody would act on `aborting`: roll it back here."""
        from shipyard.canary.rollout import RolloutHooks
        from shipyard.controllers import Reconciler

        reconciler = Reconciler(self.adapters, log.info)
        controller = reconciler.controller(row, RolloutHooks.plain(log.info))
        try:
            controller.abort(f"aborted by {current_actor()}")
        except Conflict:
            # A driver took the lease since we looked: it sees `aborting` and rolls back.
            if not self._driven(row):
                raise

    def _driven(self, row: Rollout) -> bool:
        return records.is_driven(self.adapters.leases, row.id)

    def _view(self, row: Rollout) -> RolloutView:
        reason = records.end_reason(self.adapters.store, row)
        return RolloutView.of(row, driven=self._driven(row), reason=reason)


STEP_STATUS = {  # the current step's status by the rollout's
    records.PASSED: Status.PASSED,
    records.ROLLED_BACK: Status.ROLLED_BACK,
    records.ABORTED: Status.CANCELLED,
    records.WAITING: Status.WAITING,
    records.PAUSED: Status.WAITING,
}


def _step_status(view: RolloutView, index: int) -> Status:
    if index < view.step_index:
        return Status.PASSED
    if index > view.step_index:
        return Status.QUEUED if view.active else Status.SKIPPED
    return STEP_STATUS.get(records.RolloutStatus(view.status), Status.RUNNING)
