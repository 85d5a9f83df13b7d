"""Stages 9 and 10: the canary in production, then live with an instant rollback kept ready."""

from __future__ import annotations

from functools import partial
from typing import Any

from shipyard.canary.rollout import CanaryRollout, RolloutHooks
from shipyard.domain import Status
from shipyard.pipeline import deploy
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.qa.load import rows_to_bodies
from shipyard.qa.quality import load_records
from shipyard.store.models import Deployment

ENVIRONMENT = "production"


def canary(ctx: RunContext) -> StageOutcome:
    if ENVIRONMENT not in ctx.config.environments:
        return StageOutcome.skipped("no `environments.production` in shipyard.yaml")
    stable = deploy.stable(ctx.adapters, ctx.project, ENVIRONMENT)
    if stable is None:
        return StageOutcome.skipped(
            "first release: no live version to judge against, so it goes straight to live"
        )
    if stable.version == ctx.version:
        return StageOutcome.skipped(f"{ctx.version} is already live")
    if ctx.config.canary is None:
        return StageOutcome.skipped(
            "no `canary:` section: the new version goes live without a canary"
        )
    say = partial(ctx.say, "canary")
    candidate = deploy.start(ctx.adapters, ctx.project, ENVIRONMENT, ctx.version, "canary", say)
    hooks = RolloutHooks(say=say, wait=ctx.wait, stop_requested=ctx.cancelled)
    run_id = ctx.store.get_run(ctx.project, ctx.number).id
    controller = CanaryRollout(
        ctx.adapters, ctx.config, ENVIRONMENT, stable, candidate, hooks, _probe_bodies(ctx), run_id
    )
    rollout = controller.run()
    summary = {"rollout": rollout.id, "verdicts": rollout.verdicts, "stable": stable.version}
    if rollout.status == Status.ROLLED_BACK.value:
        return StageOutcome(
            Status.ROLLED_BACK, f"rolled back; {stable.version} stays live", summary
        )
    return StageOutcome.passed(
        f"passed {len(rollout.verdicts)} judgement(s) against {stable.version}", **summary
    )


def live(ctx: RunContext) -> StageOutcome:
    if ENVIRONMENT not in ctx.config.environments:
        return StageOutcome.skipped("no `environments.production` in shipyard.yaml")
    say = partial(ctx.say, "live")
    deployments = deploy.running(ctx.adapters, ctx.project, ENVIRONMENT)
    new = next((d for d in deployments if d.version == ctx.version), None)
    if new is None:
        new = deploy.start(ctx.adapters, ctx.project, ENVIRONMENT, ctx.version, "stable", say)
    others = [d for d in deployments if d.id != new.id]
    url = deploy.route(
        ctx.adapters,
        ctx.config,
        ENVIRONMENT,
        [(new, 100), *((d, 0) for d in others)],
        f"live-{ctx.number}",
    )
    new.role = "stable"
    ctx.store.save_deployment(new, "live")
    previous = _keep_one_standby(ctx, others)
    ctx.endpoints[ENVIRONMENT] = url
    kept = f"; {previous} kept ready for `shipyard rollback`" if previous else ""
    say(f"100% of traffic on {ctx.version} at {url}{kept}")
    return StageOutcome.passed(
        f"{ctx.version} live at {url}{kept}", endpoint=url, previous=previous
    )


def _keep_one_standby(ctx: RunContext, others: list[Deployment]) -> str | None:
    """The version that was stable stays running for an instant rollback; older ones stop."""
    previous = next((d for d in others if d.role == "stable"), None)
    for deployment in others:
        if deployment is previous:
            deployment.role = "standby"
            ctx.store.save_deployment(deployment, "standby")
        else:
            deploy.stop(ctx.adapters, deployment)
    return previous.version if previous else None


def _probe_bodies(ctx: RunContext) -> list[dict[str, Any]]:
    """Requests for the canary's probe traffic: rows of its data file, label column dropped."""
    settings, quality = ctx.config.canary, ctx.config.qa.quality if ctx.config.qa else None
    if settings is None or settings.traffic is None:
        return []
    data = settings.traffic.data or (quality.data if quality else None)
    if data is None:
        return []
    rows = load_records(ctx.code_dir / data)
    label = quality.label if quality else None
    return rows_to_bodies([{k: v for k, v in row.items() if k != label} for row in rows])
