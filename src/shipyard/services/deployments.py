"""Deployments: what runs where, putting a version live, and rolling back.

The state a deployment shows is observed, not only stored: a `ready` row whose server process
has died is `down`. The mechanisms (starting servers, moving routes) are ``pipeline/deploy.py``;
the rules about when they may be used are here.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from itertools import groupby

from shipyard.adapters import Adapters
from shipyard.domain import RELEASE_REPOSITORY, Role
from shipyard.errors import InvalidInput
from shipyard.runtime.interface import gateway_url
from shipyard.services.cache import ViewCache
from shipyard.services.views import View
from shipyard.store.models import Deployment

__all__ = ["DeploymentView", "Deployments", "EnvironmentView", "Health", "LiveView"]

log = logging.getLogger(__name__)

Say = Callable[[str], None]


class Health(StrEnum):
    UP = "up"  # meant to serve, and its process is alive
    DOWN = "down"  # meant to serve, and its process has died
    IDLE = "idle"  # not meant to serve yet: still starting


class DeploymentView(View):
    project: str
    environment: str
    version: str
    role: Role
    weight: int
    state: str  # as stored, except `down` for a ready server whose process has died
    health: Health
    endpoint: str | None
    pid: int | None
    updated_at: datetime


class LiveView(DeploymentView):
    """The version that now serves all traffic, after a deploy or a rollback."""

    url: str | None  # where clients call it (the gateway, when there is one)
    standby: str | None  # the version kept ready for an instant rollback


class EnvironmentView(View):
    project: str
    environment: str
    deployments: list[DeploymentView]
    stable: str | None
    standby: str | None
    # Where its clients call: the gateway's URL, else (no gateway) the stable server's endpoint.
    url: str | None = None
    routes: str | None  # the gateway's routes file, when the environment has a gateway


class Deployments:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters
        # The rows until the store changes (every deployment change is an event); health is
        # asked of the runtime on each read, since a process can die without one.
        self.rows = ViewCache(adapters.store)

    def list(
        self, project: str | None = None, environment: str | None = None
    ) -> list[DeploymentView]:
        """The deployments meant to run (starting or ready), oldest first."""
        rows = self.rows.get(
            ("deployments", project, environment),
            lambda: tuple(self.adapters.store.deployments(project, environment)),
        )
        return [self._view(row) for row in rows]

    def environments(self, project: str | None = None) -> builtins.list[EnvironmentView]:
        """Per environment: its deployments with their weights, the stable and the standby."""
        found = sorted(self.list(project), key=lambda d: (d.project, d.environment))
        groups = groupby(found, key=lambda d: (d.project, d.environment))
        return [self._environment(*where, [*group]) for where, group in groups]

    def deploy(
        self, name: str, version: str, environment: str = "staging", *, say: Say | None = None
    ) -> LiveView:
        """``name:version`` serves all traffic in ``environment``; production takes only
        what the `release` repository holds."""
        from shipyard.pipeline import deploy

        say = say or log.info
        store = self.adapters.store
        _check_environment(environment)
        if environment == "production" and not store.in_repository(
            RELEASE_REPOSITORY, name, version
        ):
            raise InvalidInput(
                f"{name}:{version} is not in `release`.",
                hint=f"Promote it first: shipyard promote {name}:{version}",
            )
        store.get_artifact(name, version)  # NotFound, with its hint, before any work
        _, config = deploy.unpack(self.adapters, name, environment, version)
        window = f"deploy-{version}"
        url, standby = deploy.go_live(self.adapters, config, environment, version, window, say)
        live = deploy.stable(self.adapters, name, environment)
        assert live is not None and live.version == version, "go_live makes it the stable"
        return self._live(live, url=url, standby=standby)

    def rollback(self, project: str, environment: str = "production") -> LiveView:
        """All traffic back to the standby kept from the last release (refused during a
        rollout, which `abort` ends instead); the two swap roles."""
        from shipyard.pipeline import deploy

        back, current = deploy.roll_back(self.adapters, project, environment)
        return self._live(back, url=None, standby=current.version)

    def _live(self, row: Deployment, *, url: str | None, standby: str | None) -> LiveView:
        fields = self._view(row).model_dump()
        return LiveView(**fields, url=url or row.endpoint, standby=standby)

    def _environment(
        self, project: str, environment: str, deployments: builtins.list[DeploymentView]
    ) -> EnvironmentView:
        env_dir = self.adapters.state.environment_dir(project, environment)
        routes = env_dir / "routes.json"
        port = self.adapters.runtime.gateway_port(env_dir)
        stable = next((d for d in deployments if d.role == Role.STABLE), None)
        return EnvironmentView(
            project=project,
            environment=environment,
            deployments=deployments,
            stable=_version_of(deployments, Role.STABLE),
            standby=_version_of(deployments, Role.STANDBY),
            url=gateway_url(port) if port else stable.endpoint if stable else None,
            routes=str(routes) if routes.is_file() else None,
        )

    def _view(self, row: Deployment) -> DeploymentView:
        health = self._health(row)
        state = "down" if health is Health.DOWN else str(row.state)
        return DeploymentView(
            project=row.project,
            environment=row.environment,
            version=row.version,
            role=Role(row.role),
            weight=row.weight,
            state=state,
            health=health,
            endpoint=row.endpoint,
            pid=row.pid,
            updated_at=row.updated_at,
        )

    def _health(self, row: Deployment) -> Health:
        if row.state != "ready" or row.pid is None:
            return Health.IDLE
        return Health.UP if self.adapters.runtime.is_alive(row.pid) else Health.DOWN


def _check_environment(name: str) -> None:
    # The name becomes a folder of the state directory: nothing but a configurable name.
    from shipyard.config.schema import NAME_PATTERN

    if len(name) > 63 or not re.match(NAME_PATTERN, name):
        raise InvalidInput(
            f"{name!r} is not an environment name.",
            hint="Use the name of an environment in shipyard.yaml, e.g. staging or production.",
        )


def _version_of(deployments: list[DeploymentView], role: Role) -> str | None:
    versions = [d.version for d in deployments if d.role == role]
    return versions[-1] if versions else None
