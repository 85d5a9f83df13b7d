"""Stages 9 and 10: the canary in production, then live with an instant rollback kept ready.

With ``canary.approval: manual`` a person (releaser) approves before production changes at
all, so a first release going straight to live waits too.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from shipyard.canary import records
from shipyard.canary.rollout import CanaryRollout, RolloutHooks, probe_bodies
from shipyard.domain import Gate, Role, Status
from shipyard.pipeline import deploy
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.services.approvals import Approvals
from shipyard.store.models import Rollout

ENVIRONMENT = "production"
STAGES = ("canary", "live")  # a run that stops in one of these withdraws its version


def canary(ctx: RunContext) -> StageOutcome:
    if ENVIRONMENT not in ctx.config.environments:
        return StageOutcome.skipped("no `environments.production` in shipyard.yaml")
    stable = deploy.stable(ctx.adapters, ctx.project, ENVIRONMENT)
    if stable is not None and stable.version == ctx.version:
        return StageOutcome.skipped(f"{ctx.version} is already live")
    # Production is about to change (a canary, or a first release going live): ask first.
    held = Approvals(ctx.adapters).gate(ctx, Gate.CANARY)
    if held is not None:
        return held
    if stable is None:
        return StageOutcome.skipped(
            "first release: no live version to judge against, so it goes straight to live"
        )
    if ctx.config.canary is None:
        return StageOutcome.skipped(
            "no `canary:` section: the new version goes live without a canary"
        )
    say = partial(ctx.say, "canary")
    candidate = deploy.start(ctx.adapters, ctx.project, ENVIRONMENT, ctx.version, Role.CANARY, say)
    hooks = RolloutHooks(say=say, wait=ctx.wait, stop_requested=ctx.cancelled)
    run_id = ctx.store.get_run(ctx.project, ctx.number).id
    controller = CanaryRollout.begin(
        ctx.adapters, ctx.config, ENVIRONMENT, stable, candidate, hooks, _probe_bodies(ctx), run_id
    )
    say(f"rollout {controller.rollout.id}: `shipyard rollout status` shows it")
    return outcome_of(ctx, controller.run())


def outcome_of(ctx: RunContext, rollout: Rollout) -> StageOutcome:
    """The canary stage's outcome for a finished rollout; a rollback says why (the failed
    checks' sentences), and so does the notice read from it."""
    stable = rollout.stable_version
    summary = {"rollout": rollout.id, "verdicts": rollout.verdicts, "stable": stable}
    why = records.end_reason(ctx.store, rollout)
    because = f" ({why})" if why else ""
    if rollout.status == records.ABORTED:
        return StageOutcome(Status.CANCELLED, f"aborted{because}; {stable} stays live", summary)
    if rollout.status != records.PASSED:
        return StageOutcome(
            Status.ROLLED_BACK, f"rolled back{because}; {stable} stays live", summary
        )
    return StageOutcome.passed(
        f"passed {len(rollout.verdicts)} judgement(s) against {stable}", **summary
    )


def live(ctx: RunContext) -> StageOutcome:
    if ENVIRONMENT not in ctx.config.environments:
        return StageOutcome.skipped("no `environments.production` in shipyard.yaml")
    say = partial(ctx.say, "live")
    url, previous = deploy.go_live(
        ctx.adapters, ctx.config, ENVIRONMENT, ctx.version, f"live-{ctx.number}", say
    )
    ctx.endpoints[ENVIRONMENT] = url
    kept = f"; {previous} kept ready for `shipyard rollback`" if previous else ""
    say(f"100% of traffic on {ctx.version} at {url}{kept}")
    return StageOutcome.passed(
        f"{ctx.version} live at {url}{kept}", endpoint=url, previous=previous
    )


def _probe_bodies(ctx: RunContext) -> list[dict[str, Any]]:
    return probe_bodies(ctx.config, ctx.code_dir)
