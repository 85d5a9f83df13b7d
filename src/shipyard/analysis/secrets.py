"""Credentials committed to the repository: cloud keys, private keys, tokens, passwords.

Only the commit's tracked files are searched (``git ls-files``): what is in the commit is what
leaked, and build output or an untracked ``.env`` beside it is not. A tree outside git is
walked whole, less virtualenvs and caches.

Rules with a recognisable shape (AWS key ids, private key blocks, GitHub, GitLab and Slack
tokens, a password inside a database URL such as ``postgresql://app:pw@db/app``) apply to every
text file; a database URL whose password is a placeholder (``${DB_PASSWORD}``, ``{password}``,
``<password>``, ``****``) or empty is not a finding. The generic rule, a key named like a password or a secret
with a value, applies to config files only (YAML, INI, TOML, ``.env``, JSON, properties), and
skips values that are placeholders (``${DB_PASSWORD}``, ``changeme``, ``<token>``), paths, or
too uniform to be a secret (Shannon entropy below 2.5 bits per character). Python code is
bandit's (B105, B106).

A report never carries a secret: the first four characters and ``****`` stand in for it.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shipyard.analysis.interface import Finding, ScanResult, Target
from shipyard.config.schema import SecretsConfig

__all__ = ["RULES", "SecretScanner", "entropy", "mask", "scan_text", "tracked_files"]

MAX_FILE_BYTES = 2 * 1024 * 1024
_SKIPPED_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".tox", ".shipyard"}
_CONFIG_SUFFIXES = {".yaml", ".yml", ".ini", ".cfg", ".conf", ".toml", ".env", ".json"}
_CONFIG_SUFFIXES |= {".properties"}
_CONFIG_NAMES = {".env", ".pypirc", ".netrc", "credentials"}
FIX = (
    "remove it from the repository, rotate it (it stays in git history), and read it from "
    "the environment or a secret store"
)
DATABASE_URL_FIX = (
    "remove the password from the repository and rotate it (it stays in git history); read the"
    " whole URL from an environment variable such as SHIPYARD_DATABASE_URL instead"
)
# SQLAlchemy's dialect names and the usual URL schemes of servers that take a password.
_DATABASE_SCHEMES = (
    r"postgres(?:ql)?|mysql|mariadb|mssql|oracle|cockroachdb|redshift|snowflake|clickhouse"
    r"|mongodb(?:\+srv)?|rediss?|amqps?"
)


def _not_a_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return not (
        secret[0] in "{<$%*"
        or set(secret) <= {"*", "x", "X"}
        or lowered in _PLACEHOLDER_VALUES
        or any(word in lowered for word in _PLACEHOLDER_WORDS)
    )


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    pattern: re.Pattern[str]  # group 1 is the secret
    fix: str = FIX
    accepts: Callable[[str], bool] | None = None  # None: every match is a finding


RULES = (
    Rule(
        "secret-aws-access-key-id",
        "AWS access key id",
        "high",
        re.compile(r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b"),
    ),
    Rule(
        "secret-aws-secret-access-key",
        "AWS secret access key",
        "critical",
        re.compile(
            r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
    ),
    Rule(
        "secret-private-key",
        "private key",
        "critical",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----\s*"
            r"(?:[A-Za-z-]+:[^\n]*\n\s*)*([A-Za-z0-9+/=\s]{64,})"
        ),
    ),
    Rule(
        "secret-github-token",
        "GitHub token",
        "critical",
        re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
    ),
    Rule(
        "secret-gitlab-token",
        "GitLab token",
        "critical",
        re.compile(r"\b(gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\-]{20,})"),
    ),
    Rule(
        "secret-slack-token",
        "Slack token",
        "high",
        re.compile(
            r"\b(xox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,})"
        ),
    ),
    Rule(
        "secret-database-url",
        "password in a database URL",
        "high",
        # scheme[+driver]://user:PASSWORD@host; a password holding '/', '@' or spaces is encoded.
        re.compile(
            rf"(?i)\b(?:{_DATABASE_SCHEMES})(?:\+[a-z0-9_]+)?://[^\s:@/'\"]*:([^\s@/'\"]+)@"
        ),
        DATABASE_URL_FIX,
        _not_a_placeholder,
    ),
)
GENERIC = Rule(
    "secret-password",
    "password or secret in a config file",
    "high",
    re.compile(
        r"""^[ \t]*(?:export[ \t]+)?["']?([A-Za-z0-9_.\-]+)["']?[ \t]*[:=][ \t]*(.*?)[ \t]*$""",
        re.MULTILINE,
    ),
)
_SECRET_WORDS = {"password", "passwd", "pwd", "passphrase", "secret", "token", "apikey"}
_SECRET_WORDS |= {"accesskey", "secretkey", "privatekey", "credential", "credentials"}
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key")}
_SECRET_PAIRS |= {("auth", "token"), ("client", "secret")}
# Keys that name where a secret is, or something about it, not the secret itself.
_NOT_SECRET_ENDINGS = {"file", "path", "url", "uri", "name", "env", "var", "id", "type", "dir"}
_NOT_SECRET_ENDINGS |= {"length", "endpoint", "header", "policy", "prefix", "expiry", "ttl"}
_PLACEHOLDER_WORDS = (
    "example", "changeme", "change-me", "change_me", "placeholder", "dummy", "your_", "your-",
    "xxxx", "****", "fake", "redacted", "environ", "<", "${", "{{", "%(",
)  # fmt: skip
_PLACEHOLDER_VALUES = {"null", "none", "true", "false", "required", "optional", "empty"}
_PLACEHOLDER_VALUES |= {"password", "secret", "changeit", "token"}


