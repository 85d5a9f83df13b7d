"""The command line. ``main`` renders Shipyard's errors as a message and a next step."""

from __future__ import annotations

import sys

from shipyard.errors import ShipyardError


def main() -> None:
    from rich.console import Console

    from shipyard.cli.app import app

    try:
        app(standalone_mode=True)
    except ShipyardError as exc:
        err = Console(stderr=True)
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"[yellow]next:[/] {exc.hint}", highlight=False)
        sys.exit(2 if exc.status_code in (400, 404, 409, 422) else 1)


__all__ = ["main"]
