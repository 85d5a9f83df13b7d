"""Incoming webhooks, one module per forge behind ``interface.Provider``."""

from __future__ import annotations

from shipyard.server.webhooks.gitea import Gitea
from shipyard.server.webhooks.github import GitHub
from shipyard.server.webhooks.gitlab import GitLab
from shipyard.server.webhooks.interface import Provider
from shipyard.services.projects import Forge

__all__ = ["PROVIDERS"]

PROVIDERS: dict[Forge, Provider] = {
    Forge.GITHUB: GitHub(),
    Forge.GITLAB: GitLab(),
    Forge.GITEA: Gitea(Forge.GITEA),
    Forge.FORGEJO: Gitea(Forge.FORGEJO),
}
