"""The analyze stage's policy: which findings block the build, the same way for every kind.

- A finding at or above ``fail_on`` (low < medium < high < critical) blocks, unless an allow
  entry in force names its id or one of its aliases (an advisory's CVE, ``rule:path``).
- An allow entry holds through its ``until`` day. From the day after, it is itself a failure,
  with a sentence saying so, whether or not its finding is still there: exceptions get looked
  at again instead of living forever.
- An allow entry that matches nothing is reported (it may be stale), but does not fail.
- A check that could not run at all (no vulnerability data) fails only when the project asked
  for it (``vulnerabilities.required``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from shipyard.analysis.interface import SEVERITIES, Finding, ScanResult, rank
from shipyard.config.schema import AllowEntry, AnalyzeConfig

__all__ = ["Verdict", "judge"]


@dataclass(frozen=True)
class Verdict:
    fail_on: str
    results: list[ScanResult]
    blocking: list[Finding]
    allowed: list[tuple[Finding, AllowEntry]]
    expired: list[str]  # one sentence per allow entry past its date
    failures: list[str] = field(default_factory=list)  # required checks that did not run
    unused: list[str] = field(default_factory=list)  # allow entries that matched nothing

    @property
    def passed(self) -> bool:
        return not self.blocking and not self.expired and not self.failures

    @property
    def findings(self) -> list[Finding]:
        return [finding for result in self.results for finding in result.findings]

    def is_blocking(self, finding: Finding) -> bool:
        return any(finding is other for other in self.blocking)

    def allowed_by(self, finding: Finding) -> AllowEntry | None:
        return next((entry for f, entry in self.allowed if f is finding), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "fail_on": self.fail_on,
            "findings": [self._finding_dict(f) for f in self.findings],
            "expired": self.expired,
            "failures": self.failures,
            "unused_allow_entries": self.unused,
            "checks": {
                result.kind: {
                    "scope": result.scope,
                    "findings": len(result.findings),
                    "notes": result.notes,
                    "unchecked": result.unchecked,
                    **result.data,
                }
                for result in self.results
            },
        }

    def _finding_dict(self, finding: Finding) -> dict[str, Any]:
        entry = self.allowed_by(finding)
        status = "blocking" if self.is_blocking(finding) else "allowed" if entry else "below"
        data = finding.to_dict() | {"status": status}
        if entry is not None:
            data["allowed"] = {"id": entry.id, "reason": entry.reason, "until": entry.until}
        return data


def judge(
    results: Sequence[ScanResult],
    config: AnalyzeConfig,
    today: date,
    *,
    require: Sequence[str] = (),
) -> Verdict:
    """Sort every finding into blocking, allowed or below the threshold."""
    in_force = [entry for entry in config.allow if not _expired(entry, today)]
    threshold = SEVERITIES.index(config.fail_on)
    blocking: list[Finding] = []
    allowed: list[tuple[Finding, AllowEntry]] = []
    used: set[str] = set()
    for finding in (f for result in results for f in result.findings):
        entry = next((e for e in in_force if e.id in finding.names), None)
        if entry is not None:
            allowed.append((finding, entry))
            used.add(entry.id)
        elif rank(finding.severity) >= threshold:
            blocking.append(finding)
    expired = [
        f"allow entry {entry.id} expired on {entry.until}: renew it or fix the finding"
        for entry in config.allow
        if _expired(entry, today)
    ]
    failures = [
        f"{result.kind} check is required but did not run: {result.unchecked}"
        for result in results
        if result.unchecked and result.kind in require
    ]
    unused = [entry.id for entry in in_force if entry.id not in used]
    return Verdict(config.fail_on, list(results), blocking, allowed, expired, failures, unused)


def _expired(entry: AllowEntry, today: date) -> bool:
    # The entry holds through its `until` day; it is expired from the day after.
    return entry.until is not None and date.fromisoformat(entry.until) < today
