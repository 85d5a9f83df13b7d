"""`shipyard server`: the always-on API, workers and controllers (``server/main.py``)."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.common import StateOption, adapters, console
from shipyard.coordination.interface import DEFAULT_TTL


def server(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 127.0.0.1 keeps it local.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port of the HTTP API and webhooks.")] = 8700,
    workers: Annotated[
        int, typer.Option("--workers", help="Runs driven at once (of different projects).")
    ] = 2,
    lease_ttl: Annotated[
        float,
        typer.Option(
            "--lease-ttl",
            help="Seconds before the runs and processes of a server that died are taken over.",
        ),
    ] = DEFAULT_TTL,
    state: StateOption = None,
) -> None:
    """Run the server: the HTTP API, webhooks, workers that drive queued runs, the controllers."""
    from shipyard.server.main import ServerOptions, serve

    options = ServerOptions(host=host, port=port, workers=workers, lease_ttl=lease_ttl)
    serve(
        adapters(state, create=True),
        options,
        lambda text: console.print(text, markup=False, highlight=False),
    )


def register(app: typer.Typer) -> None:
    app.command()(server)
