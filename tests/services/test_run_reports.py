"""A run's reports read for people: JUnit counts, findings by severity, QA figures against the
thresholds of the commit's own shipyard.yaml (a real git repository, real files)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from shipyard.domain import Status
from shipyard.errors import NotFound
from shipyard.services import Services
from shipyard.services.projects import ProjectView
from shipyard.wiring import open_adapters

CONFIG = """\
name: tiny
build: {train: "true"}
model: {serve: "tiny_model:Model"}
qa:
  load: {rate: 10, duration: 1s, max_error_rate: 0.01}
  performance: {p95_ms: 100, p99_ms: 200}
  quality:
    data: holdout.csv
    label: y
    metrics: {accuracy: {min: 0.9}, f1_macro: {min: 0.5}}
    vs_production: {accuracy: {max_drop: 0.02}}
"""
JUNIT = """\
<testsuites><testsuite name="unit">
  <testcase classname="tests.test_model" name="test_shape"/>
  <testcase classname="tests.test_model" name="test_accuracy">
    <failure message="assert 0.7 &gt;= 0.9">long traceback</failure>
  </testcase>
  <testcase classname="tests.test_io" name="test_load"><error message="FileNotFoundError: x.csv"/></testcase>
  <testcase classname="tests.test_io" name="test_slow"><skipped/></testcase>
</testsuite></testsuites>
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return done.stdout.decode().strip()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    adapters = open_adapters(tmp_path / "state")
    yield Services(adapters)
    adapters.store.close()


@pytest.fixture
def run(services: Services, tmp_path: Path) -> Path:
    """Run tiny#1 of a real commit; returns its (empty) reports folder."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "shipyard.yaml").write_text(CONFIG)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    services.adapters.store.ensure_project("tiny", str(repo))
    services.adapters.store.create_run("tiny", git(repo, "rev-parse", "HEAD"), "main")
    reports = services.adapters.state.run_dir("tiny", 1) / "reports"
    reports.mkdir(parents=True)
    return reports


def test_the_junit_report_gives_counts_and_each_failed_test_with_its_message(
    services: Services, run: Path
) -> None:
    assert services.runs.test_report("tiny", 1) is None
    (run / "junit.xml").write_text(JUNIT)
    services.adapters.store.set_stage_status("tiny", 1, "test", Status.PASSED, "ok")
    report = services.runs.test_report("tiny", 1)
    assert report is not None
    assert (report.tests, report.passed, report.failed, report.errors, report.skipped) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert [(f.test, f.message) for f in report.failures] == [
        ("tests.test_model::test_accuracy", "assert 0.7 >= 0.9"),
        ("tests.test_io::test_load", "FileNotFoundError: x.csv"),
    ]


def test_a_junit_report_with_entities_is_refused_and_says_so(services: Services, run: Path) -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite>&a;</testsuite>'
    (run / "junit.xml").write_text(bomb)
    report = services.runs.test_report("tiny", 1)
    assert report is not None and report.problem is not None
    assert "DTDs or entities" in report.problem


def test_findings_come_by_severity_with_their_allow_list_state(
    services: Services, run: Path
) -> None:
    finding = {"kind": "code", "title": "t", "location": "app.py:3", "fix": ""}
    report = {
        "passed": False,
        "fail_on": "high",
        "findings": [
            finding | {"id": "B101", "severity": "low", "status": "below"},
            finding | {"id": "B602", "severity": "high", "status": "blocking"},
            finding
            | {
                "id": "GHSA-1",
                "severity": "critical",
                "status": "allowed",
                "allowed": {"id": "GHSA-1", "reason": "not reachable", "until": "2099-01-01"},
            },
        ],
        "expired": [],
        "failures": [],
    }
    (run / "analyze.json").write_text(json.dumps(report))
    (run / "analysis.sarif").write_text("{}")
    found = services.runs.findings("tiny", 1)
    assert found is not None and not found.passed and found.count == 3
    assert [(severity, [f.id for f in group]) for severity, group in found.by_severity] == [
        ("critical", ["GHSA-1"]),
        ("high", ["B602"]),
        ("low", ["B101"]),
    ]
    allowed = found.by_severity[0][1][0]
    assert (allowed.status, allowed.allowed_reason, allowed.allowed_until) == (
        "allowed",
        "not reachable",
        "2099-01-01",
    )
    assert found.files == ["analysis.sarif", "analyze.json"]  # no SBOM was written


def test_qa_figures_stand_against_the_commits_thresholds_and_production(
    services: Services, run: Path
) -> None:
    qa = {
        "load": {"requests": 50, "errors": 1, "error_rate": 0.02, "throughput_rps": 9.8}
        | {"p50_ms": 12.0, "p95_ms": 80.0, "p99_ms": 250.0},
        "quality": {
            "metrics": {"accuracy": 0.93, "f1_macro": 0.91},
            "failures": [],
            "production": {"version": "3-abcdef0", "metrics": {"accuracy": 0.96, "f1_macro": 0.9}},
        },
    }
    (run / "qa.json").write_text(json.dumps(qa))
    report = services.runs.qa_report("tiny", 1)
    assert report is not None and report.load is not None
    assert report.load.max_error_rate == 0.01 and not report.load.errors_passed
    assert [(f.name, f.limit_ms, f.passed) for f in report.load.latencies] == [
        ("p50", None, True),
        ("p95", 100, True),
        ("p99", 200, False),
    ]
    assert report.production_version == "3-abcdef0"
    by_name = {metric.name: metric for metric in report.metrics}
    # accuracy is above its bound but dropped 0.03 against production, more than 0.02
    assert (by_name["accuracy"].min, by_name["accuracy"].production) == (0.9, 0.96)
    assert by_name["accuracy"].max_drop == 0.02 and not by_name["accuracy"].passed
    assert by_name["f1_macro"].passed and by_name["f1_macro"].max_drop is None


def test_only_the_known_report_files_of_a_run_are_handed_out(services: Services, run: Path) -> None:
    (run / "analysis.sarif").write_text("{}")
    assert (
        services.runs.report_file("tiny", 1, "analysis.sarif") == (run / "analysis.sarif").resolve()
    )
    for name in ("../../../../shipyard.db", "secrets.key", "..", "qa.json"):
        with pytest.raises(NotFound):
            services.runs.report_file("tiny", 1, name)
    with pytest.raises(NotFound, match="no run tiny#7"):
        services.runs.report_file("tiny", 7, "analysis.sarif")


def test_a_report_file_that_is_a_symlink_out_of_the_run_is_not_served(
    services: Services, run: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere.json").write_text("{}")
    (run / "qa.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(NotFound):
        services.runs.report_file("tiny", 1, "qa.json")


def test_a_run_started_by_hand_builds_the_first_plain_branch_a_project_watches(
    services: Services, tmp_path: Path
) -> None:
    def view(branches: list[str]) -> ProjectView:
        return ProjectView(
            name="tiny",
            registered=True,
            remote=str(tmp_path),
            branches=branches,
            poll_interval=None,
            repository=str(tmp_path),
            created_at=datetime(2026, 1, 1),
            hooks={},
        )

    assert view(["main", "release/*"]).default_ref == "main"
    assert view(["release/*", "develop"]).default_ref == "develop"
    assert view(["release/*", "v[0-9]*"]).default_ref == "HEAD"
