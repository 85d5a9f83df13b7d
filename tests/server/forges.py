"""A forge on this machine: a bare repository as a project's remote, a clone that pushes to it
with real git, and push deliveries signed as each forge signs them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitrepos import commit, git

TINY_CONFIG = """\
name: {name}
install: requirements.txt
build:
  train: python -c "import os; open(os.environ['SHIPYARD_MODEL_DIR'] + '/answer.txt', 'w').write('42')"
model:
  serve: m:Model
"""
TINY_MODEL = """\
class Model:
    def __init__(self, model_dir):
        self.answer = open(f"{model_dir}/answer.txt").read()

    def predict(self, records):
        return [self.answer for _ in records]
"""


@dataclass
class Remote:
    """A bare repository (the forge's copy) and a clone of it where commits are made."""

    bare: Path
    work: Path

    def commit(self, message: str, *, name: str = "tiny", branch: str = "main") -> str:
        """Commit on ``branch`` of the clone and push it; the new sha."""
        git(self.work, "checkout", "-q", "-B", branch)
        (self.work / "shipyard.yaml").write_text(TINY_CONFIG.format(name=name))
        (self.work / "CHANGES").write_text(message)
        sha = commit(self.work, message)
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return sha

    def git_head(self) -> str:
        return git(self.work, "rev-parse", "HEAD")


def make_remote(root: Path) -> Remote:
    bare, work = root / "remote.git", root / "work"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(root, "clone", "-q", str(bare), str(work))
    (work / "requirements.txt").write_text("")
    (work / "m.py").write_text(TINY_MODEL)
    return Remote(bare, work)


def push_payload(ref: str, after: str, *, pusher: str = "alice", deleted: bool = False) -> bytes:
    """The fields of GitHub's push event that Shipyard reads, with a few of the rest."""
    event: dict[str, Any] = {
        "ref": ref,
        "before": "0" * 40,
        "after": after,
        "created": False,
        "deleted": deleted,
        "forced": False,
        "repository": {"full_name": "acme/tiny"},
        "pusher": {"name": pusher, "email": f"{pusher}@example.invalid"},
        "sender": {"login": pusher},
        "commits": [],
    }
    return json.dumps(event).encode()


def github_headers(body: bytes, secret: str, *, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": f"sha256={digest}",
    }


def gitea_headers(body: bytes, secret: str, forge: str = "gitea") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    delivery = str(uuid.uuid4())
    headers = {
        "content-type": "application/json",
        "x-gitea-event": "push",
        "x-gitea-delivery": delivery,
        "x-gitea-signature": digest,
    }
    if forge == "forgejo":
        headers |= {
            "x-forgejo-event": "push",
            "x-forgejo-delivery": delivery,
            "x-forgejo-signature": digest,
        }
    return headers


def gitlab_headers(body: bytes, secret: str) -> dict[str, str]:
    """Both of GitLab's credentials: the secret token and a Standard Webhooks signature."""
    msg_id, stamp = str(uuid.uuid4()), int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "x-gitlab-event": "Push Hook",
        "x-gitlab-token": secret,
        "idempotency-key": msg_id,
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


def gitlab_payload(ref: str, after: str, *, user: str = "alice") -> bytes:
    event = {"object_kind": "push", "ref": ref, "after": after, "user_username": user}
    return json.dumps(event).encode()
