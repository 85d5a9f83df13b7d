"""`shipyard rollout ...` and `shipyard up` against a real store: the commands are status changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shipyard.canary import records
from shipyard.cli.app import app
from shipyard.coordination.store import StoreLeases
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.paths import StateDir
from shipyard.store import Store
from shipyard.store.models import Rollout

STEPS = [{"weight": 20, "pause": 60.0}, {"weight": 50, "pause": "manual"}]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state: Path) -> Iterator[Store]:
    opened = Store(StateDir(state).ensure().database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def rollout(store: Store) -> Rollout:
    store.ensure_project("iris", "/repos/iris")
    row = Rollout(
        project="iris",
        environment="production",
        stable_version="1-aaaaaaa",
        canary_version="2-bbbbbbb",
        steps=STEPS,
        step_index=0,
        weight=20,
        status=records.RUNNING,
        verdicts=[
            {
                "step": 0,
                "outcome": "pass",
                "canary_requests": 40,
                "stable_requests": 160,
                "checks": [{"name": "error_rate", "outcome": "pass", "detail": "canary 0.0%"}],
            }
        ],
    )
    return store.save_rollout(row, "started")


def shipyard(state: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--state", str(state)])


def status_of(store: Store, rollout: Rollout) -> str:
    return records.find_rollout(store, "iris", "production", rollout.id).status


def test_status_shows_step_weight_and_last_verdict(state: Path, rollout: Rollout) -> None:
    shown = shipyard(state, "rollout", "status", "-p", "iris")
    assert shown.exit_code == 0, shown.output
    assert "1-aaaaaaa -> 2-bbbbbbb: running" in shown.stdout
    assert "step 1/2 at 20%" in shown.stdout and "NOT driven" in shown.stdout
    assert "manual" in shown.stdout and "last verdict (step 1): pass" in shown.stdout
    assert shipyard(state, "rollout", "-p", "iris").stdout == shown.stdout  # the group alone
    data = json.loads(shipyard(state, "rollout", "status", "-p", "iris", "--json").stdout)
    assert (data["id"], data["status"], data["weight"], data["driven"]) == (
        rollout.id,
        "running",
        20,
        False,
    )
    assert data["steps"] == STEPS


def test_a_driven_rollout_is_reported_as_driven(
    state: Path, store: Store, rollout: Rollout
) -> None:
    leases = StoreLeases(store)
    with leases.hold(records.driver_lease(rollout.id), "another-process") as _:
        data = json.loads(shipyard(state, "rollout", "status", "-p", "iris", "--json").stdout)
    assert data["driven"] is True
    assert not records.is_driven(leases, rollout.id)


def test_pause_promote_and_their_refusals(state: Path, store: Store, rollout: Rollout) -> None:
    assert shipyard(state, "rollout", "pause", "-p", "iris").exit_code == 0
    assert status_of(store, rollout) == records.PAUSED
    promoted = shipyard(state, "rollout", "promote", "-p", "iris")
    assert promoted.exit_code == 0 and "no process drives this rollout" in promoted.stdout
    assert status_of(store, rollout) == records.PROMOTING
    refused = shipyard(state, "rollout", "pause", "-p", "iris")
    assert isinstance(refused.exception, Conflict)
    assert "is promoting; `pause` applies to a rollout that is running or waiting" in str(
        refused.exception
    )
    assert status_of(store, rollout) == records.PROMOTING
    events = [e.action for e in store.events("iris/production/2-bbbbbbb")]
    assert events[:2] == ["rollout.promote", "rollout.pause"]


def test_a_finished_rollout_cannot_be_resumed_or_aborted(
    state: Path, store: Store, rollout: Rollout
) -> None:
    records.update_rollout(
        store, rollout.id, "test", lambda r: setattr(r, "status", records.ROLLED_BACK)
    )
    resumed = shipyard(state, "rollout", "resume", "-p", "iris")
    assert isinstance(resumed.exception, Conflict)
    assert resumed.exception.hint == "`shipyard rollout status` shows its verdicts."
    aborted = shipyard(state, "rollout", "abort", "-p", "iris")
    assert isinstance(aborted.exception, Conflict)
    assert status_of(store, rollout) == records.ROLLED_BACK


def test_no_rollout_is_not_found_with_a_hint(state: Path, store: Store) -> None:
    store.ensure_project("iris", "/repos/iris")
    missing = shipyard(state, "rollout", "status", "-p", "iris", "--id", "7")
    assert isinstance(missing.exception, NotFound)
    assert str(missing.exception) == "There is no rollout 7 in iris/production."


def test_up_once_on_an_empty_state_and_a_bad_interval(state: Path) -> None:
    once = shipyard(state, "up", "--once")
    assert once.exit_code == 0, once.output
    assert "0 rollout(s) driven" in once.stdout
    bad = shipyard(state, "up", "--interval", "soon")
    assert isinstance(bad.exception, InvalidInput)
    assert bad.exception.hint == "Write it as 2s, 1m or 0.5."
