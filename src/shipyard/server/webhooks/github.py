"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``; ``ping`` on setup.

https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

from shipyard.errors import InvalidInput
from shipyard.server.webhooks.interface import (
    Event,
    Headers,
    Ignored,
    Ping,
    Provider,
    hmac_hex,
    push_of,
    same,
)
from shipyard.services.projects import Forge


class GitHub(Provider):
    forge = Forge.GITHUB

    def verify(self, headers: Headers, body: bytes, secret: str) -> bool:
        return same(headers.get("x-hub-signature-256", ""), f"sha256={hmac_hex(secret, body)}")

    def parse(self, headers: Headers, body: bytes) -> Event:
        event = headers.get("x-github-event")
        if not event:
            raise InvalidInput("The X-GitHub-Event header is missing.")
        if event == "ping":
            return Ping()
        if event != "push":
            return Ignored(f"{event} events do not start runs; only push does")
        return push_of(body, ("pusher.name", "sender.login"))

    def delivery(self, headers: Headers) -> str | None:
        return headers.get("x-github-delivery")
