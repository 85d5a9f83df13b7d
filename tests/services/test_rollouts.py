"""The rollout rules: which command applies to which status, what each one records, and who
asked, against a real store and the store's leases."""

from __future__ import annotations

import pytest

from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.domain import RolloutAction
from shipyard.errors import Conflict, NotFound
from shipyard.services import Services
from shipyard.store import acting_as

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
