"""What a project's registration may hold: its name, branch filters, remote, polling interval
and webhook secret, each checked with a message that says what to fix."""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

from shipyard.config.schema import NAME_PATTERN, parse_duration
from shipyard.errors import InvalidInput

# Branch filters: the characters of branch names, plus ``*`` and ``?`` for globs.
_BRANCH_FILTER = re.compile(r"^[A-Za-z0-9._/*?+-]{1,200}$")
# What git refuses in a ref name (git-check-ref-format), and what no option may start with.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$")
_URL = re.compile(r"^(?:https?|ssh|git|file)://[^\s]+$")
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")
SECRET_PREFIX = "whsec_"  # the Standard Webhooks form, which GitLab's signing token requires
MIN_SECRET = 16
SHORTEST_POLL = 1.0


def check_name(name: str) -> None:
    if len(name) > 63 or not re.match(NAME_PATTERN, name):
        raise InvalidInput(
            f"Project name {name!r} is not valid.",
            hint="Use shipyard.yaml's `name` rules: lowercase letters and digits, joined by"
            " single '.', '_' or '-', at most 63 characters.",
        )


def check_branches(branches: list[str]) -> list[str]:
    for branch in branches:
        if not _BRANCH_FILTER.match(branch) or branch.startswith(("-", "/")) or ".." in branch:
            raise InvalidInput(
                f"Branch filter {branch!r} is not valid.",
                hint="Give branch names or globs such as main or 'release/*'.",
            )
    return list(dict.fromkeys(branches))


def check_remote(repo: str) -> str:
    if repo.startswith("-") or "::" in repo or not repo.isprintable():
        raise InvalidInput(
            f"Repository {repo!r} is not a URL or a path.",
            hint="Give an https://, ssh:// or git@host:path URL, or a local path.",
        )
    if _URL.match(repo) or _SCP.match(repo):
        return repo
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise InvalidInput(
            f"Repository {repo!r} is neither a URL nor an existing folder.",
            hint="Give an https://, ssh:// or git@host:path URL, or a local repository's path.",
        )
    return str(path.resolve())


def check_interval(value: float | str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InvalidInput(f"poll interval: {exc}.", hint="For example 30s, 5m or 1h.") from exc
    if seconds < SHORTEST_POLL:
        raise InvalidInput(f"poll interval: at least {SHORTEST_POLL:g} s, not {seconds:g} s.")
    return seconds


def check_secret(secret: str) -> str:
    secret = secret.strip()
    if len(secret) < MIN_SECRET or len(secret) > 512 or not secret.isprintable() or " " in secret:
        raise InvalidInput(
            "The webhook secret must be 16 to 512 printable characters without spaces.",
            hint="Leave the secret out and Shipyard makes a strong one.",
        )
    return secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def bad_ref(ref: str) -> bool:
    """Whether ``ref`` (a branch or tag, without ``refs/``) is one git would refuse, or long."""
    return bool(_BAD_REF.search(ref)) or len(ref) > 200
