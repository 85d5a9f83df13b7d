"""One analysis: the configured checks over a target, the policy, and the report files.

The analyze stage and ``shipyard analyze PATH`` both call :func:`run_analysis`, so a check run
by hand on a working tree is the same check the pipeline runs on the commit. Files written into
``reports_dir``:

- ``analyze.json``: every finding with its status (blocking, allowed, below), notes, counts;
- ``analysis.sarif``: the same as SARIF 2.1.0;
- ``sbom.cdx.json``: the CycloneDX SBOM of the environment.

:meth:`Analysis.stage_summary` is the part that travels with the artifact in its build-info:
the verdict, counts per kind, the vulnerability list, the SBOM's name, digest and size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from shipyard.analysis.bandit import CodeScanner
from shipyard.analysis.dependencies import (
    VulnerabilityScanner,
    database_path,
    installed_distributions,
)
from shipyard.analysis.interface import KINDS, Scanner, ScanResult, Target
from shipyard.analysis.licences import LicenceScanner
from shipyard.analysis.models import ModelScanner
from shipyard.analysis.policy import Verdict, judge
from shipyard.analysis.sarif import to_sarif
from shipyard.analysis.sbom import SBOM_FILE, SbomInfo, write_sbom
from shipyard.analysis.secrets import SecretScanner
from shipyard.analysis.summary import render_summary
from shipyard.analysis.vulndb import OsvApi
from shipyard.config.schema import AnalyzeConfig

__all__ = ["REPORT_FILE", "SARIF_FILE", "Analysis", "AnalysisInput", "run_analysis"]

REPORT_FILE = "analyze.json"
SARIF_FILE = "analysis.sarif"


@dataclass(frozen=True)
class AnalysisInput:
    root: Path  # the tree of code
    reports_dir: Path
    name: str  # the SBOM's root component
    version: str
    python: Path | None = None  # the build environment's interpreter
    model_dir: Path | None = None
    online: bool | None = None  # None: as configured
    transport: httpx.BaseTransport | None = None  # OSV's API, answered in memory by tests


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    sbom: SbomInfo | None
    files: dict[str, Path] = field(default_factory=dict)
    sbom_note: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def summary_lines(self) -> list[str]:
        sbom: str | None = None
        if self.sbom is not None:
            sbom = (
                f"sbom: {self.sbom.path.name} (CycloneDX {self.sbom.spec_version}, "
                f"{self.sbom.components} components, sha256:{self.sbom.sha256[:16]})"
            )
        else:
            sbom = f"sbom: {self.sbom_note}" if self.sbom_note else None
        return render_summary(self.verdict, sbom)

    def to_dict(self) -> dict[str, Any]:
        return self.verdict.to_dict() | {"sbom": self.sbom.to_dict() if self.sbom else None}

    def failure_message(self) -> str:
        verdict = self.verdict
        parts = [f"{len(verdict.blocking)} blocking finding(s)"] if verdict.blocking else []
        parts += [sentence for sentence in (*verdict.expired, *verdict.failures)]
        first = [f.describe() for f in verdict.blocking[:3]]
        more = f"; and {len(verdict.blocking) - 3} more" if len(verdict.blocking) > 3 else ""
        detail = f": {'; '.join(first)}{more}" if first else ""
        return f"Analysis blocked the build ({', '.join(parts)}){detail}"

    def stage_summary(self) -> dict[str, Any]:
        verdict = self.verdict
        counts = {
            result.kind: {
                "found": len(result.findings),
                "blocking": sum(verdict.is_blocking(f) for f in result.findings),
                "allowed": sum(verdict.allowed_by(f) is not None for f in result.findings),
                **({"unchecked": result.unchecked} if result.unchecked else {}),
            }
            for result in verdict.results
        }
        # Scalars at the top: they become searchable artifact properties (analyze.findings).
        summary: dict[str, Any] = {
            "passed": verdict.passed,
            "fail_on": verdict.fail_on,
            "findings": len(verdict.findings),
            "blocking": len(verdict.blocking),
            "allowed": len(verdict.allowed),
            "counts": counts,
            "vulnerabilities": [
                _vulnerability(f, verdict) for f in verdict.findings if f.kind == "vulnerability"
            ],
            "allowed_findings": [
                {"finding": f.id, "location": f.location, "by": e.id, "reason": e.reason}
                | ({"until": e.until} if e.until else {})
                for f, e in verdict.allowed
            ],
            "expired": verdict.expired,
            "reports": {key: path.name for key, path in self.files.items()},
        }
        vulnerability = next((r for r in verdict.results if r.kind == "vulnerability"), None)
        if vulnerability is not None:
            summary["vulnerability_data"] = vulnerability.data.get("sources") or "none"
        if self.sbom is not None:
            summary["sbom"] = self.sbom.to_dict()
        return summary


def _vulnerability(finding: Any, verdict: Verdict) -> dict[str, Any]:
    status = (
        "blocking"
        if verdict.is_blocking(finding)
        else ("allowed" if verdict.allowed_by(finding) else "below")
    )
    return {
        "id": finding.id,
        "aliases": list(finding.aliases),
        "package": finding.details.get("package"),
        "version": finding.details.get("version"),
        "severity": finding.severity,
        "fixed": finding.details.get("fixed"),
        "status": status,
    }


def run_analysis(
    given: AnalysisInput,
    config: AnalyzeConfig,
    *,
    today: date | None = None,
    now: datetime | None = None,
    say: Callable[[str], None] = lambda text: None,
) -> Analysis:
    """Run ``config.checks`` over ``given``, judge, and write the report files."""
    now = now or datetime.now(UTC)
    needs_env = {"vulnerabilities", "licences"} & set(config.checks)
    distributions = None
    if given.python is not None and needs_env:
        distributions = installed_distributions(given.python)
        say(f"{len(distributions)} distributions installed in {given.python.parent.parent}")
    target = Target(given.root, given.python, given.model_dir, distributions)
    results: list[ScanResult] = []
    api = _api(given, config)
    try:
        for scanner in _scanners(given, config, api, now):
            say(f"checking {scanner.kind}")
            results.append(scanner.scan(target))
    finally:
        if api is not None:
            api.close()
    sbom, sbom_note = _sbom(given, config, say)
    require = ["vulnerability"] if config.vulnerabilities.required else []
    verdict = judge(results, config, today or now.date(), require=require)
    analysis = Analysis(verdict, sbom, sbom_note=sbom_note)
    files = _write(analysis, given.reports_dir)
    return Analysis(verdict, sbom, files, sbom_note)


def _api(given: AnalysisInput, config: AnalyzeConfig) -> OsvApi | None:
    settings = config.vulnerabilities
    online = settings.online if given.online is None else given.online
    if not online or "vulnerabilities" not in config.checks:
        return None
    return OsvApi(settings.api, timeout=settings.timeout, transport=given.transport)


def _scanners(
    given: AnalysisInput, config: AnalyzeConfig, api: OsvApi | None, now: datetime
) -> list[Scanner]:
    vulnerabilities = config.vulnerabilities
    every: dict[str, Scanner] = {
        "code": CodeScanner(config),
        "secrets": SecretScanner(config.secrets),
        "vulnerabilities": VulnerabilityScanner(
            vulnerabilities,
            database=database_path(vulnerabilities, given.root),
            api=api,
            now=now,
        ),
        "licences": LicenceScanner(config.licences),
        "models": ModelScanner(config.models),
    }
    chosen = [every[check] for check in dict.fromkeys(config.checks) if check in every]
    return sorted(chosen, key=lambda scanner: KINDS.index(scanner.kind))


def _sbom(
    given: AnalysisInput, config: AnalyzeConfig, say: Callable[[str], None]
) -> tuple[SbomInfo | None, str | None]:
    if "sbom" not in config.checks:
        return None, None
    if given.python is None:
        return None, "NOT WRITTEN: no environment to describe"
    say("writing the CycloneDX SBOM")
    out = given.reports_dir / SBOM_FILE
    return write_sbom(given.python, out, name=given.name, version=given.version), None


def _write(analysis: Analysis, reports_dir: Path) -> dict[str, Path]:
    reports_dir.mkdir(parents=True, exist_ok=True)
    report = reports_dir / REPORT_FILE
    sarif = reports_dir / SARIF_FILE
    report.write_text(json.dumps(analysis.to_dict(), indent=2) + "\n", encoding="utf-8")
    sarif.write_text(json.dumps(to_sarif(analysis.verdict), indent=2) + "\n", encoding="utf-8")
    files = {"report": report, "sarif": sarif}
    if analysis.sbom is not None:
        files["sbom"] = analysis.sbom.path
    return files
