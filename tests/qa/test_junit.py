"""JUnit XML parsing, on a report written by a real pytest run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard.errors import StageFailed
from shipyard.qa.junit import JUnitSummary, parse_junit

TESTS = """
import pytest


def test_passes():
    assert 1 + 1 == 2


def test_fails():
    assert [1, 2] == [1, 3], "lists differ"


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("fixture blew up\\nsecond line")


def test_errors(broken):
    pass
"""


@pytest.fixture(scope="module")
def pytest_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "test_sample.py").write_text(TESTS)
    report = folder / "junit.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "test_sample.py",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # 1: some tests failed
    return report


def test_parses_a_real_pytest_report(pytest_report: Path) -> None:
    summary = parse_junit(pytest_report)
    assert (summary.tests, summary.passed, summary.failed, summary.errors, summary.skipped) == (
        4,
        1,
        1,
        1,
        1,
    )
    failed, errored = summary.failures
    assert failed.startswith("test_sample::test_fails: AssertionError: lists differ")
    assert "\n" not in failed
    assert errored.startswith("test_sample::test_errors: failed on setup with ")
    assert "fixture blew up" in errored and "second line" not in errored
    assert summary.to_dict() == {
        "tests": 4,
        "passed": 1,
        "failed": 1,
        "errors": 1,
        "skipped": 1,
        "failures": summary.failures,
    }


def test_a_testsuite_root_and_text_only_messages(tmp_path: Path) -> None:
    report = tmp_path / "surefire.xml"
    report.write_text(
        textwrap.dedent(
            """\
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuite name="calc" tests="3">
              <testcase classname="calc.AddTest" name="adds"/>
              <testcase classname="calc.AddTest" name="overflows">
                <failure type="java.lang.AssertionError">expected 3
            but was 4</failure>
              </testcase>
              <testcase name="bare"><skipped/></testcase>
            </testsuite>
            """
        )
    )
    assert parse_junit(report) == JUnitSummary(
        tests=3,
        passed=1,
        failed=1,
        errors=0,
        skipped=1,
        failures=["calc.AddTest::overflows: expected 3"],
    )


def test_missing_garbled_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(StageFailed, match="no JUnit report at") as caught:
        parse_junit(tmp_path / "missing.xml")
    assert caught.value.hint is not None and "--junitxml" in caught.value.hint

    garbled = tmp_path / "garbled.xml"
    garbled.write_text('<testsuites><testsuite name="x"><testcase name="a"></testsuite>')
    with pytest.raises(StageFailed, match="is not valid XML: mismatched tag"):
        parse_junit(garbled)

    foreign = tmp_path / "foreign.xml"
    foreign.write_text("<html><body/></html>")
    with pytest.raises(StageFailed, match="has root <html>, expected <testsuites> or <testsuite>"):
        parse_junit(foreign)


def test_entity_expansion_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        '<testsuite><testcase name="&b;"/></testsuite>'
    )
    with pytest.raises(StageFailed, match="declares DTDs or entities, which are refused"):
        parse_junit(bomb)
