"""The bandit scan with the project's policy, on a real tree with real bandit runs."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from shipyard.analysis.bandit import AnalysisReport, Finding, python_files, scan_code
from shipyard.config.schema import AnalyzeConfig
from shipyard.errors import InvalidInput, StageTimeout

SECRETS = '''"""Credentials written into the code: bandit's B105 and B106, both low."""

password = "hunter2"


def login(connect):
    return connect(user="admin", password="s3cret")
'''
RUNNER = '''"""A shell command built from input: bandit's B602, high."""

import subprocess


def run(command):
    return subprocess.call(command, shell=True)
'''
TODAY = date(2026, 2, 1)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for relative, text in {
        "app/__init__.py": "",
        "app/secrets.py": SECRETS,
        "app/runner.py": RUNNER,
        "tests/test_runner.py": RUNNER,  # excluded by the default `exclude: [tests, .venv]`
        ".venv/lib/site.py": RUNNER,  # a virtualenv is never project code
        "legacy/old.py": RUNNER,
        "app/-h.py": "VALUE = 1\n",  # named like an option, still just a file
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def config(**fields: Any) -> AnalyzeConfig:
    return AnalyzeConfig.model_validate({"exclude": ["tests", ".venv", "legacy"], **fields})


def ids(findings: list[Finding]) -> list[str]:
    return sorted(f"{f.test_id}@{f.file}" for f in findings)


def test_high_severity_blocks_by_default(project: Path) -> None:
    report = scan_code(project, config(), today=TODAY)
    assert not report.passed
    assert ids(report.findings) == [
        "B105@app/secrets.py",
        "B106@app/secrets.py",
        "B404@app/runner.py",
        "B602@app/runner.py",
    ]
    [blocking] = report.blocking
    assert blocking == Finding(
        test_id="B602",
        test_name="subprocess_popen_with_shell_equals_true",
        severity="high",
        confidence="high",
        file="app/runner.py",
        line=7,
        text=blocking.text,
    )
    assert "shell=True" in blocking.text
    assert report.allowed == [] and report.expired == []
    summary = report.summary()
    assert (
        summary.splitlines()[0]
        == "bandit: 4 findings, 1 blocking, 0 allowed, 0 expired allow entries"
    )
    assert (
        "blocking: B602 subprocess_popen_with_shell_equals_true (high) at app/runner.py:7"
        in summary
    )


def test_lower_threshold_blocks_more(project: Path) -> None:
    report = scan_code(project, config(fail_on="low"), today=TODAY)
    assert ids(report.blocking) == ids(report.findings)
    assert {f.severity for f in report.blocking} == {"low", "high"}


def test_allow_list_and_its_expiry(project: Path) -> None:
    allow = [
        {"id": "B602", "reason": "commands come from our own config", "until": "2026-02-01"},
        {"id": "B105", "reason": "test fixture", "until": "2026-01-31"},
        {"id": "B106", "reason": "forever"},
        {"id": "GHSA-aaaa-bbbb-cccc", "reason": "not this scanner's", "until": "2020-01-01"},
    ]
    report = scan_code(project, config(fail_on="low", allow=allow), today=TODAY)
    assert ids(report.allowed) == ["B106@app/secrets.py", "B602@app/runner.py"]  # through `until`
    assert ids(report.blocking) == ["B105@app/secrets.py", "B404@app/runner.py"]
    assert report.expired == ["allow entry B105 expired on 2026-01-31: renew it or fix the finding"]
    assert not report.passed

    # The day after, B602's entry lapses as well and its finding blocks again.
    later = scan_code(project, config(allow=allow[:1]), today=date(2026, 2, 2))
    assert ids(later.blocking) == ["B602@app/runner.py"]
    assert later.expired == ["allow entry B602 expired on 2026-02-01: renew it or fix the finding"]


def test_an_expired_entry_fails_even_without_its_finding(project: Path) -> None:
    allow = [
        {"id": "B602", "reason": "reviewed"},
        {"id": "B999", "reason": "gone", "until": "2025-12-31"},
    ]
    report = scan_code(project, config(allow=allow), today=TODAY)
    assert report.blocking == []
    assert not report.passed
    as_dict = report.to_dict()
    assert as_dict["passed"] is False
    assert as_dict["expired"] == [
        "allow entry B999 expired on 2025-12-31: renew it or fix the finding"
    ]
    assert (
        as_dict["allowed"][0]["test_id"] == "B602"
        and as_dict["allowed"][0]["file"] == "app/runner.py"
    )
    assert "allow entry B999 expired" in report.summary()


def test_a_clean_selection_passes_and_unparsable_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("print('fine')\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    report = scan_code(tmp_path, AnalyzeConfig(), today=TODAY)
    assert report.passed and report.findings == []
    assert report.scan_errors == ["broken.py: syntax error while parsing AST from file"]
    assert "not scanned: broken.py" in report.summary()
    assert scan_code(tmp_path, AnalyzeConfig(paths=["ok.py"])) == AnalysisReport([], [], [], [])


def test_file_selection(project: Path) -> None:
    assert python_files(project, ["."], ["tests", ".venv", "legacy"]) == [
        "app/-h.py",
        "app/__init__.py",
        "app/runner.py",
        "app/secrets.py",
    ]
    assert python_files(
        project, ["app/runner.py", "app"], ["./app/secrets.py", "*/__init__.py", "app/-*"]
    ) == ["app/runner.py"]
    assert python_files(project, ["legacy", "tests"], []) == [
        "legacy/old.py",
        "tests/test_runner.py",
    ]
    with pytest.raises(InvalidInput, match="analyze path 'src' does not exist"):
        python_files(project, ["src"], [])
    with pytest.raises(InvalidInput, match="outside the project"):
        python_files(project / "app", [".."], [])


def test_timeout(project: Path) -> None:
    with pytest.raises(StageTimeout, match=r"bandit did not finish within 0\.01s"):
        scan_code(project, config(timeout=0.01))
