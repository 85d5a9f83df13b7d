"""What every scanner shares: the finding, a scanner's result, and what it scans.

Each scanner (``bandit.py``, ``dependencies.py``, ``secrets.py``, ``models.py``,
``licences.py``) turns one kind of evidence into :class:`Finding` objects with a severity on
one scale; ``policy.py`` then decides which of them block, the same way for every kind. A
scanner never decides pass or fail itself.

A finding's ``id`` is what an allow entry names: a bandit test id (``B602``), an advisory id
(``GHSA-...``), or a rule id of Shipyard's own (``secret-private-key``). ``aliases`` are other
names an allow entry may use for the same finding: an advisory's CVE and PYSEC ids, or
``rule:path`` to accept one file's finding without accepting the rule everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Distribution",
    "Finding",
    "ScanResult",
    "Scanner",
    "Target",
    "rank",
]

SEVERITIES = ("low", "medium", "high", "critical")
# The order findings are shown in, and the names of the scanners in reports.
KINDS = ("vulnerability", "code", "secret", "model", "licence")


def rank(severity: str) -> int:
    """Position on the scale; an unknown word (bandit's UNDEFINED) ranks below ``low``."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass(frozen=True)
class Finding:
    kind: str  # one of KINDS
    id: str  # what an allow entry names: B602, GHSA-..., secret-private-key
    severity: str  # one of SEVERITIES
    title: str  # one line, never the secret itself
    location: str  # app/x.py:7, requests==2.19.0, model/model.pkl
    aliases: tuple[str, ...] = ()
    fix: str = ""  # the next thing to do: "upgrade requests to 2.20.0"
    file: str | None = None  # relative path, for SARIF's physical location
    line: int | None = None
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific: package, version...

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    def describe(self) -> str:
        # Other names (an advisory's CVE) are shown; `rule:path` aliases repeat the location.
        names = [alias for alias in self.aliases if not alias.startswith(f"{self.id}:")]
        also = f" ({', '.join(names)})" if names else ""
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.severity} {self.id}{also} {self.location}: {self.title}{fix}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        return data


@dataclass(frozen=True)
class ScanResult:
    """One scanner's findings, plus what it could not do (said, never silently skipped)."""

    kind: str
    findings: list[Finding]
    scope: str  # what was looked at: "42 distributions", "17 tracked files"
    notes: list[str] = field(default_factory=list)  # "not checked: ..." and similar
    # When a check could not run at all (no vulnerability data): the policy may fail on it.
    unchecked: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # kept in the report (source, counts)


@dataclass(frozen=True)
class Distribution:
    """One installed distribution of the build environment, with its licence metadata."""

    name: str
    version: str
    license_expression: str | None = None  # PEP 639 License-Expression
    license: str | None = None  # the older free-text License field
    classifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """What one analysis looks at: a tree of code, and optionally an environment and a model."""

    root: Path  # the commit's tree (a worktree) or a working tree
    python: Path | None = None  # the build environment's interpreter
    model_dir: Path | None = None  # the trained model
    # Installed distributions of ``python``; read once and shared by the scanners that need it.
    distributions: Sequence[Distribution] | None = None


class Scanner(Protocol):
    kind: str

    def scan(self, target: Target) -> ScanResult: ...
