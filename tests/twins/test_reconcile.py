"""The reconciler (controllers/reconcile.py) on the twins: the world is put back to the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from shipyard.canary import records
from shipyard.canary.rollout import CanaryRollout, RolloutHooks
from shipyard.controllers import Reconciler
from shipyard.coordination import new_owner
from shipyard.domain import Role, RolloutStatus
from shipyard.pipeline import deploy
from shipyard.runtime.interface import Backend, Routes
from shipyard.store.models import Deployment, utcnow

from .conftest import PROJECT, World, release

ENV = "production"
THREAD_DEADLINE = 60.0  # seconds a driver thread may take on a loaded machine


def live(world: World, *versions: str) -> None:
    for version in versions:
        config = release(world, version)
        deploy.go_live(world.adapters, config, ENV, version, f"live-{version}", world.said.append)


def rows(world: World) -> dict[str, Deployment]:
    return {d.version: d for d in deploy.running(world.adapters, PROJECT, ENV)}


def served(world: World) -> dict[str, tuple[str, int]]:
    routes = world.runtime.routes(world.env_dir)
    assert routes is not None
    return {b.version: (b.url, b.weight) for b in routes.backends}


def reconciler(world: World, now: Callable[[], datetime] = utcnow) -> Reconciler:
    """A reconciler whose rollout drivers wait on the fake clock."""

    def fake_time(say: Callable[[str], None]) -> RolloutHooks:
        return RolloutHooks(say, world.clock.wait, lambda: False, world.clock)

    return Reconciler(world.adapters, world.said.append, now=now, hooks=fake_time)


def test_a_dead_deployment_is_restarted_in_its_role_and_routed(world: World) -> None:
    live(world, "1", "2")
    dead = rows(world)["2"]
    world.runtime.kill("2")

    reconciler(world).reconcile(drive=False)

    now = rows(world)
    assert now["2"].id != dead.id and (now["2"].role, now["2"].weight) == (Role.STABLE, 100)
    assert world.runtime.is_alive(now["2"].pid or 0)
    assert served(world) == {"1": (now["1"].endpoint, 0), "2": (now["2"].endpoint, 100)}
    assert "iris/production: 2 (stable) is not running; starting it" in world.said
    events = [e.action for e in world.store.events(f"{PROJECT}/{ENV}/2", limit=3)]
    assert events == ["deployment.stopped", "deployment.restarted", "deployment.started"]


def test_the_gateway_serves_the_stored_routes_again(world: World) -> None:
    live(world, "1", "2")
    one, two = rows(world)["1"], rows(world)["2"]
    stale = (
        Backend("1", one.endpoint or "", 100, stable=True),
        Backend("2", two.endpoint or "", 0),
    )
    world.runtime.gateways[world.env_dir].routes = Routes(9, "stale", stale)  # a lost write
    world.runtime.crash_gateway(world.env_dir)

    reconciler(world).reconcile(drive=False)
    changes = len(world.runtime.history(world.env_dir))
    reconciler(world).reconcile(drive=False)  # a second pass finds nothing to do

    assert served(world) == {"1": (one.endpoint, 0), "2": (two.endpoint, 100)}
    assert world.runtime.gateways[world.env_dir].running
    assert len(world.runtime.history(world.env_dir)) == changes
    assert world.said.count("iris/production: gateway routes set to the stored state") == 1


def test_routes_being_changed_are_left_to_their_changer_and_repaired_after(
    world: World,
) -> None:
    """A go-live writes the routes, then the weights: a reconciler that read the weights
    before would put the old routes back. It stays out while the routes lease is held."""
    live(world, "1", "2")
    one, two = rows(world)["1"], rows(world)["2"]
    moved = (
        Backend("1", one.endpoint or "", 100, stable=True),
        Backend("2", two.endpoint or "", 0),
    )
    world.runtime.gateways[world.env_dir].routes = Routes(9, "mid-change", moved)
    changer = new_owner("routes")
    assert world.adapters.leases.acquire(deploy.routes_lease(PROJECT, ENV), changer, 30)

    reconciler(world).reconcile(drive=False)
    assert served(world) == {"1": (one.endpoint, 100), "2": (two.endpoint, 0)}  # left alone

    world.adapters.leases.release(deploy.routes_lease(PROJECT, ENV), changer)
    reconciler(world).reconcile(drive=False)
    assert served(world) == {"1": (one.endpoint, 0), "2": (two.endpoint, 100)}


def test_a_route_change_waits_for_the_routes_lease_and_names_its_holder(world: World) -> None:
    live(world, "1")
    holder = new_owner("routes")
    assert world.adapters.leases.acquire(deploy.routes_lease(PROJECT, ENV), holder, 30)
    with (
        pytest.raises(deploy.RoutesBusy, match=holder),
        deploy.changing_routes(world.adapters, PROJECT, ENV, wait=0.2),
    ):
        pass


def test_during_a_rollout_its_weights_stand_and_only_restarted_addresses_change(
    world: World,
) -> None:
    live(world, "1")
    config = release(world, "2")
    stable = deploy.stable(world.adapters, PROJECT, ENV)
    canary = deploy.start(world.adapters, PROJECT, ENV, "2", Role.CANARY, world.said.append)
    assert stable is not None
    CanaryRollout.begin(world.adapters, config, ENV, stable, canary, world.hooks())
    deploy.route(world.adapters, config, ENV, [(stable, 80), (canary, 20)], "rollout-step-0")
    # The rows say 50/50, as a later step would have stored before the process died.
    for row, weight in ((stable, 50), (canary, 50)):
        row.weight = weight
        world.adapters.store.save_deployment(row, "weighted")
    world.runtime.kill("2")

    reconciler(world).reconcile(drive=False)

    restarted = rows(world)["2"]
    assert restarted.endpoint != canary.endpoint
    assert served(world) == {"1": (stable.endpoint, 80), "2": (restarted.endpoint, 20)}


def test_a_standby_past_its_rollback_window_is_stopped(world: World) -> None:
    live(world, "1", "2")

    reconciler(world).reconcile(drive=False)
    assert rows(world)["1"].role == Role.STANDBY  # within the hour it stays ready

    later = reconciler(world, now=lambda: utcnow() + timedelta(hours=1, seconds=1))
    later.reconcile(drive=False)

    assert set(rows(world)) == {"2"}
    assert world.runtime.live("1") == []
    assert "iris/production: rollback window of 1 is over; stopping it" in world.said


def test_an_undriven_rollout_gets_a_driver_and_a_driven_one_does_not(world: World) -> None:
    live(world, "1")
    config = release(world, "2")
    stable = deploy.stable(world.adapters, PROJECT, ENV)
    canary = deploy.start(world.adapters, PROJECT, ENV, "2", Role.CANARY, world.said.append)
    assert stable is not None
    rollout = CanaryRollout.begin(
        world.adapters, config, ENV, stable, canary, world.hooks()
    ).rollout
    world.traffic("1", 400)
    world.traffic("2", 100)

    lease = records.driver_lease(rollout.id)
    other = new_owner("other-server")
    assert world.leases.acquire(lease, other, ttl=60)
    control = reconciler(world)
    control.reconcile()
    assert control.drivers == {}  # somebody drives it: left alone
    world.leases.release(lease, other)  # that somebody is gone

    control.reconcile()
    control.drivers[rollout.id].join(THREAD_DEADLINE)

    done = records.find_rollout(world.store, PROJECT, ENV, rollout.id)
    assert done.status == RolloutStatus.PASSED
    assert rows(world)["2"].role == Role.STABLE
    assert f"rollout {rollout.id} (iris/production): canary 2 passed every step" in world.said
    assert not records.is_driven(world.leases, rollout.id)
