"""Go-live, rollback and withdrawal (pipeline/deploy.py) on the in-memory twins."""

from __future__ import annotations

import pytest

from shipyard.canary.rollout import CanaryRollout
from shipyard.domain import Role
from shipyard.errors import Conflict, NotFound, RuntimeFailure
from shipyard.pipeline import deploy

from .conftest import PORT, PROJECT, World, release

ENV = "production"


def roles(world: World) -> dict[str, str]:
    return {d.version: d.role for d in deploy.running(world.adapters, PROJECT, ENV)}


def served(world: World) -> dict[str, int]:
    routes = world.runtime.routes(world.env_dir)
    assert routes is not None
    return {b.version: b.weight for b in routes.backends}


def live(world: World, version: str) -> tuple[str, str | None]:
    config = release(world, version)
    return deploy.go_live(
        world.adapters, config, ENV, version, f"live-{version}", world.said.append
    )


def test_go_live_keeps_the_previous_stable_ready_as_the_one_standby(world: World) -> None:
    assert live(world, "1") == (f"http://127.0.0.1:{PORT}", None)
    assert live(world, "2") == (f"http://127.0.0.1:{PORT}", "1")

    assert roles(world) == {"1": Role.STANDBY, "2": Role.STABLE}
    assert served(world) == {"1": 0, "2": 100}
    assert [s.version for s in world.runtime.live()] == ["1", "2"]

    live(world, "3")  # the standby before that stops: one version is kept, not all

    assert roles(world) == {"2": Role.STANDBY, "3": Role.STABLE}
    assert [s.version for s in world.runtime.live()] == ["2", "3"]
    actions = [e.action for e in world.store.events(f"{PROJECT}/{ENV}/1")]
    assert actions[0] == "deployment.stopped" and "deployment.standby" in actions


def test_roll_back_swaps_stable_and_standby_in_one_route_change(world: World) -> None:
    live(world, "1")
    live(world, "2")
    changes = len(world.runtime.history(world.env_dir))

    back, current = deploy.roll_back(world.adapters, PROJECT, ENV)

    assert (back.version, current.version) == ("1", "2")
    assert roles(world) == {"1": Role.STABLE, "2": Role.STANDBY}
    assert served(world) == {"1": 100, "2": 0}
    assert len(world.runtime.history(world.env_dir)) == changes + 1
    assert [s.version for s in world.runtime.live()] == ["1", "2"]  # nothing restarted

    deploy.roll_back(world.adapters, PROJECT, ENV)  # rolling back again rolls forward

    assert roles(world) == {"1": Role.STANDBY, "2": Role.STABLE}
    assert served(world) == {"1": 0, "2": 100}
    assert world.store.events(f"{PROJECT}/{ENV}/2")[0].action == "deployment.rolled-back-to"


def test_roll_back_is_refused_while_a_rollout_is_going(world: World) -> None:
    live(world, "1")
    live(world, "2")
    config = release(world, "3")
    stable = deploy.stable(world.adapters, PROJECT, ENV)
    canary = deploy.start(world.adapters, PROJECT, ENV, "3", Role.CANARY, world.said.append)
    assert stable is not None
    CanaryRollout.begin(world.adapters, config, ENV, stable, canary, world.hooks())

    with pytest.raises(Conflict, match="is still going in iris/production") as refused:
        deploy.roll_back(world.adapters, PROJECT, ENV)

    assert (
        refused.value.hint
        == "`shipyard rollout abort` moves all traffic back to its stable version."
    )
    assert roles(world)["2"] == Role.STABLE


def test_roll_back_without_a_standby_is_not_found(world: World) -> None:
    live(world, "1")
    with pytest.raises(NotFound, match="no previous version kept ready"):
        deploy.roll_back(world.adapters, PROJECT, ENV)


def test_a_go_live_the_gateway_cannot_take_withdraws_the_new_version(world: World) -> None:
    live(world, "1")
    config = release(world, "2", port=PORT + 1)  # version 2 moves production to another port
    world.runtime.taken_ports.add(PORT + 1)  # which another program has taken

    with pytest.raises(RuntimeFailure, match=f"port {PORT + 1} is in use"):
        deploy.go_live(world.adapters, config, ENV, "2", "live-2", world.said.append)

    assert roles(world) == {"1": Role.STABLE}
    assert served(world) == {"1": 100}
    assert world.runtime.gateway_port(world.env_dir) == PORT
    assert world.runtime.live("2") == []
    assert "production: 2 withdrawn; all traffic is on 1" in world.said


def test_a_version_that_does_not_start_leaves_production_as_it_was(world: World) -> None:
    live(world, "1")
    config = release(world, "2")
    world.runtime.failing.add("2")

    with pytest.raises(RuntimeFailure, match="version 2 exited"):
        deploy.go_live(world.adapters, config, ENV, "2", "live-2", world.said.append)

    assert roles(world) == {"1": Role.STABLE}
    assert served(world) == {"1": 100}


def test_withdraw_moves_all_traffic_back_and_stops_the_version(world: World) -> None:
    live(world, "1")
    config = release(world, "2")
    canary = deploy.start(world.adapters, PROJECT, ENV, "2", Role.CANARY, world.said.append)
    stable = deploy.stable(world.adapters, PROJECT, ENV)
    assert stable is not None
    deploy.route(world.adapters, config, ENV, [(stable, 80), (canary, 20)], "w")
    assert served(world) == {"1": 80, "2": 20}

    deploy.withdraw(world.adapters, PROJECT, ENV, "2", world.said.append)

    assert served(world) == {"1": 100}
    assert roles(world) == {"1": Role.STABLE}
    assert not world.runtime.is_alive(canary.pid or 0)