def mask(secret: str) -> str:
    return secret.strip()[:4] + "****"


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


# --- which files ---------------------------------------------------------------------------


def tracked_files(root: Path) -> list[str]:
    """The files git tracks under ``root``; every file when ``root`` is not in a git tree."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0:
        return sorted(p for p in done.stdout.decode("utf-8", "replace").split("\0") if p)
    return sorted(_walk(root))


def _walk(root: Path) -> Iterator[str]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not _SKIPPED_DIRS.intersection(relative.parts[:-1]):
            yield relative.as_posix()


def _excluded(relative: str, exclude: list[str]) -> bool:
    for pattern in (entry.strip("/").removeprefix("./") for entry in exclude):
        if relative.startswith(pattern + "/") or fnmatch.fnmatch(relative, pattern):
            return True
    return False


def _is_config(relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return (
        name in _CONFIG_NAMES
        or name.startswith(".env")
        or Path(name).suffix.lower() in _CONFIG_SUFFIXES
    )


def _text(path: Path) -> str | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", "replace")


# --- matching ------------------------------------------------------------------------------


def scan_text(relative: str, text: str) -> list[Finding]:
    """Every secret in one file's text, masked."""
    found = [
        _finding(rule, relative, text, match.start(1), match.group(1))
        for rule in RULES
        for match in rule.pattern.finditer(text)
        if rule.accepts is None or rule.accepts(match.group(1))
    ]
    if _is_config(relative):
        for match in GENERIC.pattern.finditer(text):
            value = _value(match.group(2), relative)
            if _secret_key(match.group(1)) and value is not None and _looks_secret(value):
                found.append(_finding(GENERIC, relative, text, match.start(2), value))
    return _deduplicated(found)


def _secret_key(key: str) -> bool:
    split = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    parts = [p for p in re.split(r"[^a-z0-9]+", split) if p]
    if not parts or parts[-1] in _NOT_SECRET_ENDINGS:
        return False
    joined = {"".join(parts)} | set(parts)
    return bool(joined & _SECRET_WORDS) or any(
        p in _SECRET_PAIRS for p in itertools.pairwise(parts)
    )


def _value(raw: str, relative: str) -> str | None:
    value = raw.strip().rstrip(",")
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        return value[1:end] if end > 0 else None
    if not relative.endswith(".json"):
        value = re.split(r"\s+[#;]", value, maxsplit=1)[0]  # an inline comment
    return value.strip()


def _looks_secret(value: str) -> bool:
    lowered = value.lower()
    if len(value) < 6 or lowered in _PLACEHOLDER_VALUES:
        return False
    if value[0] in "{[!&*|>$/~." or any(word in lowered for word in _PLACEHOLDER_WORDS):
        return False  # structure, YAML tags and anchors, variables, paths, placeholders
    return entropy(value) >= 2.5


def _finding(rule: Rule, relative: str, text: str, start: int, secret: str) -> Finding:
    line = text.count("\n", 0, start) + 1
    masked = mask(secret)
    return Finding(
        kind="secret",
        id=rule.id,
        severity=rule.severity,
        title=f"{rule.title} {masked}",
        location=f"{relative}:{line}",
        aliases=(f"{rule.id}:{relative}",),
        fix=rule.fix,
        file=relative,
        line=line,
        details={"masked": masked, "rule": rule.title},
    )


def _deduplicated(found: list[Finding]) -> list[Finding]:
    # A line the generic rule and a shaped rule both match is reported once, by the shaped one.
    shaped = {(f.file, f.line) for f in found if f.id != GENERIC.id}
    kept = [f for f in found if f.id != GENERIC.id or (f.file, f.line) not in shaped]
    return sorted(kept, key=lambda f: (f.file or "", f.line or 0, f.id))


class SecretScanner:
    kind = "secret"

    def __init__(self, config: SecretsConfig) -> None:
        self.config = config

    def scan(self, target: Target) -> ScanResult:
        files = [f for f in tracked_files(target.root) if not _excluded(f, self.config.exclude)]
        findings: list[Finding] = []
        for relative in files:
            text = _text(target.root / relative)
            if text is not None:
                findings += scan_text(relative, text)
        return ScanResult(self.kind, findings, f"{len(files)} tracked files")
