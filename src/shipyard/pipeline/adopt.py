"""A canary stage retried after its driver died: the rollout it began is taken up, not redone.

The rollout is stored with its plan and step, so it survives its driver; beginning a second
one would start a second canary of the same version. The retried stage drives the stored
rollout on from its step (or, when another process already does, waits for its verdict) and
ends as the first attempt would have.
"""

from __future__ import annotations

from contextlib import suppress
from functools import partial

from shipyard.canary import records
from shipyard.canary.rollout import CanaryRollout, RolloutHooks, probe_bodies
from shipyard.errors import Conflict, NotFound
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.pipeline.stages import production
from shipyard.store.models import Rollout

__all__ = ["adopted_rollout"]

POLL_SECONDS = 0.5


def adopted_rollout(ctx: RunContext) -> StageOutcome | None:
    """The outcome of the rollout this run began, driven to its verdict; None if it began none."""
    rollout = _rollout_of(ctx)
    if rollout is None:
        return None
    say = partial(ctx.say, "canary")
    say(f"rollout {rollout.id} of this run is {rollout.status}: taking it up at its step")
    while rollout.status in records.ACTIVE:
        if not records.is_driven(ctx.adapters.leases, rollout.id):
            hooks = RolloutHooks(say=say, wait=ctx.wait, stop_requested=ctx.cancelled)
            bodies = probe_bodies(ctx.config, ctx.code_dir)
            with suppress(Conflict):  # another driver took it first: wait for its verdict
                CanaryRollout(ctx.adapters, ctx.config, rollout, hooks, bodies).run()
        else:
            ctx.wait(POLL_SECONDS)
        rollout = records.find_rollout(ctx.store, ctx.project, production.ENVIRONMENT, rollout.id)
    return production.outcome_of(ctx, rollout)


def _rollout_of(ctx: RunContext) -> Rollout | None:
    if production.ENVIRONMENT not in ctx.config.environments:
        return None
    try:
        newest = records.find_rollout(ctx.store, ctx.project, production.ENVIRONMENT)
    except NotFound:
        return None
    if newest.run_id != ctx.store.get_run(ctx.project, ctx.number).id:
        return None
    # One that was rolled back or aborted ended that attempt: the retry begins a new one.
    return newest if newest.status in (*records.ACTIVE, records.PASSED) else None
