"""The rollout rules: which command applies to which status, what each one records, and who
asked, against a real store and the store's leases."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.domain import RolloutAction, Status
from shipyard.errors import Conflict, NotFound
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.store.models import Rollout

from .conftest import STEPS, rollout_in

SUBJECT = "iris/production/2-bbbbbbb"


def status_of(adapters: Adapters, rollout_id: int) -> str:
    return records.find_rollout(adapters.store, "iris", "production", rollout_id).status


def actions(adapters: Adapters) -> list[tuple[str, str]]:
    """The rollout's events after it started, oldest first: (action, actor)."""
    events = reversed(adapters.store.events(SUBJECT))
    return [(e.action, e.actor) for e in events if e.action != "rollout.started"]


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        (RolloutAction.PROMOTE, records.RUNNING, records.PROMOTING),
        (RolloutAction.PROMOTE, records.WAITING, records.PROMOTING),
        (RolloutAction.PROMOTE, records.PAUSED, records.PROMOTING),
        (RolloutAction.PAUSE, records.RUNNING, records.PAUSED),
        (RolloutAction.PAUSE, records.WAITING, records.PAUSED),
        (RolloutAction.RESUME, records.PAUSED, records.RUNNING),
    ],
)
def test_an_allowed_command_changes_the_status_and_records_who_asked(
    adapters: Adapters, found: Services, action: RolloutAction, before: str, after: str
) -> None:
    rollout = rollout_in(adapters, before)
    with acting_as("rita"):
        view = found.rollouts.steer("iris", "production", action)
    assert (view.id, view.status) == (rollout.id, after)
    assert status_of(adapters, rollout.id) == after
    assert actions(adapters) == [(f"rollout.{action}", "rita")]


@pytest.mark.parametrize(
    ("action", "before", "applies_to"),
    [
        (RolloutAction.PAUSE, records.PAUSED, "running or waiting"),
        (RolloutAction.PAUSE, records.PROMOTING, "running or waiting"),
        (RolloutAction.PROMOTE, records.ABORTING, "running or waiting or paused"),
        (RolloutAction.PROMOTE, records.PASSED, "running or waiting or paused"),
        (
            RolloutAction.ABORT,
            records.ROLLED_BACK,
            "running or paused or waiting or promoting or aborting",
        ),
    ],
)
def test_a_refused_command_says_what_it_applies_to_and_changes_nothing(
    adapters: Adapters, found: Services, action: RolloutAction, before: str, applies_to: str
) -> None:
    rollout = rollout_in(adapters, before)
    with pytest.raises(Conflict) as refused:
        found.rollouts.steer("iris", "production", action)
    assert refused.value.message == (
        f"Rollout {rollout.id} is {before}; `{action}` applies to a rollout that is {applies_to}."
    )
    assert refused.value.hint == "`shipyard rollout status` shows where it is."
    assert status_of(adapters, rollout.id) == before
    assert actions(adapters) == []


def test_a_finished_rollout_cannot_be_resumed(adapters: Adapters, found: Services) -> None:
    rollout = rollout_in(adapters, records.PASSED)
    with pytest.raises(Conflict) as refused:
        found.rollouts.steer("iris", "production", RolloutAction.RESUME)
    assert refused.value.message == f"Rollout {rollout.id} has finished (passed)."
    assert refused.value.hint == "`shipyard rollout status` shows its verdicts."


def test_resuming_a_rollout_that_is_not_paused_changes_nothing(
    adapters: Adapters, found: Services
) -> None:
    rollout = rollout_in(adapters, records.WAITING)
    view = found.rollouts.steer("iris", "production", RolloutAction.RESUME)
    assert view.status == records.WAITING and not view.driven
    assert status_of(adapters, rollout.id) == records.WAITING
    assert actions(adapters) == []


def test_aborting_a_driven_rollout_leaves_the_roll_back_to_its_driver(
    adapters: Adapters, found: Services
) -> None:
    rollout = rollout_in(adapters, records.WAITING)
    with adapters.leases.hold(records.driver_lease(rollout.id), "another-server"):
        with acting_as("olga"):
            view = found.rollouts.steer("iris", "production", RolloutAction.ABORT)
        assert view.driven
    assert view.status == records.ABORTING  # not rolled back here: the driver does that
    assert actions(adapters) == [("rollout.abort", "olga")]


def test_get_reads_the_plan_the_verdicts_and_whether_it_is_driven(
    adapters: Adapters, found: Services
) -> None:
    verdict = {
        "step": 0,
        "weight": 20,
        "extension": 0,
        "at": 1_700_000_000.0,
        "outcome": "pass",
        "canary_requests": 40,
        "stable_requests": 160,
        "checks": [
            {
                "name": "error_rate",
                "outcome": "pass",
                "value": 0.0,
                "threshold": 0.01,
                "detail": "canary 0.0%",
            }
        ],
    }
    older = rollout_in(adapters, records.PASSED)
    newest = rollout_in(adapters, verdicts=[verdict])
    view = found.rollouts.get("iris")
    assert (view.id, view.stable, view.canary, view.weight) == (
        newest.id,
        "1-aaaaaaa",
        "2-bbbbbbb",
        20,
    )
    assert view.active and not view.driven
    assert [step.model_dump() for step in view.steps] == STEPS  # no shadow where none was
    assert view.verdicts[0].checks[0].threshold == 0.01
    assert found.rollouts.get("iris", rollout_id=older.id).status == records.PASSED
    with adapters.leases.hold(records.driver_lease(newest.id), "another-server"):
        assert found.rollouts.get("iris").driven


