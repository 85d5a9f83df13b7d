"""The `shipyard` command: thin wrappers that parse, call the core and print."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shipyard.cli.render import (
    RichReporter,
    print_json,
    run_dict,
    run_table,
    runs_table,
    styled_state,
)
from shipyard.domain import RELEASE_REPOSITORY, STAGES, Status
from shipyard.errors import InvalidInput, NotFound
from shipyard.pipeline.context import Adapters

console = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="shipyard",
    help="Shipyard: from a git commit to a live, canary-released model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
artifacts_app = typer.Typer(
    help="The artifact repositories (`dev`, `release`).", no_args_is_help=False
)
app.add_typer(artifacts_app, name="artifacts")

STATE_HELP = "State directory (default: $SHIPYARD_STATE or ./.shipyard)."
StateOption = Annotated[
    Path | None,
    typer.Option("--state", help=STATE_HELP, envvar="SHIPYARD_STATE", show_envvar=False),
]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", help="Project name (default: the only one, or ./shipyard.yaml's)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def adapters(state: Path | None) -> Adapters:
    from shipyard.wiring import open_adapters

    return open_adapters(state)


def pick_project(a: Adapters, project: str | None) -> str:
    if project:
        return project
    local = Path("shipyard.yaml")
    if local.is_file():
        from shipyard.config.loader import load_config

        return load_config(local).name
    names = [p.name for p in a.store.list_projects()]
    if len(names) == 1:
        return names[0]
    if not names:
        raise NotFound(
            "There are no projects in this state directory yet.",
            hint="Run `shipyard run` in a project's repository.",
        )
    raise InvalidInput(
        f"Several projects are known ({', '.join(names)}).", hint="Choose one with --project NAME."
    )


def split_ref(value: str) -> tuple[str, str]:
    name, sep, version = value.partition(":")
    if not sep or not name or not version:
        raise InvalidInput(
            f"{value!r} is not NAME:VERSION.",
            hint="For example iris:3-1a2b3c4 (see `shipyard artifacts`).",
        )
    return name, version


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="The repository to set up.")] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing shipyard.yaml.")
    ] = False,
) -> None:
    """Write a starter shipyard.yaml for an existing repository."""
    from shipyard.config.starter import write_starter

    written = write_starter(path.resolve(), force=force)
    console.print(f"wrote {written}: edit it, commit it, then run [bold]shipyard run[/]")


@app.command()
def schema() -> None:
    """Print the JSON Schema of shipyard.yaml."""
    from shipyard.config.loader import schema_json

    sys.stdout.write(json.dumps(schema_json(), indent=2) + "\n")


@app.command()
def run(
    path: Annotated[
        Path, typer.Argument(help="A path inside the project's git repository.")
    ] = Path("."),
    ref: Annotated[
        str, typer.Option("--ref", help="Branch, tag or sha; pinned to its sha at start.")
    ] = "HEAD",
    state: StateOption = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Do not stream the stages' output.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the whole pipeline for one commit, from build to live."""
    from shipyard.pipeline.engine import Pipeline

    a = adapters(state)
    reporter = RichReporter(err if as_json else console, verbose=not quiet and not as_json)
    pipeline = Pipeline(a, reporter)
    ctx = pipeline.start(path, ref)
    (err if as_json else console).print(
        f"[bold]{ctx.project}[/] run [bold]#{ctx.number}[/] at {ctx.sha[:12]} ({ref})"
    )
    final = pipeline.execute(ctx)
    result = a.store.get_run(ctx.project, ctx.number)
    if as_json:
        print_json(console, run_dict(result))
    else:
        console.print(run_table(result))
        console.print(f"logs: {a.state.run_dir(ctx.project, ctx.number) / 'logs'}")
        for name, url in ctx.endpoints.items():
            console.print(f"{name}: {url}")
    raise typer.Exit(0 if final is Status.PASSED else 1)


