"""What a forge's webhook delivery says, behind one small interface per forge.

A forge module first checks the delivery's signature over the raw body (``verify``), before a
byte of it is parsed; then it says what the delivery is (``parse``): a ``Push``, a ``Ping``, or
anything else, ``Ignored`` with the reason. Malformed bodies are ``InvalidInput`` (400) naming
the field. Backends: ``github.py``, ``gitlab.py``, ``gitea.py`` (Gitea and Forgejo).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.git import is_full_sha
from shipyard.services.projects import Forge

__all__ = ["Event", "Headers", "Ignored", "Ping", "Provider", "Push", "hmac_hex", "same"]

# A delivery's headers; Starlette's are case-insensitive, plain dicts must use lowercase names.
Headers = Mapping[str, str]


@dataclass(frozen=True)
class Push:
    ref: str  # refs/heads/main
    after: str  # the sha the ref points at now; all zeros when it was deleted
    pusher: str  # who pushed, as the forge names them


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Ignored:
    reason: str


Event = Push | Ping | Ignored


class Provider(ABC):
    forge: Forge

    @abstractmethod
    def verify(self, headers: Headers, body: bytes, secret: str) -> bool:
        """Whether the delivery is signed with ``secret``; compared in constant time."""

    @abstractmethod
    def parse(self, headers: Headers, body: bytes) -> Event:
        """What a verified delivery says."""

    @abstractmethod
    def delivery(self, headers: Headers) -> str | None:
        """The delivery's id, the same when the forge sends it again."""


def hmac_hex(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def same(sent: str, expected: str) -> bool:
    """Constant-time equality of two header values (any text, not only ASCII)."""
    return hmac.compare_digest(sent.encode(), expected.encode())


def push_of(body: bytes, pusher_fields: tuple[str, ...]) -> Push:
    """A push event's ref and new sha (required), and its pusher (the first field present)."""
    payload = _json_object(body)
    ref, after = payload.get("ref"), payload.get("after")
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("The push event has no 'ref' (a string such as refs/heads/main).")
    if not isinstance(after, str) or not is_full_sha(after.lower()):
        raise InvalidInput("The push event's 'after' is not a full commit sha.")
    return Push(ref=ref, after=after.lower(), pusher=_pusher(payload, pusher_fields))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(
            "The delivery's body is not JSON.",
            hint="Set the webhook's content type to application/json.",
        ) from exc
    if not isinstance(payload, dict):
        raise InvalidInput("The delivery's body is not a JSON object.")
    return payload


def _pusher(payload: dict[str, Any], fields: tuple[str, ...]) -> str:
    for path in fields:
        value: Any = payload
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            return "".join(c if c.isprintable() and not c.isspace() else "_" for c in value)[:100]
    return "unknown"
