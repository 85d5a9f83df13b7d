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
from shipyard.services.views import RunView, StageView

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
    stages = _StageFollower(found, reporter)
    shown = ""
    try:
        while True:
            run = found.runs.get(run.project, run.number)
            for stage in run.stages:
                stages.report(run, stage)
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


class _StageFollower:
    """What has been reported of each stage: when it was first seen running, how much of its
    log has been printed, and whether its end has been told."""

    def __init__(self, found: RemoteServices, reporter: Reporter) -> None:
        self.found, self.reporter = found, reporter
        self.started: dict[str, float] = {}
        self.offsets: dict[str, int] = {}
        self.done: set[str] = set()

    def report(self, run: RunView, stage: StageView) -> None:
        name, status = stage.name, stage.status
        if name in self.done or status is Status.QUEUED:
            return
        if name not in self.started and status is not Status.SKIPPED:
            self.started[name] = time.monotonic()
            self.reporter.stage_started(name)
        if name in self.started:
            chunk = self.found.runs.log(run.project, run.number, name, self.offsets.get(name, 0))
            self.offsets[name] = chunk.offset
            for line in chunk.text.splitlines():
                self.reporter.line(name, line)
        if status.finished:
            self.done.add(name)
            began = self.started.get(name)
            seconds = time.monotonic() - began if began is not None else 0.0
            self.reporter.stage_finished(name, status, stage.message or "", seconds)
