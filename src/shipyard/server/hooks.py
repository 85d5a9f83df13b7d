"""Webhooks: ``POST /hooks/{github,gitlab,gitea,forgejo}/{project}``. A push starts a run.

No API token here: a delivery authenticates by its signature, made with the project's webhook
secret. In order: a body past 5 MiB is 413 (by its Content-Length, else while it streams in,
never read whole); an unregistered project 404; a bad or missing signature 401, before the
body is parsed; a malformed body 400 naming the field. A ping is answered; a push that is not
for a watched branch is answered "ignored" with the reason; a push is 202 with the queued run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shipyard.errors import InvalidInput, TooLarge, Unauthorized
from shipyard.server.deps import services
from shipyard.server.webhooks import PROVIDERS
from shipyard.server.webhooks.interface import Ignored, Ping, Provider, Push
from shipyard.services import Services
from shipyard.services.projects import HookResult, HookStatus
from shipyard.store import acting_as

__all__ = ["MAX_BODY", "router"]

MAX_BODY = 5 * 1024 * 1024

router = APIRouter(tags=["webhooks"])


def _route(provider: Provider) -> Callable[..., Awaitable[JSONResponse]]:
    async def receive(
        project: str, request: Request, found: Services = Depends(services)
    ) -> JSONResponse:
        _check_length(request.headers.get("content-length"))
        secret = await run_in_threadpool(found.projects.hook_secret, project)
        body = await _read(request)
        if not provider.verify(request.headers, body, secret):
            raise Unauthorized(
                f"The {provider.forge.value} signature is missing or wrong.",
                hint="Configure the webhook with the secret `shipyard project add` printed.",
            )
        result = await _act(found, project, provider, request, body)
        code = 202 if result.status is HookStatus.QUEUED else 200
        return JSONResponse(result.model_dump(mode="json", exclude_none=True), status_code=code)

    return receive


async def _act(
    found: Services, project: str, provider: Provider, request: Request, body: bytes
) -> HookResult:
    event = provider.parse(request.headers, body)
    if isinstance(event, Ping):
        return HookResult(status=HookStatus.PONG)
    if isinstance(event, Ignored):
        return HookResult(status=HookStatus.IGNORED, reason=event.reason)
    delivery = provider.delivery(request.headers)
    return await run_in_threadpool(_push, found, project, provider, event, delivery)


def _push(
    found: Services, project: str, provider: Provider, push: Push, delivery: str | None
) -> HookResult:
    forge = provider.forge.value
    with acting_as(f"{forge}:{push.pusher}"):
        return found.projects.push(
            project, trigger=forge, ref=push.ref, sha=push.after, delivery=delivery
        )


def _check_length(declared: str | None) -> None:
    if declared is None:
        return
    if not declared.isdigit():
        raise InvalidInput("Content-Length is not a number.")
    if int(declared) > MAX_BODY:
        raise TooLarge(f"The body is {int(declared)} bytes; webhooks take at most {MAX_BODY}.")


async def _read(request: Request) -> bytes:
    """The raw body, counted as it arrives: a body past the limit is refused, not kept."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"The body is over {MAX_BODY} bytes, the most a webhook may send.")
        chunks.append(chunk)
    return b"".join(chunks)


for _forge, _provider in PROVIDERS.items():
    router.add_api_route(
        f"/hooks/{_forge.value}/{{project}}",
        _route(_provider),
        methods=["POST"],
        name=f"{_forge.value}_webhook",
        summary=f"A {_forge.value} webhook delivery (signed with the project's secret)",
        response_model=HookResult,
        responses={202: {"model": HookResult}},
    )
