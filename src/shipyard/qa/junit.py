"""JUnit XML reports: the common tongue of test runners, read into one summary.

pytest, unittest runners, Maven and most CI tools write JUnit XML; reading it, rather than a
runner's exit code, tells the user *which* tests failed and why. The file comes from the
project's own command, so it is parsed with defusedxml: an entity bomb in a test report must
not take the pipeline down.

Counts come from the ``<testcase>`` elements themselves, not the suites' attributes, because
some writers leave those out and nested suites would count twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse

from shipyard.errors import StageFailed

__all__ = ["JUnitSummary", "parse_junit"]

_SUITE_TAGS = {"testsuites", "testsuite"}


@dataclass(frozen=True)
class JUnitSummary:
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int
    failures: list[str] = field(
        default_factory=list
    )  # "classname::name: message", failed and errored

    def to_dict(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "failures": list(self.failures),
        }


def parse_junit(path: Path) -> JUnitSummary:
    """Summarise a JUnit XML file whose root is ``<testsuites>`` or ``<testsuite>``."""
    root = _read_root(path)
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: list[str] = []
    cases = list(root.iter("testcase"))
    for case in cases:
        outcome, problem = _outcome(case)
        counts[outcome] += 1
        if problem is not None:
            failures.append(f"{_case_id(case)}: {_message(problem)}")
    return JUnitSummary(tests=len(cases), failures=failures, **counts)


def _read_root(path: Path) -> Element:
    if not path.is_file():
        raise StageFailed(
            f"no JUnit report at {path}",
            hint="The test command must write JUnit XML there (pytest: --junitxml=PATH).",
        )
    try:
        root: Element = parse(path).getroot()
    except ParseError as error:
        raise StageFailed(f"the JUnit report {path} is not valid XML: {error}") from error
    except DefusedXmlException as error:
        raise StageFailed(
            f"the JUnit report {path} declares DTDs or entities, which are refused: {error!r}"
        ) from error
    if root.tag not in _SUITE_TAGS:
        raise StageFailed(
            f"the JUnit report {path} has root <{root.tag}>, expected <testsuites> or <testsuite>"
        )
    return root


def _outcome(case: Element) -> tuple[str, Element | None]:
    """passed/failed/errors/skipped, and the element that explains a failure or error."""
    for tag, outcome in (("failure", "failed"), ("error", "errors")):
        problem = case.find(tag)
        if problem is not None:
            return outcome, problem
    if case.find("skipped") is not None:
        return "skipped", None
    return "passed", None


def _case_id(case: Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "?")
    return f"{classname}::{name}" if classname else name


def _message(problem: Element) -> str:
    text = problem.get("message") or problem.text or problem.get("type") or "(no message)"
    lines = text.strip().splitlines()
    return lines[0] if lines else "(no message)"
