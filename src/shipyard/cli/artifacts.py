"""`shipyard artifacts` and `shipyard promote`: the artifact repositories."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from shipyard.cli.common import JsonOption, ProjectOption, StateOption, adapters, console, split_ref
from shipyard.cli.render import print_json
from shipyard.domain import RELEASE_REPOSITORY

artifacts_app = typer.Typer(
    help="The artifact repositories (`dev`, `release`).", no_args_is_help=False
)


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


def register(app: typer.Typer) -> None:
    app.add_typer(artifacts_app, name="artifacts")
    app.command()(promote)
