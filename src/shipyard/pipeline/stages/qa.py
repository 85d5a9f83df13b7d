"""Stage 7, qa: functional tests, a bounded load, performance and model quality gates."""

from __future__ import annotations

import json
from typing import Any

from shipyard.errors import StageFailed
from shipyard.paths import project_file
from shipyard.pipeline import deploy
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.qa.load import rows_to_bodies, run_load
from shipyard.qa.quality import compare_with_production, evaluate_quality, load_rows

STAGE = "qa"


def qa(ctx: RunContext) -> StageOutcome:
    config = ctx.config.qa
    if config is None:
        return StageOutcome.skipped("no `qa:` section in shipyard.yaml")
    endpoint = ctx.endpoints.get("staging")
    if endpoint is None:
        raise StageFailed(
            "QA needs the staging endpoint, and staging did not deploy.",
            hint="Configure environments.staging.",
        )
    failures: list[str] = []
    summary: dict[str, Any] = {}
    if config.functional:
        summary["functional"] = _functional(
            ctx, config.functional, endpoint, config.timeout, failures
        )
    if config.load:
        summary["load"] = _load(ctx, endpoint, failures)
    if config.quality:
        summary["quality"] = _quality(ctx, endpoint, failures)
    (ctx.reports_dir / "qa.json").write_text(json.dumps(summary, indent=2, default=str))
    if failures:
        raise StageFailed("QA gates failed: " + "; ".join(failures))
    return StageOutcome.passed(
        ", ".join(f"{gate} ok" for gate in summary) or "nothing to check", **summary
    )


def _functional(
    ctx: RunContext, command: str, endpoint: str, timeout: float, failures: list[str]
) -> dict[str, Any]:
    result = ctx.run_command(
        STAGE,
        command,
        timeout=timeout,
        env={"SHIPYARD_ENDPOINT": endpoint, "SHIPYARD_ENVIRONMENT": "staging"},
    )
    if result.exit_code != 0:
        failures.append(f"functional tests exited with {result.exit_code}")
    return {"exit_code": result.exit_code, "seconds": round(result.duration, 2)}


def _load(ctx: RunContext, endpoint: str, failures: list[str]) -> dict[str, Any]:
    assert ctx.config.qa and ctx.config.qa.load
    load, performance = ctx.config.qa.load, ctx.config.qa.performance
    bodies = _request_bodies(ctx)
    ctx.say(
        STAGE,
        f"load: {load.rate:g} req/s for {load.duration:g}s, {load.concurrency} at a time, against {endpoint}",
    )
    report = run_load(
        endpoint, bodies, rate=load.rate, duration=load.duration, concurrency=load.concurrency
    )
    ctx.say(STAGE, f"load: {report.summary()}")
    if report.error_rate > load.max_error_rate:
        failures.append(
            f"load error rate {report.error_rate:.2%} is above {load.max_error_rate:.2%}"
        )
    if performance and performance.p95_ms and report.p95_ms > performance.p95_ms:
        failures.append(f"p95 {report.p95_ms:.1f} ms is above {performance.p95_ms:g} ms")
    if performance and performance.p99_ms and report.p99_ms > performance.p99_ms:
        failures.append(f"p99 {report.p99_ms:.1f} ms is above {performance.p99_ms:g} ms")
    result = report.to_dict()
    result.pop("per_version", None)
    return result


def _quality(ctx: RunContext, endpoint: str, failures: list[str]) -> dict[str, Any]:
    assert ctx.config.qa and ctx.config.qa.quality
    quality = ctx.config.qa.quality
    project_file(ctx.code_dir, quality.data)  # a symlink must not lead out
    report = evaluate_quality(endpoint, quality, ctx.code_dir)
    ctx.say(
        STAGE,
        "quality: " + ", ".join(f"{name} {value:.4f}" for name, value in report.metrics.items()),
    )
    failures.extend(report.failures)
    result: dict[str, Any] = report.to_dict()
    production = (
        deploy.stable(ctx.adapters, ctx.project, "production")
        if "production" in ctx.config.environments
        else None
    )
    if quality.vs_production and production and production.endpoint:
        live = evaluate_quality(production.endpoint, quality, ctx.code_dir)
        ctx.say(
            STAGE,
            f"quality vs production {production.version}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in live.metrics.items()),
        )
        failures.extend(compare_with_production(report, live, quality.vs_production))
        result["production"] = {"version": production.version, "metrics": live.metrics}
    return result


def _request_bodies(ctx: RunContext) -> list[dict[str, Any]]:
    """Load requests made from the holdout data, or the model's input example."""
    assert ctx.config.qa
    quality = ctx.config.qa.quality
    if quality:
        rows, _labels = load_rows(project_file(ctx.code_dir, quality.data), quality.label)
        return rows_to_bodies(rows)
    example = ctx.model_dir / "input_example.json"
    if example.is_file():
        return rows_to_bodies(json.loads(example.read_text()))
    raise StageFailed(
        "The load test needs request data.",
        hint="Configure qa.quality.data or write input_example.json into the model folder.",
    )
