"""`shipyard run` in the foreground: this process claims its run and drives it here.

The output is what it always was. When the run parks (an approval, its deploy turn) the
foreground says so and waits, holding no lease, until the run is back in the queue, then
drives on; a server may take it meanwhile, and then the foreground follows it to its end.
Ctrl-C while waiting leaves the run queued or parked for a server.
"""

from __future__ import annotations

import time

import typer
from rich.console import Console

from shipyard.adapters import Adapters
from shipyard.domain import Status
from shipyard.pipeline.context import Reporter
from shipyard.pipeline.engine import Pipeline
from shipyard.processes import process_owner

__all__ = ["drive_here"]

POLL_SECONDS = 0.5


def drive_here(
    adapters: Adapters, project: str, number: int, reporter: Reporter, out: Console
) -> tuple[Status, dict[str, str]]:
    """Drive the run to its end here; returns its final status and the endpoints it left."""
    pipeline = Pipeline(adapters, reporter)
    endpoints: dict[str, str] = {}
    shown = ""
    try:
        while True:
            lease = pipeline.runs.claim(project, number, process_owner())
            if lease is not None:
                with lease:
                    ctx = pipeline.context(project, number)
                    pipeline.drive(ctx, lease)
                endpoints.update(ctx.endpoints)
            run = pipeline.runs.get(project, number)
            if run.status.finished:
                return run.status, endpoints
            note = _note(run.status, run.message, run.worker)
            if note != shown:
                out.print(note)
                shown = note
            time.sleep(POLL_SECONDS)
            pipeline.runs.release_turns()  # without a server, nobody else would
    except KeyboardInterrupt:
        out.print(f"{project}#{number} is left {pipeline.runs.get(project, number).status}")
        raise typer.Exit(130) from None


def _note(status: Status, message: str | None, worker: str | None) -> str:
    if status is Status.WAITING:
        return f"waiting: {message}"
    if status is Status.RUNNING:
        return f"driven by {worker}"
    return f"{status}: {message or ''}".rstrip(": ")
