"""Who is calling, and may they: the one place the API checks tokens and roles.

Every route under /api/v1 declares the least role it needs with ``require(role)``; the token
comes as ``Authorization: Bearer <token>``. No token or an unknown one is 401, a role too low
is 403. The route then runs as the token's name, so every event it records names it.
Webhooks do not use tokens: their signature is their authentication (``hooks.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends, Request

from shipyard.domain import TokenRole
from shipyard.errors import Forbidden, Unauthorized
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.tokens import TokenView
from shipyard.store import acting_as

__all__ = ["Require", "require"]


class Require:
    """A dependency: the calling token, when its role allows ``role``.

    A class rather than a closure so the role a route needs can be read back from the app
    (the tests check every route against every role). Asynchronous on purpose: a synchronous
    dependency runs in a worker thread's copy of the context, so ``acting_as`` would not reach
    the route; set here, in the request's own task, it does.
    """

    def __init__(self, role: TokenRole) -> None:
        self.role = role

    async def __call__(
        self, request: Request, found: Services = Depends(services)
    ) -> AsyncIterator[TokenView]:
        # Answered from memory until the store changes (``Tokens.authenticate``): no thread hop.
        token = found.tokens.authenticate(_bearer(request))
        if token is None:
            raise Unauthorized("The API token is unknown or revoked.")
        if not token.role.allows(self.role):
            raise Forbidden(
                f"Token {token.name!r} has role {token.role}; this needs {self.role} or above."
            )
        with acting_as(token.name):
            yield token


def require(role: TokenRole) -> Require:
    return Require(role)


def _bearer(request: Request) -> str:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized(
            "This needs an API token.",
            hint="Send `Authorization: Bearer <token>` (`shipyard token create`).",
        )
    return secret.strip()
