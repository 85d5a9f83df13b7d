"""RemoteServices is Services over HTTP: the same attributes, methods and parameters, and the
same read models and errors from a real server on 127.0.0.1."""

from __future__ import annotations

import inspect
from functools import cached_property
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gitrepos import git, make_repo
from shipyard.cli.app import app
from shipyard.domain import RolloutAction, TokenRole
from shipyard.errors import NotFound, ShipyardError
from shipyard.services.remote import RemoteServices

from .conftest import Live, Seed


def remote_attributes() -> list[str]:
    return [
        name for name, value in vars(RemoteServices).items() if isinstance(value, cached_property)
    ]


def test_each_remote_service_has_the_local_methods_with_the_same_parameters() -> None:
    assert set(remote_attributes()) >= {
        "runs", "tokens", "rollouts", "deployments", "artifacts", "audit"
    }  # fmt: skip
    for attribute in remote_attributes():
        remote_class = type(getattr(RemoteServices("http://127.0.0.1:9", "shy_x"), attribute))
        local_type = _local_type(attribute)
        for name, method in inspect.getmembers(remote_class, inspect.isfunction):
            if name.startswith("_"):
                continue
            assert hasattr(local_type, name), f"{attribute}.{name} is not a local method"
            here = list(inspect.signature(getattr(local_type, name)).parameters)
            there = list(inspect.signature(method).parameters)
            assert there == here, f"{attribute}.{name}: {there} != {here}"


def _local_type(attribute: str) -> type:
    module = __import__(f"shipyard.services.{attribute}", fromlist=["x"])
    return getattr(module, attribute.capitalize())


@pytest.fixture
def remote(live: Live, tokens: dict[TokenRole, str]) -> RemoteServices:
    return RemoteServices(live.url, tokens[TokenRole.ADMIN])


def test_reads_return_the_same_views_as_locally(
    live: Live, remote: RemoteServices, seed: Seed
) -> None:
    seed(), seed("wine")
    local = live.services
    assert remote.runs.list() == local.runs.list()
    assert remote.runs.get("wine") == local.runs.get("wine")
    assert remote.audit.events(project="tiny") == local.audit.events(project="tiny")
    assert remote.audit.events(action="run", limit=3) == local.audit.events(action="run", limit=3)
    assert remote.artifacts.search(name="tiny") == local.artifacts.search(name="tiny") == []
    assert remote.deployments.list() == local.deployments.list() == []
    assert remote.deployments.environments() == local.deployments.environments() == []


def test_errors_are_the_same_class_message_and_hint(live: Live, remote: RemoteServices) -> None:
    calls = [
        lambda s: s.rollouts.get("tiny"),
        lambda s: s.rollouts.steer("tiny", "production", RolloutAction.PAUSE),
        lambda s: s.artifacts.show("tiny", "9-abc"),
        lambda s: s.runs.get("tiny", 3),
    ]
    for call in calls:
        with pytest.raises(ShipyardError) as here:
            call(live.services)
        with pytest.raises(ShipyardError) as there:
            call(remote)
        assert type(there.value) is type(here.value)
        assert (there.value.message, there.value.hint) == (here.value.message, here.value.hint)
    with pytest.raises(NotFound):
        remote.runs.get("tiny")


def bare_repo(root: Path) -> Path:
    work, bare = root / "work", root / "tiny.git"
    make_repo(work, {"shipyard.yaml": "name: tiny\n"})
    git(root, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def test_a_project_registered_through_a_server_is_the_one_commands_pick(
    live: Live, remote: RemoteServices, tokens: dict[TokenRole, str], seed: Seed, tmp_path: Path
) -> None:
    project, secret = remote.projects.add("tiny", str(bare_repo(tmp_path)), branches=["main"])
    assert secret and project.name == "tiny" and project.hooks["github"] == "/hooks/github/tiny"
    assert remote.projects.list() == live.services.projects.list() == [project]
    seed()
    # No --project and no ./shipyard.yaml: the server's one project is picked, as locally.
    result = CliRunner().invoke(
        app,
        ["status", "1", "--server", live.url],
        env={"SHIPYARD_TOKEN": tokens[TokenRole.VIEWER], "SHIPYARD_STATE": None},
    )
    assert result.exit_code == 0, result.output
    assert "tiny run #1" in result.output
    assert remote.projects.remove("tiny").registered is False
