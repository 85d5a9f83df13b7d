"""The policy over every kind of finding, the SARIF it becomes, and the human summary."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from shipyard.analysis.interface import Finding, ScanResult
from shipyard.analysis.policy import judge
from shipyard.analysis.sarif import to_sarif
from shipyard.analysis.summary import render_summary
from shipyard.config.schema import AnalyzeConfig

TODAY = date(2026, 3, 1)
VULN = Finding(
    kind="vulnerability",
    id="GHSA-aaaa-1111-0001",
    severity="critical",
    title="Remote code execution in foo-bar",
    location="foo-bar==1.2",
    aliases=("CVE-2025-0001", "PYSEC-2025-1"),
    fix="upgrade foo-bar to 1.5",
    details={"package": "foo-bar", "version": "1.2", "fixed": "1.5"},
)
SECRET = Finding(
    kind="secret",
    id="secret-password",
    severity="high",
    title="password or secret in a config file s3cr****",
    location="config/prod.yaml:3",
    aliases=("secret-password:config/prod.yaml",),
    fix="remove it",
    file="config/prod.yaml",
    line=3,
)
CODE = Finding(
    kind="code",
    id="B404",
    severity="low",
    title="blacklist: consider the subprocess module",
    location="app/run.py:1",
    aliases=("B404:app/run.py",),
    file="app/run.py",
    line=1,
    details={"test_name": "blacklist"},
)
MEDIUM = Finding(kind="licence", id="licence-denied", severity="medium", title="t", location="x==1")


def results(*findings: Finding) -> list[ScanResult]:
    kinds = dict.fromkeys(f.kind for f in findings)
    return [ScanResult(k, [f for f in findings if f.kind == k], f"scope of {k}") for k in kinds]


def config(**fields: Any) -> AnalyzeConfig:
    return AnalyzeConfig.model_validate(fields)


@pytest.mark.parametrize(
    ("fail_on", "blocking"),
    [
        ("low", ["GHSA-aaaa-1111-0001", "secret-password", "licence-denied", "B404"]),
        ("medium", ["GHSA-aaaa-1111-0001", "secret-password", "licence-denied"]),
        ("high", ["GHSA-aaaa-1111-0001", "secret-password"]),
        ("critical", ["GHSA-aaaa-1111-0001"]),
    ],
)
def test_fail_on_compares_severities(fail_on: str, blocking: list[str]) -> None:
    verdict = judge(results(VULN, SECRET, CODE, MEDIUM), config(fail_on=fail_on), TODAY)
    assert sorted(f.id for f in verdict.blocking) == sorted(blocking)
    assert not verdict.passed


def test_nothing_at_or_above_the_threshold_passes() -> None:
    verdict = judge(results(CODE), config(), TODAY)
    assert verdict.passed and verdict.blocking == [] and verdict.findings == [CODE]


@pytest.mark.parametrize("name", ["GHSA-aaaa-1111-0001", "CVE-2025-0001", "PYSEC-2025-1"])
def test_an_allow_entry_matches_an_id_or_any_alias(name: str) -> None:
    allow = [{"id": name, "reason": "not reachable from serving", "until": "2026-03-01"}]
    verdict = judge(results(VULN), config(allow=allow), TODAY)
    assert verdict.passed
    assert [(f.id, e.id) for f, e in verdict.allowed] == [("GHSA-aaaa-1111-0001", name)]


def test_an_allow_entry_for_one_file_only() -> None:
    other = Finding(
        **{**SECRET.__dict__, "location": "b.yaml:1", "aliases": ("secret-password:b.yaml",)}
    )
    allow = [{"id": "secret-password:config/prod.yaml", "reason": "a test fixture"}]
    verdict = judge(results(SECRET, other), config(allow=allow), TODAY)
    assert [f.location for f in verdict.blocking] == ["b.yaml:1"]


def test_an_expired_entry_fails_and_says_so() -> None:
    allow = [
        {"id": "CVE-2025-0001", "reason": "waiting for 1.5", "until": "2026-02-28"},
        {"id": "B999", "reason": "gone long ago", "until": "2025-01-01"},
    ]
    verdict = judge(results(VULN), config(allow=allow), TODAY)
    assert [f.id for f in verdict.blocking] == ["GHSA-aaaa-1111-0001"]  # no longer allowed
    assert verdict.expired == [
        "allow entry CVE-2025-0001 expired on 2026-02-28: renew it or fix the finding",
        "allow entry B999 expired on 2025-01-01: renew it or fix the finding",
    ]
    # Even with nothing blocking, an expired entry fails the stage.
    only_expired = judge(results(CODE), config(allow=allow[1:]), TODAY)
    assert only_expired.blocking == [] and not only_expired.passed


def test_unused_entries_are_reported_without_failing() -> None:
    allow = [{"id": "GHSA-zzzz", "reason": "old"}, {"id": "B404", "reason": "we shell out"}]
    verdict = judge(results(CODE), config(allow=allow, fail_on="low"), TODAY)
    assert verdict.passed and verdict.unused == ["GHSA-zzzz"]


def test_the_report_dict_has_each_findings_status() -> None:
    allow = [{"id": "secret-password", "reason": "fixture", "until": "2026-12-31"}]
    verdict = judge(results(VULN, SECRET, CODE), config(allow=allow), TODAY)
    data = verdict.to_dict()
    status = {f["id"]: f["status"] for f in data["findings"]}
    assert status == {
        "GHSA-aaaa-1111-0001": "blocking",
        "secret-password": "allowed",
        "B404": "below",
    }
    allowed = next(f for f in data["findings"] if f["id"] == "secret-password")
    assert allowed["allowed"] == {
        "id": "secret-password",
        "reason": "fixture",
        "until": "2026-12-31",
    }
    assert data["checks"]["secret"]["scope"] == "scope of secret"
    json.dumps(data)  # serialisable as it is


def test_sarif_2_1_0() -> None:
    allow = [{"id": "secret-password", "reason": "fixture", "until": "2026-12-31"}]
    notes = ScanResult("code", [CODE], "3 files", ["not scanned: broken.py: syntax error"])
    verdict = judge([*results(VULN, SECRET), notes], config(allow=allow), TODAY)
    sarif = to_sarif(verdict)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["GHSA-aaaa-1111-0001", "secret-password", "B404"]
    assert rules[0]["properties"]["security-severity"] == "9.5"
    assert rules[2]["shortDescription"]["text"] == "blacklist"
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert [r["ruleIndex"] for r in run["results"]] == [0, 1, 2]
    assert {k: r["level"] for k, r in by_rule.items()} == {
        "GHSA-aaaa-1111-0001": "error",
        "secret-password": "error",
        "B404": "note",
    }
    vuln = by_rule["GHSA-aaaa-1111-0001"]
    assert vuln["locations"] == [
        {"logicalLocations": [{"name": "foo-bar==1.2", "kind": "package"}]}
    ]
    assert vuln["properties"]["aliases"] == ["CVE-2025-0001", "PYSEC-2025-1"]
    assert vuln["properties"]["blocking"] is True
    secret = by_rule["secret-password"]
    assert secret["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "config/prod.yaml"},
        "region": {"startLine": 3},
    }
    assert secret["suppressions"] == [
        {"kind": "external", "justification": "fixture (until 2026-12-31)"}
    ]
    notifications = run["invocations"][0]["toolExecutionNotifications"]
    assert notifications == [
        {"level": "note", "message": {"text": "code: not scanned: broken.py: syntax error"}}
    ]
    assert run["properties"] == {"passed": False, "fail_on": "high"}


def test_the_summary_is_grouped_by_kind() -> None:
    allow = [
        {"id": "secret-password", "reason": "fixture", "until": "2026-12-31"},
        {"id": "B1", "reason": "gone", "until": "2026-01-01"},
    ]
    many_low = [
        Finding(**{**CODE.__dict__, "line": n, "location": f"app/run.py:{n}"}) for n in range(7)
    ]
    verdict = judge(results(VULN, SECRET, *many_low), config(allow=allow), TODAY)
    lines = render_summary(verdict, "sbom: sbom.cdx.json (3 components)")
    assert lines[0] == (
        "analysis FAILED: 1 blocking (fail_on: high), 1 allowed, 7 below the threshold, "
        "1 policy failure"
    )
    assert lines[1] == "vulnerabilities: 1 found in scope of vulnerability"
    assert lines[2] == (
        "  BLOCKING critical GHSA-aaaa-1111-0001 (CVE-2025-0001, PYSEC-2025-1) foo-bar==1.2: "
        "Remote code execution in foo-bar; fix: upgrade foo-bar to 1.5"
    )
    assert lines[3] == "code (bandit): 7 found in scope of code"
    assert lines[4].startswith("  below    low B404 app/run.py:0")
    assert lines[9] == "  ... and 2 more below the threshold"
    assert lines[10] == "secrets: 1 found in scope of secret"
    assert lines[11] == (
        "  allowed  high secret-password config/prod.yaml:3 (by secret-password: fixture, "
        "until 2026-12-31)"
    )
    assert lines[-2] == "sbom: sbom.cdx.json (3 components)"
    assert lines[-1] == "EXPIRED: allow entry B1 expired on 2026-01-01: renew it or fix the finding"
