"""Who is calling, and may they: the one place the API checks tokens and roles.

Every route under /api/v1 declares the least role it needs with ``require(role)``; the token
comes as ``Authorization: Bearer <token>``. No token or an unknown one is 401, a role too low
is 403. The route then runs as the token's name, so every event it records names it.
Webhooks do not use tokens: their signature is their authentication (``hooks.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request

from shipyard.domain import TokenRole
from shipyard.errors import Forbidden, Unauthorized
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.tokens import TokenView
from shipyard.store import acting_as

__all__ = ["require"]


def require(role: TokenRole) -> Callable[..., Iterator[TokenView]]:
    """A dependency: the calling token, when its role allows ``role``."""

    def caller(request: Request, found: Services = Depends(services)) -> Iterator[TokenView]:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized(
                "This needs an API token.",
                hint="Send `Authorization: Bearer <token>` (`shipyard token create`).",
            )
        token = found.tokens.authenticate(secret.strip())
        if token is None:
            raise Unauthorized("The API token is unknown or revoked.")
        if not token.role.allows(role):
            raise Forbidden(
                f"Token {token.name!r} has role {token.role}; this needs {role} or above."
            )
        with acting_as(token.name):
            yield token

    return caller
