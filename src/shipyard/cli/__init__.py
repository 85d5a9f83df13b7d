"""The command line. ``main`` renders Shipyard's errors as a message and a next step.

The CLI starts in a fraction of a second because its modules import only typer, rich and
light Shipyard modules (domain, errors, paths); a command's body imports what it needs
(services, the store, the pipeline). ``tests/cli/test_startup.py`` keeps it that way.
"""

from __future__ import annotations

import sys

from shipyard import __version__
from shipyard.errors import ShipyardError

VERSION_LINE = f"shipyard {__version__}"


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # answered before typer builds fifty commands
        print(VERSION_LINE)
        return
    from rich.console import Console

    from shipyard.cli.app import app
    from shipyard.cli.ondemand import click_command

    try:
        click_command(app)(standalone_mode=True)
    except ShipyardError as exc:
        err = Console(stderr=True)
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"[yellow]next:[/] {exc.hint}", highlight=False)
        sys.exit(2 if exc.status_code in (400, 404, 409, 422) else 1)


__all__ = ["VERSION_LINE", "main"]
