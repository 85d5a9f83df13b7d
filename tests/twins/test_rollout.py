"""The rollout controller (canary/rollout.py) on the twins: steps, verdicts, commands, resumes.

Time is the fake clock: the plan below (20% for 30 s, 50% for 30 s or until promoted, then
live; the judge every 10 s) runs in a fraction of a second. Commands from the CLI are status
changes of the stored rollout, scheduled here at a moment of the walk.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shipyard.canary import records
from shipyard.canary.rollout import CanaryRollout
from shipyard.config.schema import ProjectConfig
from shipyard.coordination import new_owner
from shipyard.domain import Role, RolloutStatus, Status
from shipyard.errors import Conflict
from shipyard.pipeline import deploy
from shipyard.pipeline.stages import production
from shipyard.store.models import Rollout

from .conftest import PROJECT, World, release

ENV = "production"


def rollout_of_2_against_1(world: World, *, second_pause: str = "30s") -> CanaryRollout:
    """Version 1 live, version 2 started as the canary, a rollout stored at its first step."""
    deploy.go_live(world.adapters, release(world, "1"), ENV, "1", "live-1", world.said.append)
    config = release(world, "2", second_pause=second_pause)
    return begin(world, config)


def begin(world: World, config: ProjectConfig) -> CanaryRollout:
    stable = deploy.stable(world.adapters, PROJECT, ENV)
    canary = deploy.start(world.adapters, PROJECT, ENV, "2", Role.CANARY, world.said.append)
    assert stable is not None
    return CanaryRollout.begin(world.adapters, config, ENV, stable, canary, world.hooks())


def weights(world: World) -> list[dict[str, int]]:
    """Every route table the gateway was given, as version -> weight."""
    return [{b.version: b.weight for b in r.backends} for r in world.runtime.history(world.env_dir)]


def command(world: World, rollout: Rollout, status: RolloutStatus, after: float) -> None:
    """What `shipyard rollout <command>` does, ``after`` seconds into the walk."""

    def change() -> None:
        records.update_rollout(
            world.store, rollout.id, status.value, lambda r: setattr(r, "status", status)
        )

    world.clock.at(after, change)


def actions(world: World) -> list[str]:
    return [e.action for e in reversed(world.store.events(f"{PROJECT}/{ENV}/2"))]


def test_a_healthy_canary_walks_every_step_with_its_weights_and_goes_live(world: World) -> None:
    controller = rollout_of_2_against_1(world)
    world.traffic("1", 400)
    world.traffic("2", 100)
    started = world.clock.now

    done = controller.run(finish=True)

    assert done.status == RolloutStatus.PASSED
    assert weights(world)[-3:] == [{"1": 80, "2": 20}, {"1": 50, "2": 50}, {"2": 100, "1": 0}]
    assert world.clock.now - started == pytest.approx(60.0)  # two steps of 30 s, no real sleep
    windows = [r.window for r in world.runtime.history(world.env_dir)][-3:]
    assert windows == [f"rollout-{done.id}-step-0", f"rollout-{done.id}-step-1", f"live-{done.id}"]
    assert {d.version: d.role for d in deploy.running(world.adapters, PROJECT, ENV)} == {
        "1": Role.STANDBY,
        "2": Role.STABLE,
    }
    assert [v["outcome"] for v in done.verdicts] == ["pass"] * 6
    assert actions(world).count("rollout.step") == 2 and actions(world)[-1] == "rollout.passed"


def test_a_failing_verdict_rolls_back_at_once_whatever_the_step(world: World) -> None:
    controller = rollout_of_2_against_1(world)
    world.traffic("1", 400)
    world.traffic("2", 100, errors=30)
    started = world.clock.now

    done = controller.run(finish=True)

    assert done.status == RolloutStatus.ROLLED_BACK and done.weight == 0
    assert world.clock.now - started == pytest.approx(
        10.0
    )  # the first judgement, not the step's end
    assert weights(world)[-1] == {"1": 100, "2": 0}
    assert world.runtime.live("2") == []
    assert {d.version: d.role for d in deploy.running(world.adapters, PROJECT, ENV)} == {
        "1": Role.STABLE
    }
    event = world.store.events(f"{PROJECT}/{ENV}/2")[0]
    assert event.action == "rollout.rolled-back"
    # Why, in the judge's words: the failed check as a sentence with its numbers.
    assert event.detail["reason"].startswith(
        "step 1 (20%): error_rate: fail: canary 30.0% vs stable 0.0% > max"
    ), event.detail["reason"]
    assert "significant (p=" in event.detail["reason"]


def test_the_canary_stage_and_its_notice_say_which_check_failed_and_with_what_numbers(
    world: World,
) -> None:
    controller = rollout_of_2_against_1(world)
    world.traffic("1", 400)
    world.traffic("2", 100, errors=30)

    done = controller.run(finish=True)

    # The stage's message is what the rolled-back notice and `shipyard status` show.
    ctx = SimpleNamespace(store=world.store)
    outcome = production.outcome_of(ctx, done)  # type: ignore[arg-type]
    assert outcome.status is Status.ROLLED_BACK
    assert outcome.message.startswith(
        "rolled back (step 1 (20%): error_rate: fail: canary 30.0% vs stable 0.0% > max"
    ), outcome.message
    assert outcome.message.endswith("; 1 stays live")
    assert records.end_reason(world.store, done) in outcome.message


def test_an_inconclusive_step_is_extended_once_then_fails(world: World) -> None:
    controller = rollout_of_2_against_1(world)
    world.traffic("1", 400)
    world.traffic("2", 5)  # below min_requests: the judge cannot tell
    started = world.clock.now

    done = controller.run(finish=True)

    assert done.status == RolloutStatus.ROLLED_BACK
    assert world.clock.now - started == pytest.approx(40.0)  # 30 s step + one 10 s extension
    assert "step 1: inconclusive (5 canary requests); extended by 10 s" in world.said
    reason = world.store.events(f"{PROJECT}/{ENV}/2")[0].detail["reason"]
    assert reason == "step 1 (20%): still inconclusive after 1 extension(s) (5 canary requests)"
    assert weights(world)[-1] == {"1": 100, "2": 0}


def test_a_paused_step_holds_its_weights_until_resumed(world: World) -> None:
    controller = rollout_of_2_against_1(world)
    world.traffic("1", 400)
    world.traffic("2", 100)
    rollout = controller.rollout
    command(world, rollout, RolloutStatus.PAUSED, after=5)
    command(world, rollout, RolloutStatus.RUNNING, after=65)
    started = world.clock.now

    done = controller.run(finish=True)

    assert done.status == RolloutStatus.PASSED
    # The 60 s paused did not count towards the first step's 30 s.
    assert world.clock.now - started == pytest.approx(120.0, abs=1.0)
    judged_while_paused = [v for v in done.verdicts if v["step"] == 0]
    assert len(judged_while_paused) == 9  # the judge kept watching meanwhile
    assert weights(world)[-3] == {"1": 80, "2": 20}


def test_a_manual_step_waits_for_promote(world: World) -> None:
    controller = rollout_of_2_against_1(world, second_pause="manual")
    world.traffic("1", 400)
    world.traffic("2", 100)
    command(world, controller.rollout, RolloutStatus.PROMOTING, after=95)
    started = world.clock.now

    done = controller.run(finish=True)

    assert done.status == RolloutStatus.PASSED
    assert world.clock.now - started == pytest.approx(95.0, abs=0.25)
    assert "waiting for `shipyard rollout promote`" in world.said
    assert "rollout.waiting" in actions(world)
    assert weights(world)[-1] == {"2": 100, "1": 0}


def test_abort_rolls_back_within_a_poll(world: World) -> None:
    controller = rollout_of_2_against_1(world)
    world.traffic("1", 400)
    world.traffic("2", 100)
    command(world, controller.rollout, RolloutStatus.ABORTING, after=42)
    started = world.clock.now

    done = controller.run(finish=True)

    assert done.status == RolloutStatus.ABORTED
    assert world.clock.now - started == pytest.approx(42.0, abs=0.25)
    assert weights(world)[-1] == {"1": 100, "2": 0}
    reason = world.store.events(f"{PROJECT}/{ENV}/2")[0].detail["reason"]
    assert reason == "aborted by `shipyard rollout abort`"


class DriverDied(Exception):
    """The process driving the rollout is gone (SIGKILL): nothing of it runs any more."""


def test_another_driver_resumes_from_the_stored_step(world: World) -> None:
    first = rollout_of_2_against_1(world)
    world.traffic("1", 400)
    world.traffic("2", 100)

    def die() -> None:
        raise DriverDied

    world.clock.at(45, die)  # in the second step
    with pytest.raises(DriverDied):
        first.run(finish=True, roll_back_on_error=False)
    stored = records.find_rollout(world.store, PROJECT, ENV, first.rollout.id)
    assert (stored.status, stored.step_index, stored.weight) == (RolloutStatus.RUNNING, 1, 50)
    routed = len(world.runtime.history(world.env_dir))

    second = CanaryRollout(world.adapters, first.config, stored, world.hooks())
    done = second.run(finish=True)

    assert done.status == RolloutStatus.PASSED
    # It starts at the stored step (50%), never again at 20%.
    assert weights(world)[routed:] == [{"1": 50, "2": 50}, {"2": 100, "1": 0}]


def test_a_rollout_driven_by_a_live_owner_is_not_driven_twice(world: World) -> None:
    controller = rollout_of_2_against_1(world)
    lease = records.driver_lease(controller.rollout.id)
    assert world.leases.acquire(lease, new_owner("other-server"), ttl=60)

    with pytest.raises(Conflict, match="is already driven by another process"):
        controller.run(finish=True)
    with pytest.raises(Conflict, match="is driven by another process"):
        controller.abort("by hand")

    assert records.is_driven(world.leases, controller.rollout.id)
    assert weights(world)[-1] == {"1": 100}  # nothing moved
