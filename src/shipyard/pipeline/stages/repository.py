"""Stages 5 and 8: the artifact into ``dev``, and its promotion into ``release``."""

from __future__ import annotations

from shipyard.artifacts.archive import PackedArtifact
from shipyard.artifacts.local import digest_of
from shipyard.artifacts.repository import promote
from shipyard.artifacts.repository import publish as publish_artifact
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY, Status
from shipyard.errors import StageFailed
from shipyard.pipeline.context import RunContext, StageOutcome

# Promotion to release requires these stages not to have failed (a skipped stage is visible).
RELEASE_GATES = ("test", "analyze", "qa")


def publish(ctx: RunContext) -> StageOutcome:
    if ctx.artifact_path is None:
        raise StageFailed("There is no artifact to publish: the build stage did not produce one.")
    blob = digest_of(ctx.artifact_path)
    packed = PackedArtifact(ctx.artifact_path, blob.digest, blob.size)
    run = ctx.store.get_run(ctx.project, ctx.number)
    reports = {
        name: outcome.summary
        for name, outcome in ctx.results.items()
        if name in ("test", "analyze")
    }
    artifact = publish_artifact(
        ctx.store, ctx.adapters.blobs, packed, {**ctx.build_info, "reports": reports}, run_id=run.id
    )
    ctx.say(
        "publish",
        f"{artifact.name}:{artifact.version} is in `{DEV_REPOSITORY}` as {artifact.digest}",
    )
    return StageOutcome.passed(
        f"{artifact.name}:{artifact.version} in {DEV_REPOSITORY}", digest=artifact.digest
    )


def release(ctx: RunContext) -> StageOutcome:
    blocked = [
        name
        for name in RELEASE_GATES
        if ctx.results.get(name)
        and ctx.results[name].status is not Status.PASSED
        and ctx.results[name].status is not Status.SKIPPED
    ]
    if blocked:
        raise StageFailed(f"Release policy refuses: {', '.join(blocked)} did not pass.")
    gates = ", ".join(
        f"{name} {ctx.results[name].status}" for name in RELEASE_GATES if name in ctx.results
    )
    reason = f"run #{ctx.number}: {gates}"
    ctx.store.update_build_info(
        ctx.project, ctx.version, qa=ctx.results["qa"].summary if "qa" in ctx.results else {}
    )
    added = promote(
        ctx.store,
        ctx.project,
        ctx.version,
        source=DEV_REPOSITORY,
        target=RELEASE_REPOSITORY,
        reason=reason,
    )
    word = "promoted to" if added else "already in"
    ctx.say("release", f"{ctx.project}:{ctx.version} {word} `{RELEASE_REPOSITORY}` ({reason})")
    return StageOutcome.passed(f"{ctx.project}:{ctx.version} {word} {RELEASE_REPOSITORY}")
