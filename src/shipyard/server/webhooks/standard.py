"""Standard Webhooks signatures (https://www.standardwebhooks.com), which GitLab sends for a
webhook with a signing token: ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``"<webhook-id>.<webhook-timestamp>.<body>"``, keyed by the base64 after ``whsec_``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from shipyard.server.webhooks.interface import Headers

TOLERANCE = 300.0  # seconds a timestamp may be off: older ones are replays, newer ones forged
PREFIX = "whsec_"


def key_of(secret: str) -> bytes:
    """The HMAC key: the decoded base64 of a ``whsec_`` secret, else the secret's bytes."""
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def verify(headers: Headers, body: bytes, secret: str, now: float | None = None) -> bool:
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    sent = headers.get("webhook-signature", "")
    if not (msg_id and stamp.isdigit() and sent):
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE:
        return False
    expected = sign(secret, msg_id, int(stamp), body).encode()
    # Several signatures may come, space-separated (while a secret is rotated): one must match.
    matches = [hmac.compare_digest(one.encode(), expected) for one in sent.split(" ") if one]
    return any(matches)
