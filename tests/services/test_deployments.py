"""What runs where, as the runtime sees it, and the rules of deploying and rolling back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.domain import Role
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.services import Services
from shipyard.services.deployments import Health
from shipyard.store.models import Deployment

from .conftest import PASSING, published, rollout_in


def exited_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def deployed(
    adapters: Adapters, environment: str, version: str, role: Role, weight: int, pid: int | None
) -> None:
    artifact = adapters.store.add_artifact("iris", version, version * 64, 1234, {"run": 1}, None)
    row = Deployment(
        project="iris",
        environment=environment,
        version=version,
        artifact_id=artifact.id,
        role=role,
        weight=weight,
        state="ready" if pid else "starting",
        endpoint="http://127.0.0.1:1",
        pid=pid,
    )
    adapters.store.save_deployment(row, "started")


def test_a_server_whose_process_died_is_down_and_the_others_as_stored(
    adapters: Adapters, found: Services
) -> None:
    adapters.store.ensure_project("iris", "/repos/iris")
    deployed(adapters, "production", "1", Role.STABLE, 100, exited_pid())
    deployed(adapters, "production", "2", Role.STANDBY, 0, os.getpid())  # alive: this process
    deployed(adapters, "staging", "3", Role.CANDIDATE, 0, None)
    seen = {d.version: (d.state, d.health) for d in found.deployments.list("iris")}
    assert seen == {
        "1": ("down", Health.DOWN),
        "2": ("ready", Health.UP),
        "3": ("starting", Health.IDLE),
    }
    assert [d.version for d in found.deployments.list(environment="staging")] == ["3"]


def test_environments_group_the_deployments_with_their_stable_and_standby(
    adapters: Adapters, found: Services
) -> None:
    adapters.store.ensure_project("iris", "/repos/iris")
    deployed(adapters, "production", "1", Role.STANDBY, 0, os.getpid())
    deployed(adapters, "staging", "3", Role.STABLE, 100, os.getpid())
    deployed(adapters, "production", "2", Role.STABLE, 100, os.getpid())
    environments = found.deployments.environments("iris")
    assert [(e.environment, e.stable, e.standby) for e in environments] == [
        ("production", "2", "1"),
        ("staging", "3", None),
    ]
    assert [d.weight for d in environments[0].deployments] == [0, 100]
    assert environments[0].routes is None  # no gateway has written its routes
    assert found.deployments.environments("other") == []


def test_production_takes_only_what_release_holds(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    artifact = published(adapters, tmp_path, PASSING)
    with pytest.raises(InvalidInput) as refused:
        found.deployments.deploy("iris", artifact.version, "production")
    assert refused.value.message == f"iris:{artifact.version} is not in `release`."
    assert refused.value.hint == f"Promote it first: shipyard promote iris:{artifact.version}"
    assert adapters.store.deployments("iris") == []


@pytest.mark.parametrize("environment", ["..", "Prod", "a/b", "x" * 64])
def test_an_environment_must_be_a_configurable_name(
    adapters: Adapters, found: Services, tmp_path: Path, environment: str
) -> None:
    artifact = published(adapters, tmp_path, PASSING)
    with pytest.raises(InvalidInput, match="is not an environment name"):
        found.deployments.deploy("iris", artifact.version, environment)
    assert not (adapters.state.root / "environments").exists()  # nothing unpacked anywhere


def test_deploying_an_unknown_version_is_not_found(adapters: Adapters, found: Services) -> None:
    adapters.store.ensure_project("iris", "/repos/iris")
    with pytest.raises(NotFound):
        found.deployments.deploy("iris", "9-fffffff", "staging")


def test_no_rollback_during_a_rollout_nor_without_a_standby(
    adapters: Adapters, found: Services
) -> None:
    rollout = rollout_in(adapters, records.PAUSED)
    with pytest.raises(Conflict, match=f"Rollout {rollout.id} of 2-bbbbbbb is still going"):
        found.deployments.rollback("iris", "production")
    records.update_rollout(
        adapters.store, rollout.id, "test", lambda r: setattr(r, "status", records.ABORTED)
    )
    deployed(adapters, "production", "1", Role.STABLE, 100, os.getpid())
    with pytest.raises(NotFound, match="no previous version kept ready in iris/production"):
        found.deployments.rollback("iris", "production")