def test_an_unknown_rollout_is_not_found(adapters: Adapters, found: Services) -> None:
    rollout_in(adapters)
    with pytest.raises(NotFound, match=r"There is no rollout 99 in iris/production\."):
        found.rollouts.steer("iris", "production", RolloutAction.PAUSE, rollout_id=99)
    with pytest.raises(NotFound, match=r"There is no rollout in iris/staging\."):
        found.rollouts.get("iris", "staging")


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (records.RUNNING, [RolloutAction.PROMOTE, RolloutAction.PAUSE, RolloutAction.ABORT]),
        (records.WAITING, [RolloutAction.PROMOTE, RolloutAction.PAUSE, RolloutAction.ABORT]),
        (records.PAUSED, [RolloutAction.PROMOTE, RolloutAction.RESUME, RolloutAction.ABORT]),
        (records.PROMOTING, [RolloutAction.ABORT]),
        (records.ABORTING, [RolloutAction.ABORT]),
        (records.PASSED, []),
        (records.ROLLED_BACK, []),
    ],
)
def test_a_view_names_the_commands_its_status_allows(
    adapters: Adapters, found: Services, status: str, allowed: list[RolloutAction]
) -> None:
    rollout = rollout_in(adapters, status)
    assert found.rollouts.by_id(rollout.id).actions == allowed
    for action in set(RolloutAction) - set(allowed) - {RolloutAction.RESUME}:
        with pytest.raises(Conflict):
            found.rollouts.steer("iris", "production", action)


def test_a_rollout_is_found_by_its_id_alone_and_recent_ones_newest_first(
    adapters: Adapters, found: Services
) -> None:
    older = rollout_in(adapters, records.ROLLED_BACK)
    newer = rollout_in(adapters, environment="staging")
    assert (found.rollouts.by_id(older.id).status, found.rollouts.by_id(newer.id).environment) == (
        records.ROLLED_BACK,
        "staging",
    )
    assert [view.id for view in found.rollouts.recent()] == [newer.id, older.id]
    assert [view.id for view in found.rollouts.recent(1)] == [newer.id]
    with pytest.raises(NotFound, match=r"There is no rollout 99\.") as missing:
        found.rollouts.by_id(99)
    assert missing.value.hint is not None and "rollouts page" in missing.value.hint


def test_the_numbers_each_side_showed_are_read_with_each_verdict(
    adapters: Adapters, found: Services
) -> None:
    side = {"requests": 40, "error_rate": 0.25, "p95_ms": 12.5, "predictions": {"setosa": 1.0}}
    verdict = {"step": 0, "outcome": "fail", "canary_requests": 40, "stable_requests": 160}
    rollout = rollout_in(
        adapters, verdicts=[{**verdict, "checks": []}, {**verdict, "checks": [], "canary": side}]
    )
    old, new = found.rollouts.by_id(rollout.id).verdicts
    assert old.canary is None and "canary" not in old.model_dump()
    assert new.canary is not None and new.canary.model_dump() == side


def test_the_timeline_dates_each_step_by_the_events_that_moved_the_rollout(
    adapters: Adapters, found: Services
) -> None:
    rollout = rollout_in(adapters, steps=[*STEPS, {"weight": 80, "pause": 60.0}])
    timeline = found.rollouts.timeline(rollout.id)
    assert [step.status for step in timeline] == [Status.RUNNING, Status.QUEUED, Status.QUEUED]

    def move_to(step: int) -> Callable[[Rollout], None]:
        return lambda row: setattr(row, "step_index", step)

    adapters.store.rollouts.update(rollout.id, "step", move_to(0), step=0)
    adapters.store.rollouts.update(rollout.id, "step", move_to(1), step=1)
    adapters.store.rollouts.update(
        rollout.id, "rolled-back", lambda row: setattr(row, "status", records.ROLLED_BACK)
    )
    first, second, third = found.rollouts.timeline(rollout.id)
    assert [(s.index, s.weight, s.pause) for s in (first, second, third)] == [
        (0, 20, 60.0),
        (1, 50, "manual"),
        (2, 80, 60.0),
    ]
    assert [s.status for s in (first, second, third)] == [
        Status.PASSED,
        Status.ROLLED_BACK,
        Status.SKIPPED,
    ]
    assert first.started_at is not None and first.ended_at == second.started_at
    assert second.started_at is not None and second.ended_at is not None
    assert first.started_at <= second.started_at <= second.ended_at
    assert (third.started_at, third.ended_at) == (None, None)


def test_a_later_rollout_of_the_same_version_does_not_move_an_earlier_ones_timeline(
    adapters: Adapters, found: Services
) -> None:
    first = rollout_in(adapters)
    adapters.store.rollouts.update(first.id, "step", lambda row: None, step=0)
    adapters.store.rollouts.update(
        first.id, "rolled-back", lambda row: setattr(row, "status", records.ROLLED_BACK)
    )
    ended = found.rollouts.timeline(first.id)[0].ended_at
    again = rollout_in(adapters)  # the same canary version, tried again
    adapters.store.rollouts.update(again.id, "step", lambda row: None, step=0)
    adapters.store.rollouts.update(again.id, "step", lambda row: None, step=1)
    first_step, second_step = found.rollouts.timeline(first.id)
    assert (first_step.ended_at, first_step.status) == (ended, Status.ROLLED_BACK)
    assert (second_step.started_at, second_step.status) == (None, Status.SKIPPED)
