"""Stages 3 and 4: the project's unit tests and the code analysis."""

from __future__ import annotations

import shlex

from shipyard.analysis.run import REPORT_FILE, AnalysisInput, run_analysis
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
    ctx.say("analyze", f"checks: {', '.join(config.checks)} (fails on {config.fail_on} and above)")
    given = AnalysisInput(
        root=ctx.code_dir,
        reports_dir=ctx.reports_dir,
        name=ctx.project,
        version=ctx.version,
        python=ctx.env.python if ctx.env is not None else None,
        model_dir=ctx.model_dir if ctx.model_dir.is_dir() else None,
    )
    analysis = run_analysis(given, config, say=lambda text: ctx.say("analyze", text))
    for line in analysis.summary_lines():
        ctx.say("analyze", line)
    if not analysis.passed:
        raise StageFailed(
            analysis.failure_message(),
            hint="Fix them, or allow-list a finding with a reason and an expiry under "
            f"`analyze.allow`; the full report is {ctx.reports_dir / REPORT_FILE}.",
        )
    found = len(analysis.verdict.findings)
    return StageOutcome.passed(f"{found} finding(s), none blocking", **analysis.stage_summary())


def _with_junit(command: str, path: str) -> str:
    """pytest commands get --junitxml so the results can be counted."""
    words = shlex.split(command)
    runs_pytest = words[:1] == ["pytest"] or words[:3] == ["python", "-m", "pytest"]
    return f"{command} --junitxml={shlex.quote(path)}" if runs_pytest else command
