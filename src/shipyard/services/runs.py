"""Runs: queue a commit, read runs.

A run is queued with its commit pinned and its ``shipyard.yaml`` validated, so a bad file is
refused before any work; a worker (the server's, or ``shipyard run`` in the foreground) then
claims it by lease and drives it (``pipeline/engine.py``).
"""

from __future__ import annotations

from pathlib import Path

from shipyard.adapters import Adapters
from shipyard.config.loader import parse_config
from shipyard.errors import ConfigError
from shipyard.git import repository_root, resolve_commit, show_file
from shipyard.services.views import RunView

__all__ = ["CONFIG_FILE", "Runs"]

CONFIG_FILE = "shipyard.yaml"


class Runs:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters

    def queue(
        self, path: Path, ref: str = "HEAD", *, trigger: str = "cli", branch: str | None = None
    ) -> RunView:
        """Pin ``ref`` of the repository at ``path`` to its sha, check its config, queue a run.

        ``branch`` names the pushed branch when ``ref`` is a bare sha (webhooks, polling).
        """
        repository = repository_root(path)
        sha = resolve_commit(repository, ref)
        text = show_file(repository, sha, CONFIG_FILE)
        if text is None:
            raise ConfigError(
                f"Commit {sha[:12]} has no {CONFIG_FILE}.",
                hint="Run `shipyard init`, commit the file, and run again.",
            )
        config = parse_config(text, f"{CONFIG_FILE} at {sha[:12]}")
        store = self.adapters.store
        store.ensure_project(config.name, str(repository))
        run = store.create_run(config.name, sha, branch or ref, trigger=trigger)
        return RunView.of(run)

    def get(self, project: str, number: int | None = None) -> RunView:
        return RunView.of(self.adapters.store.get_run(project, number))

    def list(self, project: str | None = None, limit: int = 20) -> list[RunView]:
        return [RunView.of(run) for run in self.adapters.store.list_runs(project, limit)]
