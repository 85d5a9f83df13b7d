"""What every command module shares: consoles, common options, the services a command calls
(this state directory's, or a server's), and finding the project."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, overload

import typer
from rich.console import Console

from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # the adapters and services import SQLAlchemy and more: not at CLI start
    from shipyard.adapters import Adapters
    from shipyard.services import Services
    from shipyard.services.remote import RemoteServices
    from shipyard.services.views import RunsAtAGlance

console = Console()
err = Console(stderr=True)

STATE_HELP = (
    "State directory (default: $SHIPYARD_STATE, else the nearest .shipyard/ here or above)."
)
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
SERVER_HELP = "A Shipyard server's URL (default: $SHIPYARD_SERVER); its token is $SHIPYARD_TOKEN."
ServerOption = Annotated[
    str | None,
    typer.Option("--server", help=SERVER_HELP, envvar="SHIPYARD_SERVER", show_envvar=False),
]
TOKEN_ENV = "SHIPYARD_TOKEN"


def adapters(state: Path | None, *, create: bool = False) -> Adapters:
    """This state directory's adapters. Only commands that set Shipyard up (``run``, ``server``,
    ``project add``...) pass ``create``; the others say there is no state instead of making
    an empty one in whatever folder the user is in."""
    from shipyard.wiring import open_adapters

    return open_adapters(state, create=create)


@overload
def services(state: Path | None, *, create: bool = False) -> Services: ...


@overload
def services(
    state: Path | None, server: str | None, *, create: bool = False
) -> Services | RemoteServices: ...


def services(
    state: Path | None, server: str | None = None, *, create: bool = False
) -> Services | RemoteServices:
    """What a command calls: a server's services when it names one, else this state directory's.

    The one place the CLI chooses; both sides have the same methods and return the same views,
    so a command prints the same either way.
    """
    if not server:
        from shipyard.services import Services

        return Services(adapters(state, create=create))
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InvalidInput(
            f"Talking to the server at {server} needs an API token in ${TOKEN_ENV}.",
            hint="Ask an admin for one (`shipyard token create NAME --role ...` on the server), "
            f"then `export {TOKEN_ENV}=...`.",
        )
    from shipyard.services.remote import RemoteServices

    return RemoteServices(server, token)


def run_reader(state: Path | None, server: str | None) -> Services | RemoteServices | RunsAtAGlance:
    """What ``shipyard status`` reads runs from: a glance at a local SQLite state whose schema
    is current (``store/glance.py``: the store's own statements through sqlite3, without
    importing SQLAlchemy), else the services as every other command."""
    if not server:
        from shipyard.paths import StateDir, resolve_state_dir
        from shipyard.services.views import RunsAtAGlance
        from shipyard.store.glance import Glance

        glance = Glance.open(StateDir(resolve_state_dir(state, must_exist=True)).database)
        if glance is not None:
            return RunsAtAGlance(glance)
    return services(state, server)


def pick_project(
    found: Adapters | Services | RemoteServices | RunsAtAGlance, project: str | None
) -> str:
    if project:
        return project
    local = Path("shipyard.yaml")
    if local.is_file():
        from shipyard.config.loader import load_config

        return load_config(local).name
    names = _project_names(found)
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


def _project_names(found: Adapters | Services | RemoteServices | RunsAtAGlance) -> list[str]:
    from shipyard.services.views import RunsAtAGlance

    if isinstance(found, RunsAtAGlance):
        return found.project_names()
    from shipyard.adapters import Adapters
    from shipyard.services import Services

    if isinstance(found, Adapters):
        return [p.name for p in found.store.list_projects()]
    if isinstance(found, Services):
        return _project_names(found.adapters)
    return [p.name for p in found.projects.list()]


def split_ref(value: str) -> tuple[str, str]:
    name, sep, version = value.partition(":")
    if not sep or not name or not version:
        raise InvalidInput(
            f"{value!r} is not NAME:VERSION.",
            hint="For example iris:3-1a2b3c4 (see `shipyard artifacts`).",
        )
    return name, version
