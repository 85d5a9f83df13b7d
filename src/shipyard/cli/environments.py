"""`shipyard deploy`, `rollback` and `envs`: what runs where."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from shipyard.cli.common import (
    JsonOption,
    ProjectOption,
    ServerOption,
    StateOption,
    console,
    pick_project,
    services,
    split_ref,
)
from shipyard.cli.render import print_json, styled_state


def deploy(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    env: Annotated[
        str, typer.Option("--env", "-e", help="Environment, e.g. staging or production.")
    ] = "staging",
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deploy an artifact to an environment with all traffic (production takes only `release` artifacts)."""
    from shipyard.cli.common import err

    name, version = split_ref(ref)
    say = (err if as_json else console).print
    live = services(state, server).deployments.deploy(name, version, env, say=say)
    if as_json:
        print_json(console, live.model_dump(mode="json"))
        return
    if live.standby:
        console.print(f"{live.standby} kept ready for `shipyard rollback --env {env}`")
    console.print(f"{name}:{version} serves all traffic in {env} at {live.url}")


def rollback(
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")] = "production",
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move all traffic back to the previous version, which was kept running (instant); the
    version it leaves stays as the standby, so a second rollback rolls forward."""
    found = services(state, server)
    name = pick_project(found, project)
    started = time.monotonic()
    live = found.deployments.rollback(name, env)
    if as_json:
        print_json(console, live.model_dump(mode="json"))
        return
    console.print(
        f"{name}/{env}: all traffic on {live.version} again ({(time.monotonic() - started) * 1000:.0f} ms); {live.standby} kept as standby"
    )


def envs(
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the environments: where clients call each one, and which versions run there with
    their traffic weight."""
    from shipyard.cli.render import make_table

    environments = services(state, server).deployments.environments(project)
    if as_json:
        print_json(console, [e.model_dump(mode="json") for e in environments])
        return
    rows = [d for environment in environments for d in environment.deployments]
    # Narrow enough for 80 columns: the process ids are in --json, for whoever needs them.
    columns = ("environment", "version", "traffic", "state", "endpoint")
    table = make_table(*columns, typed=("version", "endpoint"), title="environments")
    for d in rows:
        table.add_row(
            f"{d.project}/{d.environment}",
            d.version,
            f"{d.role} {d.weight}%",
            styled_state(d.state),
            d.endpoint or "",
        )
    console.print(table)
    for environment in environments:
        where = f"{environment.project}/{environment.environment}"
        routes = f" (gateway routes in {environment.routes})" if environment.routes else ""
        console.print(
            f"{where}: {environment.url or 'no URL yet'}{routes}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


def register(app: typer.Typer) -> None:
    for command in (deploy, rollback, envs):
        app.command()(command)
