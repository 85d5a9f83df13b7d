"""The analysis as SARIF 2.1.0, the format code-scanning tools (GitHub, GitLab, IDEs) read.

One run, one tool ("shipyard") whose rules are every finding id met. Severity goes to
``level`` (critical and high are errors, medium a warning, low a note) and to the
``security-severity`` property that GitHub ranks by. Findings in a file have a physical
location; dependency and licence findings name the package as a logical location. An
allow-listed finding is kept, with an external suppression carrying the entry's reason, so the
record shows what was accepted and why. Secrets are masked here as everywhere.
"""

from __future__ import annotations

from typing import Any

import shipyard
from shipyard.analysis.interface import Finding, rank
from shipyard.analysis.policy import Verdict

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "to_sarif"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0"}


def to_sarif(verdict: Verdict) -> dict[str, Any]:
    findings = verdict.findings
    rule_ids = list(dict.fromkeys(f.id for f in findings))
    rules = [_rule(rule_id, [f for f in findings if f.id == rule_id]) for rule_id in rule_ids]
    results = [_result(f, rule_ids.index(f.id), verdict) for f in findings]
    notes = [
        {"level": "note", "message": {"text": f"{result.kind}: {note}"}}
        for result in verdict.results
        for note in result.notes
    ]
    notes += [{"level": "error", "message": {"text": text}} for text in verdict.expired]
    notes += [{"level": "error", "message": {"text": text}} for text in verdict.failures]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "shipyard",
                        "version": shipyard.__version__,
                        "rules": rules,
                    }
                },
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
                "results": results,
                "properties": {"passed": verdict.passed, "fail_on": verdict.fail_on},
            }
        ],
    }


def _rule(rule_id: str, findings: list[Finding]) -> dict[str, Any]:
    worst = max(findings, key=lambda f: rank(f.severity))
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": _short(worst)},
        "help": {"text": worst.fix or "see the finding"},
        "properties": {
            "tags": ["security", worst.kind],
            "security-severity": _SECURITY_SEVERITY.get(worst.severity, "5.5"),
        },
    }


def _short(finding: Finding) -> str:
    if finding.kind == "vulnerability":
        return f"known vulnerability {finding.id}"
    if finding.kind == "code":
        return str(finding.details.get("test_name", finding.id))
    return finding.id.replace("-", " ")


def _result(finding: Finding, index: int, verdict: Verdict) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.id,
        "ruleIndex": index,
        "level": _LEVEL.get(finding.severity, "warning"),
        "message": {"text": f"{finding.title} ({finding.location}). Fix: {finding.fix}"},
        "locations": [_location(finding)],
        "properties": {
            "kind": finding.kind,
            "severity": finding.severity,
            "aliases": list(finding.aliases),
            "blocking": verdict.is_blocking(finding),
        },
    }
    entry = verdict.allowed_by(finding)
    if entry is not None:
        justification = entry.reason + (f" (until {entry.until})" if entry.until else "")
        result["suppressions"] = [{"kind": "external", "justification": justification}]
    return result


def _location(finding: Finding) -> dict[str, Any]:
    if finding.file is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": finding.file}}
        if finding.line:
            physical["region"] = {"startLine": finding.line}
        return {"physicalLocation": physical}
    return {"logicalLocations": [{"name": finding.location, "kind": "package"}]}
