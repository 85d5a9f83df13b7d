"""Static analysis of the project's code with bandit, judged by the project's policy.

bandit runs as a subprocess of this interpreter (it is one of Shipyard's dependencies), never
imported: its plugins and logging configuration stay out of our process, and a crash in it is
its own exit code, not ours. bandit exits 1 whenever it finds something; that is a finding,
not a failed scan.

Shipyard picks the files itself and hands bandit the list: bandit's ``-x`` matches paths as
it spells them (``./tests/x.py``), so ``exclude: [tests]`` would silently scan ``tests`` when
the target is ``.``. Here an exclude entry is a path relative to the project root (or a glob).

The policy: a finding whose severity is at or above ``fail_on`` blocks the stage unless its
test id (``B105``) is allow-listed. An allow entry may carry an ``until`` date; once past it,
the entry is itself a failure, so that exceptions get looked at again instead of living
forever. Only bandit ids (``B`` and digits) are this scanner's; advisory ids in the same list
belong to the vulnerability scanner.

:class:`CodeScanner` is the same scan as one of the analyze stage's scanners: its findings go
to ``policy.py`` with every other kind's, which applies the allow list to all of them at once.
``analyze.confidence`` drops findings bandit is less sure of, in both.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from shipyard.analysis import interface
from shipyard.analysis.interface import SEVERITIES, ScanResult, Target, rank
from shipyard.config.schema import AllowEntry, AnalyzeConfig
from shipyard.errors import InvalidInput, StageFailed, StageTimeout

__all__ = ["SEVERITIES", "AnalysisReport", "CodeScanner", "Finding", "scan_code"]

BANDIT_ID = re.compile(r"^B\d+$")
# Never project code: version control, caches, virtualenvs (bandit skips most of these too).
_SKIPPED_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".tox",
    ".nox",
    ".eggs",
    ".venv",
    "node_modules",
}


@dataclass(frozen=True)
class Finding:
    test_id: str  # B105
    test_name: str  # hardcoded_password_string
    severity: str  # low, medium, high
    confidence: str
    file: str  # relative to the project root, with /
    line: int
    text: str

    def describe(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{self.test_id} {self.test_name} ({self.severity}) at {where}: {self.text}"


@dataclass(frozen=True)
class AnalysisReport:
    findings: list[Finding]  # everything bandit found
    blocking: list[Finding]  # at or above fail_on and not allow-listed
    allowed: list[Finding]  # matched by an allow entry still in force
    expired: list[str]  # one sentence per allow entry past its date
    scan_errors: list[str] = field(default_factory=list)  # files bandit could not read

    @property
    def passed(self) -> bool:
        return not self.blocking and not self.expired

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "findings": [asdict(finding) for finding in self.findings],
            "blocking": [asdict(finding) for finding in self.blocking],
            "allowed": [asdict(finding) for finding in self.allowed],
            "expired": list(self.expired),
            "scan_errors": list(self.scan_errors),
        }

    def summary(self) -> str:
        head = (
            f"bandit: {len(self.findings)} findings, {len(self.blocking)} blocking, "
            f"{len(self.allowed)} allowed, {len(self.expired)} expired allow entries"
        )
        lines = [head, *(f"  blocking: {f.describe()}" for f in self.blocking)]
        lines += [f"  {sentence}" for sentence in self.expired]
        lines += [f"  not scanned: {error}" for error in self.scan_errors]
        return "\n".join(lines)


def scan_code(root: Path, config: AnalyzeConfig, *, today: date | None = None) -> AnalysisReport:
    """Run bandit over ``config.paths`` (less ``config.exclude``) and apply the policy."""
    findings, errors, _ = _scan(root, config)
    return judge(findings, config, today or date.today(), errors)


def _scan(root: Path, config: AnalyzeConfig) -> tuple[list[Finding], list[str], int]:
    root = root.resolve()
    files = python_files(root, config.paths, config.exclude)
    output = _run_bandit(root, files, config.timeout) if files else {"results": [], "errors": []}
    floor = SEVERITIES.index(config.confidence)
    findings = [
        finding
        for finding in (_finding(result, root) for result in output.get("results", []))
        # "low" keeps everything, bandit's UNDEFINED confidence included.
        if floor == 0 or rank(finding.confidence) >= floor
    ]
    errors = [
        f"{_relative(e.get('filename', '?'), root)}: {e.get('reason', '?')}"
        for e in output.get("errors", [])
    ]
    return findings, errors, len(files)


class CodeScanner:
    """bandit over ``config.paths`` as one scanner of the analyze stage."""

    kind = "code"

    def __init__(self, config: AnalyzeConfig) -> None:
        self.config = config

    def scan(self, target: Target) -> ScanResult:
        findings, errors, files = _scan(target.root, self.config)
        scope = f"{files} Python files (confidence {self.config.confidence} and above)"
        notes = [f"not scanned: {error}" for error in errors]
        return ScanResult(self.kind, [_unified(f) for f in findings], scope, notes)


def _unified(finding: Finding) -> interface.Finding:
    return interface.Finding(
        kind="code",
        id=finding.test_id,
        severity=finding.severity,
        title=f"{finding.test_name}: {finding.text}",
        location=f"{finding.file}:{finding.line}",
        aliases=(f"{finding.test_id}:{finding.file}",),
        fix="change the code, or allow-list the test id with a reason",
        file=finding.file,
        line=finding.line,
        details={"confidence": finding.confidence, "test_name": finding.test_name},
    )


def judge(
    findings: list[Finding], config: AnalyzeConfig, today: date, errors: list[str]
) -> AnalysisReport:
    """Sort findings into blocking and allowed by the severity threshold and the allow list."""
    entries = [entry for entry in config.allow if BANDIT_ID.match(entry.id)]
    in_force = {entry.id for entry in entries if not _expired(entry, today)}
    threshold = SEVERITIES.index(config.fail_on)
    allowed = [f for f in findings if f.test_id in in_force]
    blocking = [f for f in findings if f.test_id not in in_force and rank(f.severity) >= threshold]
    expired = [
        f"allow entry {entry.id} expired on {entry.until}: renew it or fix the finding"
        for entry in entries
        if _expired(entry, today)
    ]
    return AnalysisReport(
        findings=findings, blocking=blocking, allowed=allowed, expired=expired, scan_errors=errors
    )


def _expired(entry: AllowEntry, today: date) -> bool:
    # The entry holds through its `until` day; it is expired from the day after.
    return entry.until is not None and date.fromisoformat(entry.until) < today


# --- which files ----------------------------------------------------------------------------


def python_files(root: Path, paths: list[str], exclude: list[str]) -> list[str]:
    """The ``*.py`` files under ``paths`` (relative to root, with /), less the excluded ones."""
    found: dict[str, None] = {}  # ordered and without duplicates when paths overlap
    for entry in paths:
        target = (root / entry).resolve()
        if not target.exists():
            raise InvalidInput(
                f"analyze path {entry!r} does not exist in the project",
                hint="Fix `analyze.paths` in shipyard.yaml.",
            )
        if not target.is_relative_to(root):
            raise InvalidInput(f"analyze path {entry!r} is outside the project")
        candidates = [target] if target.is_file() else sorted(target.rglob("*.py"))
        for path in candidates:
            relative = path.relative_to(root).as_posix()
            if not _skipped(relative, exclude):
                found[relative] = None
    return list(found)


def _skipped(relative: str, exclude: list[str]) -> bool:
    parts = relative.split("/")
    if any(part in _SKIPPED_DIRS for part in parts[:-1]):
        return True
    for pattern in (entry.strip("/").removeprefix("./") for entry in exclude):
        if (
            relative == pattern
            or relative.startswith(pattern + "/")
            or fnmatch.fnmatch(relative, pattern)
        ):
            return True
    return False


# --- running bandit -------------------------------------------------------------------------


def _run_bandit(root: Path, files: list[str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shipyard-bandit-") as scratch:
        report = Path(scratch) / "bandit.json"
        # -o: the report goes to a file, so nothing bandit prints can corrupt the JSON.
        # --: a file named like an option (-h.py) is still a file.
        options = ["-r", "-f", "json", "-q", "-o", str(report)]
        command = [sys.executable, "-m", "bandit", *options, "--", *files]
        try:
            done = subprocess.run(
                command, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise StageTimeout(
                f"bandit did not finish within {timeout:g}s",
                hint="Raise `analyze.timeout` or narrow `analyze.paths`.",
            ) from error
        return _read_report(report, done)


def _read_report(report: Path, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    # 0: nothing found, 1: findings. Anything else, or no readable report, is a crash.
    if done.returncode in (0, 1) and report.is_file():
        try:
            output: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
            return output
        except ValueError:
            pass
    stderr = done.stderr.strip()[-2000:] or "(no output)"
    raise StageFailed(f"bandit crashed (exit code {done.returncode}): {stderr}")


def _finding(result: dict[str, Any], root: Path) -> Finding:
    return Finding(
        test_id=str(result.get("test_id", "")),
        test_name=str(result.get("test_name", "")),
        severity=str(result.get("issue_severity", "")).lower(),
        confidence=str(result.get("issue_confidence", "")).lower(),
        file=_relative(str(result.get("filename", "")), root),
        line=int(result.get("line_number", 0)),
        text=str(result.get("issue_text", "")),
    )


def _relative(filename: str, root: Path) -> str:
    path = (root / filename).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else filename
