"""`shipyard approve`, `reject` and `approvals`: people deciding at the release and canary gates."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shipyard.cli.common import (
    JsonOption,
    ProjectOption,
    ServerOption,
    StateOption,
    console,
    pick_project,
    services,
)
from shipyard.cli.render import print_json

if TYPE_CHECKING:
    from shipyard.services.approvals import ApprovalView

RunArgument = Annotated[int, typer.Argument(help="The waiting run's number.", min=1)]


def approve(
    number: RunArgument,
    project: ProjectOption = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (audit log and build-info).")
    ] = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a run waiting at its release (qa) or canary (releaser) gate; it goes on."""
    found = services(state, server)
    view = found.approvals.approve(pick_project(found, project), number, reason)
    if as_json:
        print_json(console, view.model_dump(mode="json"))
        return
    console.print(
        f"{view.project}#{view.run} approved at {view.gate} by {view.actor}:"
        f" queued again from {view.gate}"
    )


def reject(
    number: RunArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why the run must stop (required).")],
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a run waiting at a gate: it fails there, with your reason."""
    found = services(state, server)
    view = found.approvals.reject(pick_project(found, project), number, reason)
    if as_json:
        print_json(console, view.model_dump(mode="json"))
        return
    console.print(f"{view.project}#{view.run} rejected at {view.gate} by {view.actor}: {reason}")


def approvals(
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """The inbox: runs waiting for a person's approval, with who may approve them."""
    pending = services(state, server).approvals.pending(project)
    if as_json:
        print_json(console, [view.model_dump(mode="json") for view in pending])
        return
    if not pending:
        console.print("no run waits for an approval")
        return
    console.print(inbox_table(pending))


def inbox_table(pending: list[ApprovalView]) -> Table:
    from shipyard.cli.render import make_table

    columns = ("run", "gate", "may approve", "since", "deadline")
    table = make_table(*columns, typed=("run",), title="waiting for approval")
    for view in pending:
        table.add_row(
            f"{view.project}#{view.run}",
            view.gate.value,
            f"{view.approver} or above",
            _when(view.requested_at),
            _when(view.deadline),
        )
    return table


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else ""


def register(app: typer.Typer) -> None:
    app.command()(approve)
    app.command()(reject)
    app.command()(approvals)
