"""The services of a Shipyard server, called over its HTTP API.

``RemoteServices`` has the attributes and methods of ``Services`` that make sense away from
the server's machine, and returns the same read models, so a command prints the same thing
either way (``cli/common.services`` picks one). The server's JSON errors (``{"error",
"hint"}``) come back as the same ``ShipyardError`` classes, chosen by their HTTP status.
"""

from __future__ import annotations

import builtins
import json
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from shipyard.domain import NoticeKind, TokenRole
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
from shipyard.services.notifications import TargetView
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
        wanted = {key: value for key, value in params.items() if value is not None}
        content = self.call("GET", path, params=wanted).content
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


class RemoteApprovals:
    """The role check is the server's: it knows the token; ``role`` is ignored here."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def pending(self, project: str | None = None) -> builtins.list[ApprovalView]:
        return self.api.many(ApprovalView, "/api/v1/approvals", project=project)

    def approve(
        self, project: str, number: int, reason: str | None = None, *, role: TokenRole | None = None
    ) -> ApprovalView:
        path = f"/api/v1/runs/{segment(project)}/{segment(number)}/approve"
        return self.api.one(ApprovalView, "POST", path, json={"reason": reason})

    def reject(
        self, project: str, number: int, reason: str, *, role: TokenRole | None = None
    ) -> ApprovalView:
        path = f"/api/v1/runs/{segment(project)}/{segment(number)}/reject"
        return self.api.one(ApprovalView, "POST", path, json={"reason": reason})


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
    def approvals(self) -> RemoteApprovals:
        return RemoteApprovals(self.api)

    @cached_property
    def notifications(self) -> RemoteNotifications:
        return RemoteNotifications(self.api)
