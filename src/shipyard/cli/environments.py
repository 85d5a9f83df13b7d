"""`shipyard deploy`, `rollback`, `envs` and `down`: what runs where."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from shipyard.cli.common import (
    JsonOption,
    ProjectOption,
    StateOption,
    adapters,
    console,
    pick_project,
    split_ref,
)
from shipyard.cli.render import print_json, styled_state
from shipyard.domain import RELEASE_REPOSITORY
from shipyard.errors import InvalidInput
from shipyard.runtime.interface import Runtime


def deploy(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    env: Annotated[
        str, typer.Option("--env", "-e", help="Environment, e.g. staging or production.")
    ] = "staging",
    state: StateOption = None,
) -> None:
    """Deploy an artifact to an environment with all traffic (production takes only `release` artifacts)."""
    from shipyard.pipeline import deploy as deployments

    a = adapters(state)
    name, version = split_ref(ref)
    if env == "production" and not a.store.in_repository(RELEASE_REPOSITORY, name, version):
        raise InvalidInput(
            f"{name}:{version} is not in `release`.",
            hint=f"Promote it first: shipyard promote {name}:{version}",
        )
    _, config = deployments.unpack(a, name, env, version)
    url, standby = deployments.go_live(a, config, env, version, f"deploy-{version}", console.print)
    if standby:
        console.print(f"{standby} kept ready for `shipyard rollback --env {env}`")
    console.print(f"{name}:{version} serves all traffic in {env} at {url}")


def rollback(
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")] = "production",
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """Move all traffic back to the previous version, which was kept running (instant)."""
    from shipyard.pipeline import deploy as deployments

    a = adapters(state)
    name = pick_project(a, project)
    started = time.monotonic()
    back, current = deployments.roll_back(a, name, env)
    console.print(
        f"{name}/{env}: all traffic on {back.version} again ({(time.monotonic() - started) * 1000:.0f} ms); {current.version} kept as standby"
    )


def envs(
    project: ProjectOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the environments: which versions run where, with their traffic weight."""
    a = adapters(state)
    rows = a.store.deployments(project)
    states = [observed_state(d, a.runtime) for d in rows]
    if as_json:
        print_json(
            console, [_deployment_dict(d) | {"state": s} for d, s in zip(rows, states, strict=True)]
        )
        return
    table = Table(title="environments", title_justify="left")
    for column in (
        "project",
        "environment",
        "version",
        "role",
        "weight",
        "state",
        "endpoint",
        "pid",
    ):
        table.add_column(column)
    for d, observed in zip(rows, states, strict=True):
        table.add_row(
            d.project,
            d.environment,
            d.version,
            d.role,
            f"{d.weight}%",
            styled_state(observed),
            d.endpoint or "",
            str(d.pid or ""),
        )
    console.print(table)
    for name in sorted({d.project for d in rows}):
        for env_dir in sorted((a.state.root / "environments" / name).glob("*/routes.json")):
            console.print(f"gateway {name}/{env_dir.parent.name}: routes in {env_dir}")


def observed_state(deployment: Any, runtime: Runtime) -> str:
    """The stored state, except that a `ready` server whose process has died is `down`."""
    pid = deployment.pid
    if deployment.state == "ready" and pid is not None and not runtime.is_alive(pid):
        return "down"
    return str(deployment.state)


def _deployment_dict(d: Any) -> dict[str, Any]:
    return {
        "project": d.project,
        "environment": d.environment,
        "version": d.version,
        "role": d.role,
        "weight": d.weight,
        "state": d.state,
        "endpoint": d.endpoint,
        "pid": d.pid,
    }


def register(app: typer.Typer) -> None:
    for command in (deploy, rollback, envs):
        app.command()(command)
