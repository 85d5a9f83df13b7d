"""`shipyard run` against a server: the server drives the run; this process follows it.

What it prints is what the foreground prints (the same reporter): each stage as it starts, its
log lines, and how it ended. Ctrl-C stops following; the run goes on on the server.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from shipyard.domain import Status
from shipyard.errors import ConfigError
from shipyard.pipeline.context import Reporter
from shipyard.services.remote import RemoteServices
from shipyard.services.views import RunView

__all__ = ["follow", "queue_on_server"]

POLL_SECONDS = 0.5


def queue_on_server(found: RemoteServices, path: Path, ref: str) -> RunView:
    """Pin ``ref`` here, then ask the server to fetch that commit from the project's remote."""
    from shipyard.config.loader import parse_config
    from shipyard.git import repository_root, resolve_commit, show_file

    repository = repository_root(path)
    sha = resolve_commit(repository, ref)
    text = show_file(repository, sha, "shipyard.yaml")
    if text is None:
        raise ConfigError(f"Commit {sha[:12]} has no shipyard.yaml.")
    name = parse_config(text, f"shipyard.yaml at {sha[:12]}").name
    return found.projects.run(name, sha)


def follow(found: RemoteServices, run: RunView, reporter: Reporter, out: Console) -> RunView:
    """Report the run's stages as the server drives them, until the run ends."""
    started: dict[str, float] = {}
    offsets: dict[str, int] = {}
    done: set[str] = set()
    shown = ""
    try:
        while True:
            run = found.runs.get(run.project, run.number)
            for stage in run.stages:
                _report(
                    found,
                    run,
                    stage.name,
                    stage.status,
                    stage.message,
                    reporter,
                    started,
                    offsets,
                    done,
                )
            if run.status.finished:
                return run
            note = f"waiting: {run.message}" if run.status is Status.WAITING else ""
            if note and note != shown:
                out.print(note)
            shown = note
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        out.print(
            f"{run.project}#{run.number} goes on on the server (`shipyard status {run.number}`)"
        )
        raise typer.Exit(130) from None


def _report(
    found: RemoteServices,
    run: RunView,
    stage: str,
    status: Status,
    message: str | None,
    reporter: Reporter,
    started: dict[str, float],
    offsets: dict[str, int],
    done: set[str],
) -> None:
    if stage in done or status is Status.QUEUED:
        return
    if stage not in started and status is not Status.SKIPPED:
        started[stage] = time.monotonic()
        reporter.stage_started(stage)
    if stage in started:
        chunk = found.runs.log(run.project, run.number, stage, offsets.get(stage, 0))
        offsets[stage] = chunk.offset
        for line in chunk.text.splitlines():
            reporter.line(stage, line)
    if status.finished:
        done.add(stage)
        seconds = time.monotonic() - started[stage] if stage in started else 0.0
        reporter.stage_finished(stage, status, message or "", seconds)
