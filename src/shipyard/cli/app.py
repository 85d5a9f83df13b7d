"""The `shipyard` command: thin wrappers that parse, call the core and print.

Commands are grouped by subject in sibling modules, each with a ``register(app)``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli import (
    VERSION_LINE,
    analysis,
    approvals,
    artifacts,
    environments,
    notify,
    projects,
    rollout,
    server,
    tokens,
)
from shipyard.cli.common import (
    JsonOption,
    ProjectOption,
    ServerOption,
    StateOption,
    adapters,
    console,
    err,
    pick_project,
    run_reader,
    services,
)
from shipyard.cli.ondemand import OnDemandGroup
from shipyard.cli.render import (
    LogTail,
    RichReporter,
    print_json,
    run_dict,
    run_table,
    runs_table,
)
from shipyard.domain import STAGES, Status

if TYPE_CHECKING:
    from shipyard.services import Services
    from shipyard.services.remote import RemoteServices

app = typer.Typer(
    name="shipyard",
    help="Shipyard: from a git commit to a live, canary-released model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help, as click prints it: Rich's panels cost more than the rest of `--help` together.
    rich_markup_mode=None,
    cls=OnDemandGroup,
)


def show_version(value: bool) -> None:
    if value:
        console.print(VERSION_LINE, highlight=False)
        raise typer.Exit()


@app.callback()
def shipyard(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print Shipyard's version and exit.",
            callback=show_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Shipyard: from a git commit to a live, canary-released model."""


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="The repository to set up.")] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing shipyard.yaml.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a starter shipyard.yaml for an existing repository (an MLflow project too)."""
    from shipyard.config.starter import write_starter

    starter = write_starter(path.resolve(), force=force)
    if as_json:
        changes = [{"kind": c.kind.value, "path": c.path, "text": c.text} for c in starter.changes]
        print_json(console, {"config": str(starter.path), "changes": changes})
        return
    for change in starter.changes:
        console.print(change.line(), markup=False, highlight=False, soft_wrap=True)
    console.print("next: review shipyard.yaml, commit, then run [bold]shipyard run[/]")


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
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Only queue the run; a `shipyard server` drives it."),
    ] = False,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the whole pipeline for one commit, from build to live (or queue it with --detach)."""
    from shipyard.cli.foreground import drive_here
    from shipyard.services.runs import Runs

    if server:
        run_on_server(
            services(state, server), path, ref, quiet=quiet, detach=detach, as_json=as_json
        )
        return
    a = adapters(state, create=True)
    runs = Runs(a)
    queued = runs.queue(path, ref)
    out = err if as_json else console
    if detach:
        out.print(
            f"[bold]{queued.project}[/] run [bold]#{queued.number}[/] queued at {queued.sha[:12]} ({ref})"
        )
        if as_json:
            print_json(console, run_dict(queued))
        return
    out.print(
        f"[bold]{queued.project}[/] run [bold]#{queued.number}[/] at {queued.sha[:12]} ({ref})"
    )
    reporter = RichReporter(out, verbose=not quiet and not as_json)
    final, endpoints = drive_here(a, queued.project, queued.number, reporter, out)
    result = runs.get(queued.project, queued.number)
    if as_json:
        print_json(console, run_dict(result))
    else:
        console.print(run_table(result))
        console.print(f"logs: {a.state.run_dir(queued.project, queued.number) / 'logs'}")
        for name, url in endpoints.items():
            console.print(f"{name}: {url}")
    raise typer.Exit(0 if final is Status.PASSED else 1)


def run_on_server(
    found: Services | RemoteServices,
    path: Path,
    ref: str,
    *,
    quiet: bool,
    detach: bool,
    as_json: bool,
) -> None:
    """`shipyard run --server`: the server fetches the commit and drives the run; we follow."""
    from shipyard.cli.follow import follow, queue_on_server
    from shipyard.services.remote import RemoteServices

    assert isinstance(found, RemoteServices)
    out = err if as_json else console
    queued = queue_on_server(found, path, ref)
    verb = "queued" if detach else "on the server"
    out.print(
        f"[bold]{queued.project}[/] run [bold]#{queued.number}[/] {verb} at {queued.sha[:12]} ({ref})"
    )
    result = (
        queued
        if detach
        else follow(found, queued, RichReporter(out, verbose=not quiet and not as_json), out)
    )
    if as_json:
        print_json(console, run_dict(result))
    elif not detach:
        console.print(run_table(result))
    if not detach and result.status is not Status.PASSED:
        raise typer.Exit(1)


@app.command()
def status(
    number: Annotated[
        int | None, typer.Argument(help="Run number; without it, the recent runs.")
    ] = None,
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show recent runs, or one run's stages."""
    found = run_reader(state, server)
    if number is None:
        runs = found.runs.list(project)
        print_json(console, [run_dict(r) for r in runs]) if as_json else console.print(
            runs_table(runs)
        )
        return
    one = found.runs.get(pick_project(found, project), number)
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
    server: ServerOption = None,
) -> None:
    """Print a run's stage logs."""
    found = services(state, server)
    name = pick_project(found, project)
    found.runs.get(name, number)  # a run that does not exist is an error, not empty logs
    tails = [LogTail(one) for one in ([stage] if stage else STAGES)]
    while True:
        for tail in tails:
            tail.read(found.runs, name, number, sys.stdout, follow=follow)
        if not follow or all(tail.finished for tail in tails):
            break
        time.sleep(0.5)


@app.command()
def cancel(
    number: Annotated[int, typer.Argument(help="Run number.")],
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a run: its running command and all its children are stopped."""
    found = services(state, server)
    name = pick_project(found, project)
    one = found.runs.cancel(name, number)
    if as_json:
        print_json(console, run_dict(one))
        return
    console.print(f"cancel requested for {name}#{number} ({one.status})")


@app.command()
def down(
    project: ProjectOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop every deployment, gateway and process Shipyard started in the state directory."""
    from shipyard.services.processes import Processes

    done = Processes(adapters(state)).down(project)
    if as_json:
        print_json(console, done.model_dump(mode="json"))
        return
    console.print(f"stopped {done.deployments} deployment(s) in {done.environments} environment(s)")
    for process in done.processes:
        what = f" ({process.project} {process.version})" if process.project else ""
        console.print(f"stopped {process.kind} pid {process.pid}{what}, started by {process.owner}")


@app.command()
def demo(
    keep: Annotated[
        bool, typer.Option("--keep/--stop", help="Leave the demo's servers running at the end.")
    ] = True,
    where: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for the demo (default: a new temporary one)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="Port of the demo's server and dashboard (default: a free one)."
        ),
    ] = None,
) -> None:
    """Take the iris example from a commit to live, then a second version through a canary,
    driven by a `shipyard server` whose dashboard stays up to look at."""
    from shipyard.demo import run_demo

    raise typer.Exit(run_demo(console, where, keep=keep, port=port))


artifacts.register(app)
analysis.register(app)
server.register(app)
environments.register(app)
rollout.register(app)
tokens.register(app)
projects.register(app)
approvals.register(app)
notify.register(app)