@app.command()
def status(
    number: Annotated[
        int | None, typer.Argument(help="Run number; without it, the recent runs.")
    ] = None,
    project: ProjectOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show recent runs, or one run's stages."""
    a = adapters(state)
    if number is None:
        runs = list(a.store.list_runs(project))
        print_json(console, [run_dict(r) for r in runs]) if as_json else console.print(
            runs_table(runs)
        )
        return
    one = a.store.get_run(pick_project(a, project), number)
    print_json(console, run_dict(one)) if as_json else console.print(run_table(one))


@app.command()
def logs(
    number: Annotated[int, typer.Argument(help="Run number.")],
    stage: Annotated[str | None, typer.Argument(help=f"One stage: {', '.join(STAGES)}.")] = None,
    project: ProjectOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    state: StateOption = None,
) -> None:
    """Print a run's stage logs."""
    a = adapters(state)
    name = pick_project(a, project)
    if stage is not None and stage not in STAGES:
        raise InvalidInput(f"There is no stage {stage!r}.", hint=f"Stages: {', '.join(STAGES)}.")
    stages = [stage] if stage else list(STAGES)
    offsets = dict.fromkeys(stages, 0)
    while True:
        for one in stages:
            path = a.state.stage_log(name, number, one)
            if path.is_file():
                with path.open(encoding="utf-8", errors="replace") as handle:
                    handle.seek(offsets[one])
                    for line in handle:
                        sys.stdout.write(f"{one:<8}| {line}")
                    offsets[one] = handle.tell()
        if not follow or Status(a.store.get_run(name, number).status).finished:
            break
        time.sleep(0.5)


@app.command()
def cancel(
    number: Annotated[int, typer.Argument(help="Run number.")],
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """Cancel a run: its running command and all its children are stopped."""
    from shipyard.pipeline.engine import pid_alive

    a = adapters(state)
    name = pick_project(a, project)
    one = a.store.request_cancel(name, number)
    if not one.pid or not pid_alive(one.pid):
        # Nobody is driving this run any more: record the cancel directly.
        a.store.set_run_status(
            name, number, Status.CANCELLED, "cancelled while no process was driving it"
        )
    console.print(f"cancel requested for {name}#{number}")


@artifacts_app.callback(invoke_without_command=True)
def artifacts(
    ctx: typer.Context,
    repo: Annotated[
        str | None,
        typer.Option("--repository", "--repo", help="Only this repository (dev, release)."),
    ] = None,
    project: ProjectOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """List artifacts and the repositories that hold them."""
    if ctx.invoked_subcommand is not None:
        return
    a = adapters(state)
    rows = a.store.list_artifacts(repo, project)
    if as_json:
        print_json(console, [_artifact_dict(art, repos) for art, repos in rows])
        return
    table = Table(title="artifacts", title_justify="left")
    for column in ("name:version", "digest", "size", "repositories", "run", "created"):
        table.add_column(column)
    for art, repos in rows:
        table.add_row(
            f"{art.name}:{art.version}",
            art.digest[:19],
            f"{art.size:,}",
            ", ".join(repos),
            str(art.build_info.get("run", "")),
            art.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@artifacts_app.command("show")
def artifacts_show(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    state: StateOption = None,
) -> None:
    """Print an artifact's build-info as JSON."""
    a = adapters(state)
    name, version = split_ref(ref)
    art = a.store.get_artifact(name, version)
    repos = next((r for x, r in a.store.list_artifacts(name=name) if x.id == art.id), [])
    print_json(console, _artifact_dict(art, repos))


@app.command()
def promote(
    ref: Annotated[str, typer.Argument(help="NAME:VERSION")],
    source: Annotated[str, typer.Option("--from", help="Source repository.")] = "dev",
    target: Annotated[str, typer.Option("--to", help="Target repository.")] = RELEASE_REPOSITORY,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
    state: StateOption = None,
) -> None:
    """Promote an artifact between repositories (metadata only, no bytes copied)."""
    from shipyard.artifacts.repository import promote as promote_artifact

    a = adapters(state)
    name, version = split_ref(ref)
    added = promote_artifact(
        a.store, name, version, source=source, target=target, reason=reason or "manual promotion"
    )
    console.print(f"{name}:{version} {'promoted to' if added else 'was already in'} {target}")


@app.command()
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
    before = deployments.running(a, name, env)
    new = deployments.start(a, name, env, version, "stable", console.print)
    _, config = deployments.unpack(a, name, env, version)
    url = new.endpoint or ""
    if deployments.gateway_port(env, deployments.environment(config, env)):
        url = deployments.route(
            a, config, env, [(new, 100), *((d, 0) for d in before)], f"deploy-{version}"
        )
    for old in before:
        if old.role == "stable":
            old.role = "standby"
            a.store.save_deployment(old, "standby")
        else:
            deployments.stop(a, old)
    console.print(f"{name}:{version} serves all traffic in {env} at {url}")


@app.command()
def rollback(
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")] = "production",
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """Move all traffic back to the previous version, which was kept running (instant)."""
    from shipyard.pipeline import deploy as deployments

    a = adapters(state)
    name = pick_project(a, project)
    previous = deployments.running(a, name, env, "standby")
    current = deployments.stable(a, name, env)
    if not previous or current is None:
        raise NotFound(
            f"There is no previous version kept ready in {name}/{env}.",
            hint="`shipyard envs` shows what runs.",
        )
    back = previous[-1]
    _, config = deployments.unpack(a, name, env, back.version)
    started = time.monotonic()
    deployments.route(a, config, env, [(back, 100), (current, 0)], f"rollback-{back.version}")
    back.role, current.role = "stable", "standby"
    a.store.save_deployment(back, "rolled-back-to")
    a.store.save_deployment(current, "standby")
    console.print(
        f"{name}/{env}: all traffic on {back.version} again ({(time.monotonic() - started) * 1000:.0f} ms); {current.version} kept as standby"
    )


@app.command()
def envs(
    project: ProjectOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the environments: which versions run where, with their traffic weight."""
    a = adapters(state)
    rows = a.store.deployments(project)
    if as_json:
        print_json(console, [_deployment_dict(d) for d in rows])
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
    for d in rows:
        table.add_row(
            d.project,
            d.environment,
            d.version,
            d.role,
            f"{d.weight}%",
            styled_state(d.state),
            d.endpoint or "",
            str(d.pid or ""),
        )
    console.print(table)
    for name in sorted({d.project for d in rows}):
        for env_dir in sorted((a.state.root / "environments" / name).glob("*/routes.json")):
            console.print(f"gateway {name}/{env_dir.parent.name}: routes in {env_dir}")


@app.command()
def down(
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """Stop every deployment and gateway of the state directory (or of one project)."""
    from shipyard.pipeline import deploy as deployments

    a = adapters(state)
    rows = a.store.deployments(project)
    for d in rows:
        deployments.stop(a, d)
    stopped = {(d.project, d.environment) for d in rows}
    for env_dir in (a.state.root / "environments").glob("*/*"):
        if project is None or env_dir.parent.name == project:
            a.runtime.stop_gateway(env_dir)
    console.print(f"stopped {len(rows)} deployment(s) in {len(stopped)} environment(s)")


@app.command()
def demo(
    keep: Annotated[
        bool, typer.Option("--keep/--stop", help="Leave the demo's servers running at the end.")
    ] = True,
    where: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for the demo (default: a new temporary one)."),
    ] = None,
) -> None:
    """Take the iris example from a commit to live, then a second version through a canary."""
    from shipyard.demo import run_demo

    raise typer.Exit(run_demo(console, where, keep=keep))


def _artifact_dict(art: Any, repos: list[str]) -> dict[str, Any]:
    return {
        "name": art.name,
        "version": art.version,
        "digest": art.digest,
        "size": art.size,
        "repositories": repos,
        "created_at": art.created_at.isoformat(timespec="seconds") + "Z",
        "build_info": art.build_info,
    }


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
