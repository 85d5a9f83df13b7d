"""Stages 3 and 4: the project's unit tests and the code analysis."""

from __future__ import annotations

import json
import shlex
from datetime import date

from shipyard.analysis.bandit import scan_code
from shipyard.errors import StageFailed
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.qa.junit import parse_junit


def test(ctx: RunContext) -> StageOutcome:
    config = ctx.config.test
    if config is None:
        return StageOutcome.skipped("no `test:` section in shipyard.yaml")
    junit = ctx.reports_dir / "junit.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    command = _with_junit(config.run, junit.as_posix())
    result = ctx.run_command("test", command, timeout=config.timeout)
    if not junit.is_file():
        if result.exit_code != 0:
            raise StageFailed(
                f"The test command exited with {result.exit_code}.",
                hint="See `shipyard logs` for its output.",
            )
        return StageOutcome.passed("tests passed (no JUnit report: not a pytest command)")
    summary = parse_junit(junit)
    counts = f"{summary.passed} passed, {summary.failed + summary.errors} failed, {summary.skipped} skipped"
    if result.exit_code != 0 or summary.failed or summary.errors:
        first = f": {summary.failures[0]}" if summary.failures else ""
        raise StageFailed(
            f"Unit tests failed ({counts}){first}", hint="See `shipyard logs RUN test`."
        )
    return StageOutcome.passed(counts, **summary.to_dict())


def analyze(ctx: RunContext) -> StageOutcome:
    config = ctx.config.analyze
    if config is None:
        return StageOutcome.skipped("no `analyze:` section in shipyard.yaml")
    ctx.say(
        "analyze", f"bandit over {', '.join(config.paths)} (fails on {config.fail_on} and above)"
    )
    report = scan_code(ctx.code_dir, config, today=date.today())
    (ctx.reports_dir / "analyze.json").write_text(json.dumps(report.to_dict(), indent=2))
    for line in report.summary().splitlines():
        ctx.say("analyze", line)
    if not report.passed:
        raise StageFailed(
            f"Code analysis found {len(report.blocking)} blocking finding(s) and {len(report.expired)} expired allow entries.",
            hint="Fix them, or allow-list one with a reason and an expiry under `analyze.allow`.",
        )
    return StageOutcome.passed(
        f"{len(report.findings)} finding(s), none blocking",
        findings=len(report.findings),
        allowed=len(report.allowed),
    )


def _with_junit(command: str, path: str) -> str:
    """pytest commands get --junitxml so the results can be counted."""
    words = shlex.split(command)
    runs_pytest = words[:1] == ["pytest"] or words[:3] == ["python", "-m", "pytest"]
    return f"{command} --junitxml={shlex.quote(path)}" if runs_pytest else command
