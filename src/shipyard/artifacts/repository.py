"""The artifact repositories: ``dev`` takes every published build, ``release`` what passed QA.

A repository is metadata only: it maps (name, version) to an artifact row, and the artifact
row to a blob digest. Publishing stores the bytes once; promoting adds a row, never copies
bytes. A version names one digest forever (the store refuses a second digest, even after gc),
which is what makes ``release`` immutable.

Promotion applies the target repository's policy (:mod:`shipyard.artifacts.policy`; for
``release``, with the project's own signed statement) to the artifact's stage results, and
promotion into an immutable repository signs the artifact before the ref exists, so a release
ref never appears unsigned. Materializing is the way back to files, and every deployment
goes through it: the signature is verified (for an artifact in an immutable repository), the
blob fetched checking its digest, unpacked, and a marker left recording every file
(:mod:`shipyard.artifacts.deployed`), so the next call for the same digest reuses the tree only
after checking each file against that record.

Names and versions end up in paths (deployment folders, URLs), so they are checked here
against a small documented character set before anything else sees them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts.archive import BUILD_INFO, PackedArtifact, unpack
from shipyard.artifacts.attestations import (
    Evidence,
    evidence,
    own_signer,
    project_statement,
    sign_build,
    sign_result,
)
from shipyard.artifacts.deployed import MARKER, clear_caches, differences, read_marker, write_marker
from shipyard.artifacts.interface import BlobError, BlobStore, SignatureError
from shipyard.artifacts.policy import Decision, PromotionPolicy, decide, effective_policy
from shipyard.artifacts.signing import KeyFile, Signer, key_id, verify
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY
from shipyard.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:  # the store pulls in SQLAlchemy; readers of artifacts need not
    from shipyard.artifacts.catalog import Catalog
    from shipyard.store.models import Artifact
    from shipyard.store.store import Store

NAME_RULE = "1 to 63 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
VERSION_RULE = (
    "1 to 128 characters from A-Z, a-z, 0-9, '.', '_', '+' and '-', starting with a letter or digit"
)
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
log = logging.getLogger(__name__)


def _validate(value: object, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise InvalidInput(
            f"Invalid {what} {value!r}.",
            hint=f"A {what} is {rule}, with no '..'.",
        )
    return value


def validate_name(name: str) -> str:
    """``name`` when it is a valid artifact or repository name, else InvalidInput."""
    return _validate(name, _NAME, "name", NAME_RULE)


def validate_version(version: str) -> str:
    """``version`` when it is a valid artifact version, else InvalidInput."""
    return _validate(version, _VERSION, "version", VERSION_RULE)


def _name_and_version(build_info: Mapping[str, Any]) -> tuple[str, str]:
    missing = [key for key in ("name", "version") if key not in build_info]
    if missing:
        raise InvalidInput(f"build-info has no {' or '.join(missing)}; the builder must set both.")
    return validate_name(build_info["name"]), validate_version(build_info["version"])


def publish(
    store: Store,
    blobs: BlobStore,
    packed: PackedArtifact,
    build_info: Mapping[str, Any],
    *,
    run_id: int | None,
    keys: KeyFile | None = None,
    results: Mapping[str, Mapping[str, str]] | None = None,
) -> Artifact:
    """Store the archive's bytes and put ``name:version`` into the ``dev`` repository.

    With ``keys`` (the pipeline's case) the build is signed, and so is each stage result in
    ``results`` (stage -> the ``<stage>.*`` properties it set, which are set with it).
    """
    from shipyard.artifacts.catalog import Catalog

    signer = own_signer(Catalog(store), keys) if keys is not None else None
    name, version = _name_and_version(build_info)
    blob = blobs.put(packed.path)
    if blob.digest != packed.digest:
        raise BlobError(
            f"{packed.path} changed after packing: its digest is {blob.digest},"
            f" not {packed.digest}.",
            hint="Something wrote to the archive; build again.",
        )
    artifact = store.add_artifact(name, version, blob.digest, blob.size, dict(build_info), run_id)
    if signer is not None:
        sign_build(Catalog(store), artifact, signer)
        for stage, properties in (results or {}).items():
            _record(store, artifact, stage, properties, signer)
    store.add_ref(DEV_REPOSITORY, artifact)
    return artifact


def record_result(
    store: Store, artifact: Artifact, stage: str, properties: Mapping[str, str], keys: KeyFile
) -> None:
    """Set a stage's ``<stage>.*`` properties on ``artifact`` and sign them as its result."""
    from shipyard.artifacts.catalog import Catalog

    _record(store, artifact, stage, properties, own_signer(Catalog(store), keys))


def _record(
    store: Store, artifact: Artifact, stage: str, properties: Mapping[str, str], signer: Signer
) -> None:
    from shipyard.artifacts.catalog import Catalog

    catalog = Catalog(store)
    catalog.set_properties(artifact, properties, f"{stage} stage")
    sign_result(catalog, artifact, stage, properties, signer)


@dataclass(frozen=True)
class PromotionResult:
    ref: str  # NAME:VERSION
    target: str
    promoted: bool  # a ref was added (with ``dry_run``: would be)
    already: bool  # it was in the target before
    decision: Decision
    signed_by: str | None = None  # the key that signed it now, if it did


def promote(
    store: Store,
    name: str,
    version: str,
    *,
    source: str = DEV_REPOSITORY,
    target: str = RELEASE_REPOSITORY,
    reason: str | None = None,
    dry_run: bool = False,
    keys: KeyFile | None = None,
    override: bool = False,
) -> PromotionResult:
    """Add ``name:version`` from ``source`` to ``target`` if the target's policy allows it.

    The policy reads only stage results whose attestation verifies with a trusted key
    (:mod:`shipyard.artifacts.attestations`). ``override`` (an admin's call, with a ``reason``,
    audited as ``artifact.promotion-overridden``) lets the claimed results stand in for
    results that do not verify; the policy still applies to them.

    Metadata only: the blob is shared. An immutable target signs with ``keys`` first. With
    ``dry_run`` nothing changes and the result says what a real call would do. A refusal
    raises Conflict naming each stage that did not pass.
    """
    from shipyard.artifacts.catalog import Catalog

    _check_promotion(name, version, source, target)
    catalog = Catalog(store)
    catalog.repository(source)
    repository = catalog.repository(target)
    if not store.in_repository(source, name, version):
        raise NotFound(
            f"{name}:{version} is not in the {source!r} repository.",
            hint=f"`shipyard artifacts --repository {source}` lists what it holds.",
        )
    artifact = store.get_artifact(name, version)
    if repository.immutable and keys is None:
        raise _no_key(artifact)
    # A lost key is refused before anything else: the results it signed would not verify.
    signer = own_signer(catalog, keys) if repository.immutable and keys and not dry_run else None
    policy = _policy_for(catalog, artifact, target, keys)
    found = evidence(catalog, artifact, policy.require, keys)
    statuses = _overridden(catalog, artifact, found, reason) if override else found.statuses
    decision = decide(policy, statuses, found.source)
    already = store.in_repository(target, name, version)
    result = PromotionResult(
        f"{name}:{version}", target, not already and decision.allowed, already, decision
    )
    if dry_run:
        return result
    if not decision.allowed:
        raise _refusal(catalog, artifact, policy, result, found)
    signed_by = _sign(catalog, artifact, signer) if signer is not None else None
    if already or not store.add_ref(target, artifact):
        return PromotionResult(result.ref, target, False, True, decision, signed_by)
    if override and found.doubts:
        catalog.record_override(artifact, target, reason or "", found.doubts)
    why = f"{reason or 'promotion'} ({decision.summary()})"
    store.record_promotion(artifact, source, target, why)
    return PromotionResult(result.ref, target, True, False, decision, signed_by)


def _policy_for(
    catalog: Catalog, artifact: Artifact, target: str, keys: KeyFile | None
) -> PromotionPolicy:
    """The target's policy; for ``release``, with the project's signed statement applied."""
    policy = catalog.policy(target)
    if target != RELEASE_REPOSITORY:
        return policy
    return effective_policy(policy, project_statement(catalog, artifact, keys))


def _overridden(
    catalog: Catalog, artifact: Artifact, found: Evidence, reason: str | None
) -> dict[str, str]:
    """An admin's override: the claimed statuses stand in for those that do not verify."""
    if not (reason or "").strip():
        raise InvalidInput(
            "--override promotes on results that do not verify; say why with --reason.",
            hint="The reason goes into the audit log with the override.",
        )
    return _claimed(catalog, artifact, found)


def _claimed(catalog: Catalog, artifact: Artifact, found: Evidence) -> dict[str, str]:
    """The verified statuses, with the claimed ones where a result does not verify."""
    claimed, _ = catalog.stage_statuses(artifact)
    doubted = {stage: claimed.get(stage, "unknown") for stage in found.doubts}
    return {**found.statuses, **doubted}


def _refusal(
    catalog: Catalog,
    artifact: Artifact,
    policy: PromotionPolicy,
    result: PromotionResult,
    found: Evidence,
) -> Conflict:
    """Name what really stops it: a claimed failure first, else the results that do not verify."""
    if not found.doubts:
        return _refused(result)
    claimed = decide(policy, _claimed(catalog, artifact, found), found.source)
    if claimed.allowed:
        return _untrusted(result, found)
    return _refused(replace(result, decision=claimed), trust_hint(result.ref))


def trust_hint(ref: str) -> str:
    return (
        "Run it through this Shipyard's pipeline, or trust the key of the Shipyard that built it"
        " (`shipyard artifacts key trust FILE`). An admin can promote it anyway with"
        f' `shipyard promote {ref} --override --reason "..."`, recorded in the audit log as'
        " artifact.promotion-overridden."
    )


def _untrusted(result: PromotionResult, found: Evidence) -> Conflict:
    why = "; ".join(f"{stage}: {doubt}" for stage, doubt in found.doubts.items())
    return Conflict(
        f"The {result.target!r} policy refuses {result.ref}: its"
        f" {', '.join(found.doubts)} result(s) are not signed by a key this Shipyard trusts"
        f" ({why}). A claimed result is not evidence.",
        hint=trust_hint(result.ref),
    )


def _refused(result: PromotionResult, hint_instead: str | None = None) -> Conflict:
    failing = ", ".join(f"{c.stage} {c.status}" for c in result.decision.refused)
    skipped = [c.stage for c in result.decision.refused if c.status == "skipped"]
    hint = (
        _skipped_hint(result, skipped)
        if skipped
        else hint_instead or "Fix what failed and run the pipeline again."
    )
    return Conflict(
        f"The {result.target!r} policy refuses {result.ref}: {failing}"
        f" ({result.decision.evidence}; required to pass: "
        f"{', '.join(c.stage for c in result.decision.checks)}).",
        hint=hint,
    )


def _skipped_hint(result: PromotionResult, skipped: list[str]) -> str:
    loosen = (
        f"`shipyard artifacts policy {result.target} --allow-skipped {','.join(skipped)}"
        ' --reason "..."`'
    )
    if result.target != RELEASE_REPOSITORY:
        return (
            "A skipped stage counts as not passed. If"
            f" {result.target!r} may take it anyway, say so: {loosen}."
        )
    kept = [c.stage for c in result.decision.checks if c.stage not in skipped]
    return (
        f"A skipped stage counts as not passed. A project that has no {' or '.join(skipped)}"
        f" says so in its own shipyard.yaml: `release: {{requires: [{', '.join(kept)}]}}`"
        f" (for its artifacts only); to let every project skip it: {loosen}."
    )


def _sign(catalog: Catalog, artifact: Artifact, signer: Signer) -> str | None:
    """Sign for an immutable repository; None when the current key had signed it already."""
    if any(s.key_id == signer.key_id for s in catalog.signatures(artifact)):
        return None
    catalog.add_signature(artifact, signer.sign(artifact.name, artifact.version, artifact.digest))
    return signer.key_id


def _no_key(artifact: Artifact) -> InvalidInput:
    return InvalidInput(
        f"Promoting {artifact.name}:{artifact.version} into an immutable repository signs it,"
        " and no signing key was given.",
        hint="Pass the state directory's key (KeyFile.resolve).",
    )


def _check_promotion(name: str, version: str, source: str, target: str) -> None:
    validate_name(name)
    validate_version(version)
    for repository in (source, target):
        _validate(repository, _NAME, "repository name", NAME_RULE)
    if source == target:
        raise InvalidInput(f"Cannot promote from {source!r} to itself; name another target.")


def materialize(
    store: Store, blobs: BlobStore, name: str, version: str, dest: Path, *, keys: KeyFile
) -> dict[str, Any]:
    """Files of ``name:version`` in ``dest`` (signature and digest verified), and its build-info.

    ``dest`` is reused when its marker says it holds an unpack of the same digest and every file
    still matches the marker's record; otherwise it is replaced as a whole, never left
    half-written. Signature or digest trouble raises (SignatureError, BlobError) naming the
    artifact, and ``dest`` is left as it was; so does an unsafe archive (InvalidInput).
    """
    artifact = store.get_artifact(validate_name(name), validate_version(version))
    verify_signature(store, artifact, keys)
    dest = Path(dest)
    if _verified(dest, artifact.digest, f"{name}:{version}"):
        return _read_build_info(dest)
    _check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as work:
        staging = Path(work) / "tree"
        try:
            blobs.fetch(artifact.digest, Path(work) / "artifact.tar.gz")
        except BlobError as exc:
            raise BlobError(
                f"{name}:{version} cannot be deployed: {exc.message}", hint=exc.hint
            ) from None
        build_info = unpack(Path(work) / "artifact.tar.gz", staging)
        write_marker(staging, artifact.digest)
        _swap_in(staging, dest, Path(work) / "old", artifact.digest)
    return build_info


def verify_signature(store: Store, artifact: Artifact, keys: KeyFile) -> None:
    """For an artifact in an immutable repository: SignatureError unless its signature verifies."""
    from shipyard.artifacts.catalog import Catalog

    catalog = Catalog(store)
    repositories = catalog.immutable_repositories(artifact)
    if not repositories:
        return  # dev artifacts are checked by digest only; they were never signed
    ref = f"{artifact.name}:{artifact.version}"
    try:
        trusted = keys.trusted()
        records = catalog.signatures(artifact)
        mine = next((r for r in records if r.key_id == key_id(trusted)), None)
        verify(
            mine or next(iter(records), None),
            trusted,
            artifact.name,
            artifact.version,
            artifact.digest,
        )
    except SignatureError as exc:
        raise SignatureError(
            f"{ref} cannot be deployed from {repositories[0]!r}: {exc.message}.", hint=exc.hint
        ) from None


def _holds(dest: Path, digest: str) -> bool:
    record = read_marker(dest)
    return record is not None and record.digest == digest


def _verified(dest: Path, digest: str, ref: str) -> bool:
    """True when ``dest`` holds exactly what ``digest`` unpacked to; says what changed if not."""
    record = read_marker(dest)
    if record is None or record.digest != digest:
        return False
    clear_caches(dest)
    changed = differences(dest, record)
    if changed:
        shown = "; ".join(changed[:5]) + ("; ..." if len(changed) > 5 else "")
        log.warning("%s: %s since it was unpacked; unpacking %s again", dest, shown, ref)
    return not changed


def _read_build_info(tree: Path) -> dict[str, Any]:
    with open(tree / BUILD_INFO, encoding="utf-8") as stream:
        value: dict[str, Any] = json.load(stream)
    return value


def _check_replaceable(dest: Path) -> None:
    """Only a tree this module wrote (it has a marker) or an empty folder may be replaced."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise InvalidInput(f"Cannot materialize into {dest}: it is not a folder.")
    if dest.is_dir() and not (dest / MARKER).is_file() and any(dest.iterdir()):
        raise InvalidInput(
            f"Cannot materialize into {dest}: it holds files that did not come from an artifact.",
            hint="Name an empty or new folder.",
        )


def _swap_in(staging: Path, dest: Path, trash: Path, digest: str) -> None:
    """Replace ``dest`` by ``staging``; the old tree goes to ``trash`` (deleted by the caller)."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(dest, trash)
    try:
        os.replace(staging, dest)
    except OSError:
        # Another process materialized the same version meanwhile; its tree is as good as ours.
        if not _holds(dest, digest):
            raise
