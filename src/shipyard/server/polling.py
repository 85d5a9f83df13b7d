"""Polling: for remotes that cannot send webhooks, ask them for their branch heads.

Every registered project with a ``poll_interval`` is asked (``git ls-remote``) that often for
the heads of its watched branches. A head that differs from the sha of the branch's newest run
is pushed to ``Projects.push`` like a webhook's push, so a commit a webhook already queued is
not queued again, and a branch never run before gets its current head built. Each project's
poll is taken with a lease (``poll:<project>``), so servers sharing a store poll it once.
"""

from __future__ import annotations

import logging
import threading
import time

from shipyard.coordination import new_owner
from shipyard.errors import ShipyardError
from shipyard.git import ls_remote
from shipyard.services import Services
from shipyard.services.projects import ProjectView
from shipyard.store import acting_as

__all__ = ["Poller"]

log = logging.getLogger(__name__)
TICK = 0.5  # how often due projects are looked for, seconds


class Poller:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.owner = new_owner("poller")
        self._due: dict[str, float] = {}

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; a failing remote is logged and tried again later."""
        while not stop.is_set():
            self.poll_due()
            stop.wait(TICK)

    def poll_due(self) -> None:
        now = time.monotonic()
        for project in self.services.projects.list():
            if project.poll_interval is None or self._due.get(project.name, 0.0) > now:
                continue
            self._due[project.name] = now + project.poll_interval
            try:
                self.poll(project)
            except ShipyardError as exc:
                log.warning("polling %s failed: %s", project.name, exc.message)
            except Exception:  # a bug or a busy database must not end polling for all
                log.exception("polling %s failed", project.name)

    def poll(self, project: ProjectView) -> list[int]:
        """Queue a run for each watched branch whose head is new; the runs' numbers."""
        assert project.remote is not None and project.poll_interval is not None
        leases = self.services.adapters.leases
        if not leases.acquire(f"poll:{project.name}", self.owner, project.poll_interval + 30):
            return []  # another server polls this project
        projects, queued = self.services.projects, []
        for ref, sha in ls_remote(project.remote, "refs/heads/*").items():
            branch = ref.removeprefix("refs/heads/")
            if project.watches(branch) and sha != projects.last_sha(project.name, branch):
                with acting_as("poll"):
                    result = projects.push(project.name, trigger="poll", ref=ref, sha=sha)
                if result.run is not None:
                    queued.append(result.run)
        return queued
