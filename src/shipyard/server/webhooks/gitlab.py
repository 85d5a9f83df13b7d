"""GitLab: ``X-Gitlab-Token`` (the secret itself) and, for a webhook with a signing token, a
Standard Webhooks signature (``standard.py``). Whichever is sent must hold; one must be sent.

https://docs.gitlab.com/user/project/integrations/webhooks/
"""

from __future__ import annotations

from shipyard.errors import InvalidInput
from shipyard.server.webhooks import standard
from shipyard.server.webhooks.interface import Event, Headers, Ignored, Provider, push_of, same
from shipyard.services.projects import Forge


class GitLab(Provider):
    forge = Forge.GITLAB

    def __init__(self, now: float | None = None) -> None:
        self.now = now  # tests pin the clock for documented vectors

    def verify(self, headers: Headers, body: bytes, secret: str) -> bool:
        token, signature = headers.get("x-gitlab-token"), headers.get("webhook-signature")
        if token is None and signature is None:
            return False
        if token is not None and not same(token, secret):
            return False
        return signature is None or standard.verify(headers, body, secret, self.now)

    def parse(self, headers: Headers, body: bytes) -> Event:
        event = headers.get("x-gitlab-event")
        if not event:
            raise InvalidInput("The X-Gitlab-Event header is missing.")
        if event != "Push Hook":
            return Ignored(f"{event} events do not start runs; only Push Hook does")
        return push_of(body, ("user_username", "user_name"))

    def delivery(self, headers: Headers) -> str | None:
        # webhook-id is GitLab's Idempotency-Key: the same across retries of one event.
        for name in ("webhook-id", "idempotency-key", "x-gitlab-event-uuid"):
            if value := headers.get(name):
                return value
        return None
