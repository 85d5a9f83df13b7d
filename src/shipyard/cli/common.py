"""What every command module shares: consoles, common options, and finding the project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from shipyard.adapters import Adapters
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.services import Services

console = Console()
err = Console(stderr=True)

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


def services(state: Path | None) -> Services:
    """The service layer every command calls: the one way from the CLI into the core."""
    from shipyard.services import Services

    return Services(adapters(state))


def pick_project(found: Adapters | Services, project: str | None) -> str:
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


def _project_names(found: Adapters | Services) -> list[str]:
    if isinstance(found, Adapters):
        return [p.name for p in found.store.list_projects()]
    return _project_names(found.adapters)


def split_ref(value: str) -> tuple[str, str]:
    name, sep, version = value.partition(":")
    if not sep or not name or not version:
        raise InvalidInput(
            f"{value!r} is not NAME:VERSION.",
            hint="For example iris:3-1a2b3c4 (see `shipyard artifacts`).",
        )
    return name, version
