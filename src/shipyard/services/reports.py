"""What a run's stages left in its reports folder, read for people: tests, findings, QA figures.

The stages write the files (``pipeline/stages/checks.py``, ``pipeline/stages/qa.py``) and
this module only reads them: the JUnit report through :func:`shipyard.qa.junit.parse_junit`
(defusedxml), the analysis report as the policy wrote it, and the QA figures beside the
thresholds of the ``shipyard.yaml`` the run was built from. The verdict on each figure comes
from the same functions the qa stage judged with.

Only the files in :data:`REPORT_FILES` are ever served, and only from inside the run's folder.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from shipyard.analysis.interface import SEVERITIES
from shipyard.analysis.run import REPORT_FILE, SARIF_FILE
from shipyard.analysis.sbom import SBOM_FILE
from shipyard.config.loader import CONFIG_FILE, parse_config
from shipyard.config.schema import DropLimit, QAConfig, Threshold
from shipyard.errors import NotFound, ShipyardError, StageFailed
from shipyard.git import show_file
from shipyard.qa.junit import parse_junit
from shipyard.qa.quality import QualityReport, check_thresholds, compare_with_production
from shipyard.services.views import View

__all__ = [
    "JUNIT_FILE",
    "QA_FILE",
    "REPORT_FILES",
    "FailedTest",
    "FindingView",
    "FindingsReport",
    "JUnitReport",
    "LatencyFigure",
    "LoadFigures",
    "MetricFigure",
    "QaReport",
    "findings_report",
    "junit_report",
    "qa_report",
    "report_path",
]

JUNIT_FILE = "junit.xml"
QA_FILE = "qa.json"
# The files a person may download, and what they are.
REPORT_FILES = {
    SARIF_FILE: "application/sarif+json",
    SBOM_FILE: "application/vnd.cyclonedx+json",
    REPORT_FILE: "application/json",
    JUNIT_FILE: "application/xml",
    QA_FILE: "application/json",
}


class FailedTest(View):
    test: str  # classname::name
    message: str


class JUnitReport(View):
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    failures: list[FailedTest]  # failed and errored tests, each with its first message line
    problem: str | None = None  # why the report could not be read


class FindingView(View):
    kind: str
    id: str
    severity: str
    title: str
    location: str
    fix: str
    status: str  # blocking, allowed (by an allow entry) or below (the fail_on level)
    allowed_by: str | None = None
    allowed_reason: str | None = None
    allowed_until: str | None = None


class FindingsReport(View):
    passed: bool
    fail_on: str
    by_severity: list[tuple[str, list[FindingView]]]  # most severe first; empty ones left out
    expired: list[str]  # allow entries past their date, as sentences
    failures: list[str]  # checks that could not run and must
    files: list[str]  # the report files there are to download

    @property
    def count(self) -> int:
        return sum(len(found) for _, found in self.by_severity)


class LatencyFigure(View):
    name: str  # p50, p95, p99
    ms: float
    limit_ms: float | None

    @property
    def passed(self) -> bool:
        return self.limit_ms is None or self.ms <= self.limit_ms


class LoadFigures(View):
    requests: int
    errors: int
    error_rate: float
    max_error_rate: float | None
    throughput_rps: float
    latencies: list[LatencyFigure]

    @property
    def errors_passed(self) -> bool:
        return self.max_error_rate is None or self.error_rate <= self.max_error_rate


class MetricFigure(View):
    name: str
    value: float
    min: float | None
    max: float | None
    production: float | None
    max_drop: float | None
    passed: bool  # within its bounds and not dropped more than allowed against production


class QaReport(View):
    load: LoadFigures | None
    metrics: list[MetricFigure]
    production_version: str | None
    functional_exit_code: int | None
    failures: list[str]


# -- tests ----------------------------------------------------------------------------------------


def junit_report(reports: Path) -> JUnitReport | None:
    """The JUnit report's counts and failed tests; None when the test stage wrote none."""
    path = reports / JUNIT_FILE
    if not path.is_file():
        return None
    try:
        summary = parse_junit(path)
    except StageFailed as exc:  # the test stage failed on it too, saying the same
        return JUnitReport(
            tests=0, passed=0, failed=0, errors=0, skipped=0, failures=[], problem=exc.message
        )
    failures = []
    for line in summary.failures:  # "classname::name: message"
        test, _, message = line.partition(": ")
        failures.append(FailedTest(test=test, message=message))
    return JUnitReport(
        tests=summary.tests,
        passed=summary.passed,
        failed=summary.failed,
        errors=summary.errors,
        skipped=summary.skipped,
        failures=failures,
    )


# -- analysis -------------------------------------------------------------------------------------


