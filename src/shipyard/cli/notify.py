"""`shipyard notify add|list|remove`: where the server posts its notices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.common import JsonOption, ServerOption, StateOption, console, services
from shipyard.cli.render import print_json
from shipyard.domain import NoticeKind

if TYPE_CHECKING:
    from shipyard.services.notifications import TargetView

notify_app = typer.Typer(name="notify")
KINDS = ", ".join(NoticeKind)


@notify_app.callback(invoke_without_command=True)
def notify(
    ctx: typer.Context,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Outgoing webhooks: a run failed, an approval is needed, a rollback, a release live.

    Without a subcommand, the targets (as `shipyard notify list`)."""
    if ctx.invoked_subcommand is None:
        list_targets(state, server, as_json)


@notify_app.command()
def add(
    url: Annotated[str, typer.Argument(help="An http(s) URL taking a JSON POST (Slack works).")],
    event: Annotated[
        list[NoticeKind] | None,
        typer.Option("--event", help=f"Only these (repeat it): {KINDS}. Default: all."),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's notices.")
    ] = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Post notices to URL from now on."""
    target = services(state, server, create=True).notifications.add(url, event or [], project)
    if as_json:
        print_json(console, target.model_dump(mode="json"))
        return
    console.print(f"notification target {target.id} added: {_what(target)}")


@notify_app.command("list")
def list_targets(
    state: StateOption = None, server: ServerOption = None, as_json: JsonOption = False
) -> None:
    """List the notification targets."""
    targets = services(state, server).notifications.list()
    if as_json:
        print_json(console, [target.model_dump(mode="json") for target in targets])
        return
    if not targets:
        console.print("no notification targets: `shipyard notify add URL` adds one")
        return
    from shipyard.cli.render import make_table

    columns = ("id", "url", "events", "project", "added by")
    table = make_table(*columns, typed=("id", "url"), title="notification targets")
    for target in targets:
        events = ", ".join(target.events) or "all"
        table.add_row(
            str(target.id), target.url, events, target.project or "all", target.created_by
        )
    console.print(table)


@notify_app.command()
def remove(
    target: Annotated[int, typer.Argument(help="The target's id (`shipyard notify list`).")],
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop posting to a target."""
    gone = services(state, server).notifications.remove(target)
    if as_json:
        print_json(console, gone.model_dump(mode="json"))
        return
    console.print(f"notification target {gone.id} removed")


def _what(target: TargetView) -> str:
    events = ", ".join(target.events) or "every notice"
    return f"{events} of {target.project or 'every project'}"


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app)
