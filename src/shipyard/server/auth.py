"""Who is calling, and may they: the one place the API and the dashboard check roles.

Every route declares the least role it needs with ``require(role)``. A caller proves who it is
in one of two ways:

* an API client sends its token as ``Authorization: Bearer <token>``;
* a browser signed in to the dashboard sends the session cookie (HttpOnly, SameSite=Strict),
  and every request that changes something also carries the session's CSRF token, in the
  ``X-CSRF-Token`` header (htmx) or a ``csrf`` form field: a page of another site can make the
  browser send the cookie, never the token.

No credentials or unknown ones are 401 (the dashboard turns that into its sign-in page), a role
too low is 403. The route then runs as the token's name, so every event it records names it.
Webhooks do not use tokens: their signature is their authentication (``hooks.py``).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator

from fastapi import Depends, Request

from shipyard.domain import TokenRole
from shipyard.errors import Forbidden, Unauthorized
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.tokens import TokenView
from shipyard.store import acting_as

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SESSION_COOKIE", "Require", "require"]

SESSION_COOKIE = "shipyard_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
        token = await caller(request, found)
        if not token.role.allows(self.role):
            raise Forbidden(
                f"Token {token.name!r} has role {token.role}; this needs {self.role} or above."
            )
        with acting_as(token.name):
            yield token


def require(role: TokenRole) -> Require:
    return Require(role)


async def caller(request: Request, found: Services) -> TokenView:
    """The token behind the request's credentials (answered from memory until the store
    changes: no thread hop); raises Unauthorized when there are none or they do not hold."""
    if "authorization" in request.headers:
        token = found.tokens.authenticate(_bearer(request))
        if token is None:
            raise Unauthorized("The API token is unknown or revoked.")
        return token
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized(
            "This needs an API token or a signed-in session.",
            hint="Send `Authorization: Bearer <token>` (`shipyard token create`), or sign in.",
        )
    session = found.tokens.session(cookie)
    if session is None:
        raise Unauthorized("The session has ended; sign in again.")
    if request.method not in SAFE_METHODS and not await _csrf_matches(request, session.csrf):
        raise Forbidden(
            "The request did not carry this session's CSRF token.",
            hint="Use the dashboard's own forms; reload the page if it was open a long time.",
        )
    return session.token


async def _csrf_matches(request: Request, expected: str) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        field = (await request.form()).get(CSRF_FIELD)  # Starlette keeps it for the route
        sent = field if isinstance(field, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def _bearer(request: Request) -> str:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized(
            "This needs an API token.",
            hint="Send `Authorization: Bearer <token>` (`shipyard token create`).",
        )
    return secret.strip()
