"""Stage 6, staging: migrations, config and the new version running, answering ready."""

from __future__ import annotations

from shipyard.pipeline import deploy
from shipyard.pipeline.context import RunContext, StageOutcome

ENVIRONMENT = "staging"


def staging(ctx: RunContext) -> StageOutcome:
    if ENVIRONMENT not in ctx.config.environments:
        return StageOutcome.skipped("no `environments.staging` in shipyard.yaml")
    previous = deploy.running(ctx.adapters, ctx.project, ENVIRONMENT)
    deployment = deploy.start(
        ctx.adapters,
        ctx.project,
        ENVIRONMENT,
        ctx.version,
        "stable",
        lambda text: ctx.say("staging", text),
    )
    endpoint = deployment.endpoint or ""
    if deploy.gateway_port(ENVIRONMENT, ctx.config.environments[ENVIRONMENT]):
        endpoint = deploy.route(
            ctx.adapters, ctx.config, ENVIRONMENT, [(deployment, 100)], f"run-{ctx.number}"
        )
    else:
        deployment.weight = 100
        ctx.store.save_deployment(deployment, "weighted")
    # Staging runs one version at a time: the one it replaces stops once the new one is ready.
    for old in previous:
        deploy.stop(ctx.adapters, old)
    ctx.endpoints[ENVIRONMENT] = endpoint
    return StageOutcome.passed(
        f"{ctx.version} ready at {endpoint}", endpoint=endpoint, pid=deployment.pid
    )
