"""Stage 6, staging: migrations, config and the new version running, answering ready."""

from __future__ import annotations

from shipyard.pipeline import deploy
from shipyard.pipeline.context import RunContext, StageOutcome

ENVIRONMENT = "staging"


def staging(ctx: RunContext) -> StageOutcome:
    if ENVIRONMENT not in ctx.config.environments:
        return StageOutcome.skipped("no `environments.staging` in shipyard.yaml")
    endpoint, _ = deploy.go_live(
        ctx.adapters,
        ctx.config,
        ENVIRONMENT,
        ctx.version,
        f"run-{ctx.number}",
        lambda text: ctx.say("staging", text),
    )
    ctx.endpoints[ENVIRONMENT] = endpoint
    return StageOutcome.passed(f"{ctx.version} ready at {endpoint}", endpoint=endpoint)
