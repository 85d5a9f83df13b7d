"""The human summary of an analysis: one verdict line, then the findings grouped by kind.

Blocking and allowed findings are listed whole, with the fix or the allow entry's reason;
findings below the threshold are listed up to a few per kind, since bandit alone can find
dozens of low ones. What a check could not do is said under its kind, never left out.
"""

from __future__ import annotations

from shipyard.analysis.interface import KINDS, Finding, ScanResult, rank
from shipyard.analysis.policy import Verdict

__all__ = ["render_summary"]

BELOW_SHOWN = 5
_HEADINGS = {
    "vulnerability": "vulnerabilities",
    "code": "code (bandit)",
    "secret": "secrets",
    "model": "model files",
    "licence": "licences",
}


def render_summary(verdict: Verdict, sbom_line: str | None = None) -> list[str]:
    lines = [_headline(verdict)]
    order = {kind: index for index, kind in enumerate(KINDS)}
    for result in sorted(verdict.results, key=lambda r: order.get(r.kind, 99)):
        lines += _section(result, verdict)
    if sbom_line:
        lines.append(sbom_line)
    lines += [f"EXPIRED: {sentence}" for sentence in verdict.expired]
    lines += [f"FAILED: {sentence}" for sentence in verdict.failures]
    lines += [f"unused allow entry {entry}: it matches no finding" for entry in verdict.unused]
    return lines


def _headline(verdict: Verdict) -> str:
    allowed = len(verdict.allowed)
    below = len(verdict.findings) - len(verdict.blocking) - allowed
    word = "passed" if verdict.passed else "FAILED"
    counts = (
        f"{len(verdict.blocking)} blocking (fail_on: {verdict.fail_on}), "
        f"{allowed} allowed, {below} below the threshold"
    )
    extra = len(verdict.expired) + len(verdict.failures)
    more = f", {extra} policy failure{'s' if extra != 1 else ''}" if extra else ""
    return f"analysis {word}: {counts}{more}"


def _section(result: ScanResult, verdict: Verdict) -> list[str]:
    found = sorted(result.findings, key=lambda f: (-rank(f.severity), f.id, f.location))
    heading = _HEADINGS.get(result.kind, result.kind)
    lines = [f"{heading}: {len(found)} found in {result.scope}"]
    below: list[Finding] = []
    for finding in found:
        entry = verdict.allowed_by(finding)
        if verdict.is_blocking(finding):
            lines.append(f"  BLOCKING {finding.describe()}")
        elif entry is not None:
            until = f", until {entry.until}" if entry.until else ""
            lines.append(
                f"  allowed  {finding.severity} {finding.id} {finding.location} "
                f"(by {entry.id}: {entry.reason}{until})"
            )
        else:
            below.append(finding)
    lines += [
        f"  below    {f.severity} {f.id} {f.location}: {f.title}" for f in below[:BELOW_SHOWN]
    ]
    if len(below) > BELOW_SHOWN:
        lines.append(f"  ... and {len(below) - BELOW_SHOWN} more below the threshold")
    lines += [f"  note: {note}" for note in result.notes]
    return lines
