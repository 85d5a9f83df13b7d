"""Gitea and Forgejo: ``X-Gitea-Signature`` / ``X-Forgejo-Signature``, the hex HMAC-SHA256 of
the body (no prefix). Forgejo sends its own headers and Gitea's; its own are checked first.

https://docs.gitea.com/usage/repository/webhooks
"""

from __future__ import annotations

from shipyard.errors import InvalidInput
from shipyard.server.webhooks.interface import (
    Event,
    Headers,
    Ignored,
    Provider,
    hmac_hex,
    push_of,
    same,
)
from shipyard.services.projects import Forge


class Gitea(Provider):
    def __init__(self, forge: Forge = Forge.GITEA) -> None:
        self.forge = forge

    def verify(self, headers: Headers, body: bytes, secret: str) -> bool:
        return same(self._header(headers, "signature") or "", hmac_hex(secret, body))

    def parse(self, headers: Headers, body: bytes) -> Event:
        event = self._header(headers, "event")
        if not event:
            raise InvalidInput(f"The X-{self.forge.value.title()}-Event header is missing.")
        if event != "push":
            return Ignored(f"{event} events do not start runs; only push does")
        return push_of(body, ("pusher.login", "pusher.username", "sender.login"))

    def delivery(self, headers: Headers) -> str | None:
        return self._header(headers, "delivery")

    def _header(self, headers: Headers, what: str) -> str | None:
        own = headers.get(f"x-{self.forge.value}-{what}")
        return own if own is not None else headers.get(f"x-gitea-{what}")