def findings_report(reports: Path) -> FindingsReport | None:
    """The analysis report's findings by severity; None when the analyze stage wrote none."""
    report = _json(reports / REPORT_FILE)
    if report is None:
        return None
    groups: dict[str, list[FindingView]] = {}
    for finding in report.get("findings", []):
        view = _finding(finding)
        groups.setdefault(view.severity, []).append(view)
    order = [*reversed(SEVERITIES), *sorted(set(groups) - set(SEVERITIES))]
    return FindingsReport(
        passed=bool(report.get("passed")),
        fail_on=str(report.get("fail_on", "")),
        by_severity=[(severity, groups[severity]) for severity in order if severity in groups],
        expired=[str(line) for line in report.get("expired", [])],
        failures=[str(line) for line in report.get("failures", [])],
        files=[name for name in (SARIF_FILE, SBOM_FILE, REPORT_FILE) if (reports / name).is_file()],
    )


def _finding(data: dict[str, Any]) -> FindingView:
    allowed = data.get("allowed") or {}
    return FindingView(
        kind=str(data.get("kind", "")),
        id=str(data.get("id", "")),
        severity=str(data.get("severity", "")),
        title=str(data.get("title", "")),
        location=str(data.get("location", "")),
        fix=str(data.get("fix") or ""),
        status=str(data.get("status", "")),
        allowed_by=allowed.get("id"),
        allowed_reason=allowed.get("reason"),
        allowed_until=str(allowed["until"]) if allowed.get("until") else None,
    )


# -- qa -------------------------------------------------------------------------------------------


def qa_report(reports: Path, repository: str, sha: str) -> QaReport | None:
    """The qa stage's figures beside the thresholds the run had; None when qa wrote nothing."""
    summary = _json(reports / QA_FILE)
    if summary is None:
        return None
    config = _qa_config(repository, sha) or QAConfig()
    load = summary.get("load")
    quality = summary.get("quality") or {}
    production = quality.get("production") or {}
    functional = summary.get("functional") or {}
    return QaReport(
        load=_load(load, config) if load else None,
        metrics=_metrics(quality.get("metrics") or {}, production.get("metrics") or {}, config),
        production_version=production.get("version"),
        functional_exit_code=functional.get("exit_code"),
        failures=[str(line) for line in quality.get("failures", [])],
    )


def _load(load: dict[str, Any], config: QAConfig) -> LoadFigures:
    performance = config.performance
    limits = {
        "p50": None,
        "p95": performance.p95_ms if performance else None,
        "p99": performance.p99_ms if performance else None,
    }
    return LoadFigures(
        requests=int(load.get("requests", 0)),
        errors=int(load.get("errors", 0)),
        error_rate=float(load.get("error_rate", 0.0)),
        max_error_rate=config.load.max_error_rate if config.load else None,
        throughput_rps=float(load.get("throughput_rps", 0.0)),
        latencies=[
            LatencyFigure(name=name, ms=float(load.get(f"{name}_ms", 0.0)), limit_ms=limit)
            for name, limit in limits.items()
        ],
    )


def _metrics(
    measured: dict[str, float], production: dict[str, float], config: QAConfig
) -> list[MetricFigure]:
    quality = config.quality
    bounds = quality.metrics if quality else {}
    drops = quality.vs_production if quality else {}
    figures = []
    for name, value in measured.items():
        bound = bounds.get(name, Threshold())
        drop = drops.get(name)
        live = production.get(name)
        figures.append(
            MetricFigure(
                name=name,
                value=value,
                min=bound.min,
                max=bound.max,
                production=live,
                max_drop=drop.max_drop if drop else None,
                passed=_within(name, value, bound, live, drop),
            )
        )
    return figures


def _within(
    name: str, value: float, bound: Threshold, live: float | None, drop: DropLimit | None
) -> bool:
    """The qa stage's own checks, asked of one metric."""
    if check_thresholds({name: value}, {name: bound}):
        return False
    if live is None or drop is None:
        return True
    candidate, production = QualityReport({name: value}, 0), QualityReport({name: live}, 0)
    return not compare_with_production(candidate, production, {name: drop})


@lru_cache(maxsize=256)
def _qa_config(repository: str, sha: str) -> QAConfig | None:
    """The ``qa`` section of the commit's config (a commit never changes, so it is kept)."""
    try:
        text = show_file(Path(repository), sha, CONFIG_FILE)
        return parse_config(text, f"{CONFIG_FILE} at {sha[:12]}").qa if text else None
    except ShipyardError:  # the repository moved or the file no longer loads: figures only
        return None


# -- files ----------------------------------------------------------------------------------------


def report_path(reports: Path, name: str) -> Path:
    """One of :data:`REPORT_FILES` inside ``reports``; NotFound for anything else."""
    if name not in REPORT_FILES:
        raise NotFound(
            f"There is no report file {name!r}.",
            hint=f"A run's report files are {', '.join(REPORT_FILES)}.",
        )
    path = (reports / name).resolve()
    if path.parent != reports.resolve() or not path.is_file():
        raise NotFound(f"This run has no {name}: its stage did not write one.")
    return path


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
