"""Stages 5 and 8: the artifact into ``dev``, and its promotion into ``release``.

Both record what the run learnt as artifact properties (``git.sha``, ``test.passed``,
``analyze.findings``, ``qa.accuracy``, ``<stage>.status``), so `shipyard artifacts search` can
find builds by them and they travel with a pulled artifact. Publish signs the build and the
results of test and analyze, release signs qa's as it records them
(:mod:`shipyard.artifacts.attestations`), all with the state directory's key. The release
decision itself is the ``release`` repository's policy with the project's own statement
(``release.requires``; :func:`shipyard.artifacts.policy.effective_policy`), applied by
``promote`` to the results whose signatures verify. The statement travels in the build-info
(:func:`release_statement`) and in the signed build statement, so a later `shipyard promote`
applies it too. With ``release.approval: manual`` a person (qa) approves first
(:mod:`shipyard.services.approvals`).
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.analysis.sbom import SBOM_FILE
from shipyard.artifacts.archive import PackedArtifact
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.local import digest_of
from shipyard.artifacts.policy import RELEASE_GATES, stated
from shipyard.artifacts.properties import flatten, stage_properties
from shipyard.artifacts.repository import promote, record_result
from shipyard.artifacts.repository import publish as publish_artifact
from shipyard.artifacts.signing import KeyFile
from shipyard.config.schema import ProjectConfig
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY, Gate
from shipyard.errors import StageFailed
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.services.approvals import Approvals

__all__ = ["RELEASE_GATES", "publish", "release", "release_statement"]


def release_statement(config: ProjectConfig) -> dict[str, Any]:
    """The build-info's ``release`` entry, when the project states its own requirements:
    ``{"release": {"requires": [analyze], "waived": [test, qa]}}``."""
    requires = config.release.requires if config.release is not None else None
    if requires is None:
        return {}
    return {"release": stated(requires, config.configured_stages()).to_dict()}


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
    build_info = {**ctx.build_info, "reports": reports, **_sbom(ctx)}
    artifact = publish_artifact(
        ctx.store,
        ctx.adapters.blobs,
        packed,
        build_info,
        run_id=run.id,
        keys=KeyFile.resolve(ctx.state.signing_key),
        results=_results(ctx),
    )
    Catalog(ctx.store).set_properties(artifact, _build_properties(ctx))
    ctx.say(
        "publish",
        f"{artifact.name}:{artifact.version} is in `{DEV_REPOSITORY}` as {artifact.digest}",
    )
    return StageOutcome.passed(
        f"{artifact.name}:{artifact.version} in {DEV_REPOSITORY}", digest=artifact.digest
    )


def _sbom(ctx: RunContext) -> dict[str, Any]:
    """The analyze stage's CycloneDX SBOM of the build environment, kept with the build-info."""
    path = ctx.reports_dir / SBOM_FILE
    if not path.is_file():
        return {}
    return {"sbom": json.loads(path.read_text(encoding="utf-8"))}


def _build_properties(ctx: RunContext) -> dict[str, str]:
    found = {"git.sha": ctx.sha, "build.run": str(ctx.number)}
    if ctx.ref:
        found["git.ref"] = ctx.ref
    return found


def _results(ctx: RunContext) -> dict[str, dict[str, str]]:
    """Test's and analyze's results, set as properties and signed with the build."""
    return {
        stage: stage_properties(stage, outcome.status.value, outcome.summary)
        for stage in ("test", "analyze")
        if (outcome := ctx.results.get(stage)) is not None
    }


def release(ctx: RunContext) -> StageOutcome:
    artifact = ctx.store.get_artifact(ctx.project, ctx.version)
    keys = KeyFile.resolve(ctx.state.signing_key)
    qa = ctx.results.get("qa")
    if qa is not None:  # recorded before the gate, so whoever approves sees qa's results
        properties = _qa_properties(qa.status.value, qa.summary)
        record_result(ctx.store, artifact, "qa", properties, keys)
        ctx.store.update_build_info(ctx.project, ctx.version, qa=qa.summary)
    held = Approvals(ctx.adapters).gate(ctx, Gate.RELEASE)
    if held is not None:
        return held
    result = promote(
        ctx.store,
        ctx.project,
        ctx.version,
        source=DEV_REPOSITORY,
        target=RELEASE_REPOSITORY,
        reason=f"run #{ctx.number}",
        keys=keys,
    )
    word = "promoted to" if result.promoted else "already in"
    signed = f", signed by {result.signed_by}" if result.signed_by else ""
    ctx.say(
        "release",
        f"{result.ref} {word} `{RELEASE_REPOSITORY}` ({result.decision.summary()}){signed}",
    )
    return StageOutcome.passed(
        f"{result.ref} {word} {RELEASE_REPOSITORY}",
        policy=result.decision.summary(),
        signed_by=result.signed_by,
    )


def _qa_properties(status: str, summary: dict[str, Any]) -> dict[str, str]:
    found = stage_properties("qa", status, summary)
    quality = summary.get("quality")
    if isinstance(quality, dict) and isinstance(quality.get("metrics"), dict):
        found.update(flatten("qa", quality["metrics"]))  # the brief name: qa.accuracy
    return found
