"""The services of a Shipyard server, called over its HTTP API.

``RemoteServices`` has the attributes and methods of ``Services`` that make sense away from
the server's machine, and returns the same read models, so a command prints the same thing
either way (``cli/common.services`` picks one). The server's JSON errors (``{"error",
"hint"}``) come back as the same ``ShipyardError`` classes, chosen by their HTTP status.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from shipyard.domain import (
    DEV_REPOSITORY,
    RELEASE_REPOSITORY,
    Gate,
    NoticeKind,
    RolloutAction,
    TokenRole,
)
from shipyard.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuntimeFailure,
    ShipyardError,
    TooLarge,
    Unauthorized,
)
from shipyard.services.approvals import ApprovalView
from shipyard.services.artifacts import ArtifactDetail, ArtifactView, PromotionView
from shipyard.services.audit import EventView
from shipyard.services.deployments import DeploymentView, EnvironmentView, LiveView
from shipyard.services.notifications import TargetView
from shipyard.services.projects import NewProject, ProjectView
from shipyard.services.rollouts import RolloutView
from shipyard.services.tokens import NewToken, TokenView
from shipyard.services.views import LogChunk, RunView

__all__ = ["RemoteServices"]

Model = TypeVar("Model", bound=BaseModel)
ERRORS: dict[int, type[ShipyardError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    503: RuntimeFailure,
}
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class Api:
    """One server, one token: JSON in, read models out, errors as Shipyard's own."""

    def __init__(self, url: str, token: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
            transport=transport,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ShipyardError(
                f"Could not reach the Shipyard server at {self.url} ({exc}).",
                hint="Is `shipyard server` running there? Check --server or $SHIPYARD_SERVER.",
            ) from exc
        if response.is_error:
            raise error_of(response)
        return response

    def one(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        return model.model_validate_json(self.call(method, path, **kwargs).content)

    def many(self, model: type[Model], path: str, **params: Any) -> list[Model]:
        content = self.call("GET", path, params=_given(**params)).content
        return TypeAdapter(list[model]).validate_json(content)  # type: ignore[valid-type]


def error_of(response: httpx.Response) -> ShipyardError:
    """The server's error as the class it was raised as there (by its HTTP status)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = (
        body.get("error") or _validation(body) or f"The server answered {response.status_code}."
    )
    kind = ERRORS.get(response.status_code, ShipyardError)
    return kind(str(message), hint=body.get("hint"))


def _validation(body: dict[str, Any]) -> str | None:
    """FastAPI's own 422 (a request the routes' types refuse), as one sentence."""
    details = body.get("detail")
    if not isinstance(details, list):
        return None
    parts = [f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in details]
    return "The server refused the request: " + "; ".join(parts)


def segment(value: object) -> str:
    return quote(str(value), safe="")


class RemoteRuns:
    def __init__(self, api: Api) -> None:
        self.api = api

    def get(self, project: str, number: int | None = None) -> RunView:
        which = "latest" if number is None else segment(number)
        return self.api.one(RunView, "GET", f"/api/v1/runs/{segment(project)}/{which}")

    def list(self, project: str | None = None, limit: int = 20) -> builtins.list[RunView]:
        return self.api.many(RunView, "/api/v1/runs", project=project, limit=limit)

    def cancel(self, project: str, number: int) -> RunView:
        path = f"/api/v1/runs/{segment(project)}/{segment(number)}/cancel"
        return self.api.one(RunView, "POST", path)

    def log(self, project: str, number: int, stage: str, offset: int = 0) -> LogChunk:
        """What the stage's log holds from ``offset`` now (one event of the log stream)."""
        path = f"/api/v1/runs/{segment(project)}/{segment(number)}/stages/{segment(stage)}/log"
        response = self.api.call("GET", path, params={"offset": offset, "follow": "false"})
        return iter_events(response.text)[0]


def iter_events(text: str) -> builtins.list[LogChunk]:
    """The ``LogChunk`` of each Server-Sent Event in ``text``."""
    chunks = []
    for block in text.split("\n\n"):
        data = [line[5:].lstrip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            chunks.append(LogChunk.model_validate(json.loads("\n".join(data))))
    return chunks


class RemoteTokens:
    def __init__(self, api: Api) -> None:
        self.api = api

    def create(self, name: str, role: TokenRole) -> tuple[TokenView, str]:
        body = {"name": name, "role": role.value}
        created = self.api.one(NewToken, "POST", "/api/v1/tokens", json=body)
        return created.token, created.secret

    def list(self) -> builtins.list[TokenView]:
        return self.api.many(TokenView, "/api/v1/tokens")

    def revoke(self, name: str) -> TokenView:
        return self.api.one(TokenView, "DELETE", f"/api/v1/tokens/{segment(name)}")


class RemoteRollouts:
    def __init__(self, api: Api) -> None:
        self.api = api

    def get(
        self, project: str, environment: str = "production", rollout_id: int | None = None
    ) -> RolloutView:
        path = f"/api/v1/rollouts/{segment(project)}/{segment(environment)}"
        return self.api.one(RolloutView, "GET", path, params=_given(id=rollout_id))

    def steer(
        self,
        project: str,
        environment: str,
        action: RolloutAction,
        rollout_id: int | None = None,
    ) -> RolloutView:
        path = f"/api/v1/rollouts/{segment(project)}/{segment(environment)}/{segment(action)}"
        return self.api.one(RolloutView, "POST", path, params=_given(id=rollout_id))


class RemoteDeployments:
    def __init__(self, api: Api) -> None:
        self.api = api

    def list(
        self, project: str | None = None, environment: str | None = None
    ) -> builtins.list[DeploymentView]:
        return self.api.many(
            DeploymentView, "/api/v1/deployments", project=project, environment=environment
        )

    def environments(self, project: str | None = None) -> builtins.list[EnvironmentView]:
        return self.api.many(EnvironmentView, "/api/v1/environments", project=project)

    def deploy(
        self,
        name: str,
        version: str,
        environment: str = "staging",
        *,
        say: Callable[[str], None] | None = None,
    ) -> LiveView:
        """``say`` gets no progress from afar: the answer comes once the version is live."""
        path = f"/api/v1/environments/{segment(name)}/{segment(environment)}/deploy"
        return self.api.one(LiveView, "POST", path, json={"version": version})

    def rollback(self, project: str, environment: str = "production") -> LiveView:
        path = f"/api/v1/environments/{segment(project)}/{segment(environment)}/rollback"
        return self.api.one(LiveView, "POST", path)


class RemoteArtifacts:
    def __init__(self, api: Api) -> None:
        self.api = api

    def search(
        self,
        name: str | None = None,
        repository: str | None = None,
        version: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        sha: str | None = None,
    ) -> builtins.list[ArtifactView]:
        assignments = [f"{key}={value}" for key, value in (properties or {}).items()]
        return self.api.many(
            ArtifactView,
            "/api/v1/artifacts",
            name=name,
            repository=repository,
            version=version,
            sha=sha,
            property=assignments or None,
        )

    def show(self, name: str, version: str) -> ArtifactDetail:
        path = f"/api/v1/artifacts/{segment(name)}/{segment(version)}"
        return self.api.one(ArtifactDetail, "GET", path)

    def promote(
        self,
        name: str,
        version: str,
        *,
        override: bool = False,
        reason: str | None = None,
        source: str = DEV_REPOSITORY,
        target: str = RELEASE_REPOSITORY,
        dry_run: bool = False,
        key: Path | None = None,
        role: TokenRole | None = None,
    ) -> PromotionView:
        """Promoted with the server's signing key, as the calling token's role (``role`` is
        the token's there, whatever is passed here)."""
        if key is not None:
            raise InvalidInput(
                "--key names a key file on this machine; a server signs with its own key.",
                hint="Leave --key out, or run the command on the server's machine.",
            )
        body = {
            "override": override,
            "reason": reason,
            "source": source,
            "target": target,
            "dry_run": dry_run,
        }
        path = f"/api/v1/artifacts/{segment(name)}/{segment(version)}/promote"
        return self.api.one(PromotionView, "POST", path, json=body)


class RemoteAudit:
    def __init__(self, api: Api) -> None:
        self.api = api

    def events(
        self,
        actor: str | None = None,
        project: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        *,
        until: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
    ) -> builtins.list[EventView]:
        return self.api.many(
            EventView,
            "/api/v1/audit",
            actor=actor,
            project=project,
            action=action,
            since=since.isoformat() if since else None,
            limit=limit,
            until=until.isoformat() if until else None,
            after=after,
            before=before,
        )


class RemoteProjects:
    def __init__(self, api: Api) -> None:
        self.api = api

    def add(
        self,
        name: str,
        repo: str,
        *,
        branches: builtins.list[str] | None = None,
        webhook_secret: str | None = None,
        poll_interval: float | str | None = None,
    ) -> tuple[ProjectView, str]:
        """``repo`` is as the server sees it: a URL, or a path on the server's machine."""
        body = _given(
            name=name,
            repo=repo,
            branches=branches,
            webhook_secret=webhook_secret,
            poll_interval=poll_interval,
        )
        added = self.api.one(NewProject, "POST", "/api/v1/projects", json=body)
        return added.project, added.webhook_secret

    def list(self, *, every: bool = False) -> builtins.list[ProjectView]:
        return self.api.many(ProjectView, "/api/v1/projects", every=every or None)

    def get(self, name: str) -> ProjectView:
        return self.api.one(ProjectView, "GET", f"/api/v1/projects/{segment(name)}")

    def remove(self, name: str) -> ProjectView:
        return self.api.one(ProjectView, "DELETE", f"/api/v1/projects/{segment(name)}")

    def run(
        self, name: str, ref: str, *, trigger: str = "api", branch: str | None = None
    ) -> RunView:
        """Queued by the server from its mirror of the remote (its trigger is ``api``)."""
        path = f"/api/v1/projects/{segment(name)}/runs"
        return self.api.one(RunView, "POST", path, json={"ref": ref})


class RemoteApprovals:
    """The role check is the server's: it knows the token; ``role`` is ignored here."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def pending(self, project: str | None = None) -> builtins.list[ApprovalView]:
        return self.api.many(ApprovalView, "/api/v1/approvals", project=project)

    def approve(
        self,
        project: str,
        number: int,
        reason: str | None = None,
        *,
        role: TokenRole | None = None,
        gate: Gate | None = None,
    ) -> ApprovalView:
        path = f"/api/v1/runs/{segment(project)}/{segment(number)}/approve"
        return self.api.one(ApprovalView, "POST", path, json={"reason": reason, "gate": gate})

    def reject(
        self,
        project: str,
        number: int,
        reason: str,
        *,
        role: TokenRole | None = None,
        gate: Gate | None = None,
    ) -> ApprovalView:
        path = f"/api/v1/runs/{segment(project)}/{segment(number)}/reject"
        return self.api.one(ApprovalView, "POST", path, json={"reason": reason, "gate": gate})


class RemoteNotifications:
    def __init__(self, api: Api) -> None:
        self.api = api

    def add(
        self, url: str, events: builtins.list[NoticeKind] | None = None, project: str | None = None
    ) -> TargetView:
        body = {"url": url, "events": [e.value for e in events or []], "project": project}
        return self.api.one(TargetView, "POST", "/api/v1/notifications", json=body)

    def list(self) -> builtins.list[TargetView]:
        return self.api.many(TargetView, "/api/v1/notifications")

    def remove(self, target: int) -> TargetView:
        return self.api.one(TargetView, "DELETE", f"/api/v1/notifications/{segment(target)}")


def _given(**params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


class RemoteServices:
    """``Services`` over HTTP: the same attributes, methods and read models."""

    def __init__(self, url: str, token: str, transport: httpx.BaseTransport | None = None) -> None:
        self.api = Api(url, token, transport)

    @cached_property
    def runs(self) -> RemoteRuns:
        return RemoteRuns(self.api)

    @cached_property
    def tokens(self) -> RemoteTokens:
        return RemoteTokens(self.api)

    @cached_property
    def rollouts(self) -> RemoteRollouts:
        return RemoteRollouts(self.api)

    @cached_property
    def deployments(self) -> RemoteDeployments:
        return RemoteDeployments(self.api)

    @cached_property
    def artifacts(self) -> RemoteArtifacts:
        return RemoteArtifacts(self.api)

    @cached_property
    def audit(self) -> RemoteAudit:
        return RemoteAudit(self.api)

    @cached_property
    def projects(self) -> RemoteProjects:
        return RemoteProjects(self.api)

    @cached_property
    def approvals(self) -> RemoteApprovals:
        return RemoteApprovals(self.api)

    @cached_property
    def notifications(self) -> RemoteNotifications:
        return RemoteNotifications(self.api)
