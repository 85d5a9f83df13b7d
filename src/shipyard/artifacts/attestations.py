"""Attestations: what this Shipyard vouches for about an artifact, signed, and what counts of it.

Two kinds of statement, both canonical JSON naming the artifact's name, version and digest:

- the build (``shipyard.build.v1``): this instance's pipeline built these bytes. Signed at
  publish; it is what lets pickle-based models load (:func:`may_load_pickle`). It carries the
  project's release statement (``release``: the stages it requires and those it states it
  does not have) when its ``shipyard.yaml`` made one; only a verified one counts
  (:func:`project_statement`).
- a stage result (``shipyard.stage-result.v1``): test, analyze or qa ended with this status and
  these figures, exactly the ``<stage>.*`` properties the stage set. Test and analyze run before
  the artifact exists, so their results are signed at publish over its digest; qa's when the
  release stage records it.

A statement counts only when its signature verifies with a trusted key (this instance's key,
plus the public keys a team lists in ``<state>/keys/trusted``), it names this artifact's digest,
and the artifact's ``<stage>.*`` properties still equal the signed ones. Nothing in the store is
trusted on its own word: whoever can edit the database or a manifest can change a status or a
figure, but cannot make it verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shipyard.artifacts.interface import SignatureError
from shipyard.artifacts.policy import ProjectStatement
from shipyard.artifacts.signing import (
    KeyFile,
    SignatureRecord,
    Signer,
    canonical,
    public_key_of,
    verifies,
)
from shipyard.domain import Status

if TYPE_CHECKING:
    from shipyard.artifacts.catalog import Catalog
    from shipyard.store.models import Artifact

BUILD = "build"
BUILD_TYPE = "shipyard.build.v1"
RESULT_TYPE = "shipyard.stage-result.v1"
ATTESTED_STAGES: tuple[str, ...] = ("test", "analyze", "qa")
# Vouched for by the build signature: the pipeline that built and published the bytes.
BUILD_STAGES: tuple[str, ...] = ("build", "publish")
UNVERIFIED = "unverified"  # the status the policy sees for a result that does not count


@dataclass(frozen=True)
class Attestation:
    subject: str  # "build", or the stage whose result it is
    statement: str  # the exact signed text
    signature: SignatureRecord

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "statement": self.statement,
            "signature": self.signature.__dict__,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attestation:
        return cls(
            str(data["subject"]), str(data["statement"]), SignatureRecord(**data["signature"])
        )

    def fields(self) -> dict[str, Any]:
        value = json.loads(self.statement)
        if not isinstance(value, dict):
            raise ValueError("a statement is a JSON object")
        return value


def build_statement(artifact: Artifact) -> str:
    stated = (artifact.build_info or {}).get("release")
    extra = {"release": stated} if stated is not None else {}
    return canonical({"type": BUILD_TYPE, **_identity(artifact), **extra}).decode()


def result_statement(artifact: Artifact, stage: str, properties: Mapping[str, str]) -> str:
    fields = {"type": RESULT_TYPE, **_identity(artifact), "stage": stage}
    return canonical({**fields, "properties": dict(properties)}).decode()


def _identity(artifact: Artifact) -> dict[str, str]:
    return {"name": artifact.name, "version": artifact.version, "digest": artifact.digest}


def own_signer(catalog: Catalog, keys: KeyFile) -> Signer:
    """This instance's signer; refused while signatures by a key that is missing exist."""
    return keys.signer(in_use=catalog.own_key_ids())


def sign_build(catalog: Catalog, artifact: Artifact, signer: Signer) -> None:
    _add(catalog, artifact, BUILD, build_statement(artifact), signer)


def sign_result(
    catalog: Catalog, artifact: Artifact, stage: str, properties: Mapping[str, str], signer: Signer
) -> None:
    _add(catalog, artifact, stage, result_statement(artifact, stage, properties), signer)


def _add(catalog: Catalog, artifact: Artifact, subject: str, text: str, signer: Signer) -> None:
    record = signer.sign_bytes(text.encode())
    catalog.add_attestation(artifact, Attestation(subject, text, record), imported=False)


def check_carried(attestation: Attestation, name: str, version: str, digest: str) -> None:
    """SignatureError unless a manifest's attestation verifies with its own key, for this digest.

    That proves the manifest was not edited; whether its signer is trusted is decided later.
    """
    try:
        fields = attestation.fields()
    except ValueError:
        raise SignatureError(f"its {attestation.subject} statement is not JSON") from None
    if (fields.get("name"), fields.get("version"), fields.get("digest")) != (
        name,
        version,
        digest,
    ):
        raise SignatureError(f"its {attestation.subject} statement is about another artifact")
    if not _about(attestation.subject, fields):
        raise SignatureError(f"its {attestation.subject} statement is about something else")
    public = public_key_of(attestation.signature)
    if not verifies(attestation.signature, public, attestation.statement.encode()):
        raise SignatureError(f"its {attestation.subject} statement does not match its signature")


def verified(
    attestation: Attestation, artifact: Artifact, trusted: Mapping[str, Ed25519PublicKey]
) -> bool:
    """Whether ``attestation`` verifies with a trusted key and is about ``artifact``."""
    return _verified(attestation, artifact, trusted) is not None


def _verified(
    attestation: Attestation, artifact: Artifact, trusted: Mapping[str, Ed25519PublicKey]
) -> dict[str, Any] | None:
    """The statement's fields, if it verifies with a trusted key and names this artifact."""
    public = trusted.get(attestation.signature.key_id)
    if public is None or not verifies(
        attestation.signature, public, attestation.statement.encode()
    ):
        return None
    try:
        fields = attestation.fields()
    except ValueError:
        return None
    names_it = fields.items() >= _identity(artifact).items()
    return fields if names_it and _about(attestation.subject, fields) else None


def _about(subject: str, fields: Mapping[str, Any]) -> bool:
    """Whether the signed statement is the kind its (unsigned) subject label says."""
    if subject == BUILD:
        return fields.get("type") == BUILD_TYPE
    return fields.get("type") == RESULT_TYPE and fields.get("stage") == subject


@dataclass(frozen=True)
class Evidence:
    """What the promotion policy may read: verified results only, and why the others do not count."""

    statuses: dict[str, str]
    source: str
    doubts: dict[str, str]  # stage -> why its claimed result does not count


def evidence(
    catalog: Catalog, artifact: Artifact, stages: Iterable[str], keys: KeyFile | None
) -> Evidence:
    trusted = keys.trusted_keys() if keys is not None else {}
    found = catalog.attestations(artifact)
    properties = catalog.properties(artifact)
    claimed, source = catalog.stage_statuses(artifact)
    statuses: dict[str, str] = {}
    doubts: dict[str, str] = {}
    vouched = _built(found, artifact, trusted)
    for stage in stages:
        if stage in ATTESTED_STAGES:
            status, doubt = _result(stage, found, artifact, trusted, properties)
        elif vouched:
            status, doubt = claimed.get(stage, "unknown"), None
            if stage in BUILD_STAGES:
                status = Status.PASSED.value
        else:
            status, doubt = UNVERIFIED, "no build signature by a trusted key vouches for it"
        statuses[stage] = status
        if doubt:
            doubts[stage] = doubt
    return Evidence(statuses, source, doubts)


def _result(
    stage: str,
    found: list[Attestation],
    artifact: Artifact,
    trusted: Mapping[str, Ed25519PublicKey],
    properties: Mapping[str, str],
) -> tuple[str, str | None]:
    mine = [a for a in found if a.subject == stage]
    for attestation in reversed(mine):
        fields = _verified(attestation, artifact, trusted)
        if fields is None:
            continue
        signed: dict[str, str] = dict(fields.get("properties") or {})
        edited = _edited(stage, signed, properties)
        if edited:
            return UNVERIFIED, f"{edited} (signed by {attestation.signature.key_id})"
        return signed.get(f"{stage}.status", "unknown"), None
    if not mine:
        return UNVERIFIED, "no signed result"
    keys = ", ".join(sorted({a.signature.key_id for a in mine}))
    return UNVERIFIED, f"signed by {keys}, which does not verify with any key this Shipyard trusts"


def _edited(stage: str, signed: Mapping[str, str], properties: Mapping[str, str]) -> str | None:
    """A sentence about the first ``<stage>.*`` property that differs from the signed result."""
    prefix = f"{stage}."
    shown = {k: v for k, v in properties.items() if k.startswith(prefix)}
    for key in sorted(set(shown) | set(signed)):
        if shown.get(key) != signed.get(key):
            return (
                f"{key} is {shown.get(key, 'missing')!r} here but the signed {stage} result"
                f" says {signed.get(key, 'nothing')!r}: it was changed after {stage} recorded it"
            )
    return None


def project_statement(
    catalog: Catalog, artifact: Artifact, keys: KeyFile | None
) -> ProjectStatement | None:
    """The release statement of a build signature that verifies; None when there is none.

    The build-info row says the same, but a row can be edited: only the signed text counts.
    """
    trusted = keys.trusted_keys() if keys is not None else {}
    for attestation in reversed(catalog.attestations(artifact)):
        if attestation.subject != BUILD:
            continue
        fields = _verified(attestation, artifact, trusted)
        if fields is not None:
            return ProjectStatement.from_dict(fields.get("release"))
    return None


def may_load_pickle(catalog: Catalog, artifact: Artifact, keys: KeyFile) -> bool:
    """Unpickling runs code: only a build of a trusted pipeline whose model scan passed may."""
    trusted = keys.trusted_keys()
    found = catalog.attestations(artifact)
    return _built(found, artifact, trusted) and any(
        _scan_passed(a, artifact, trusted) for a in found
    )


def _built(
    found: Iterable[Attestation], artifact: Artifact, trusted: Mapping[str, Ed25519PublicKey]
) -> bool:
    """Whether a trusted pipeline signed that it built these bytes."""
    return any(a.subject == BUILD and _verified(a, artifact, trusted) is not None for a in found)


def _scan_passed(
    attestation: Attestation, artifact: Artifact, trusted: Mapping[str, Ed25519PublicKey]
) -> bool:
    if attestation.subject != "analyze":
        return False
    fields = _verified(attestation, artifact, trusted)
    signed = (fields or {}).get("properties") or {}
    # The models check ran (its counts exist) and blocked nothing; analyze as a whole passed.
    return (
        signed.get("analyze.status") == Status.PASSED.value
        and signed.get("analyze.counts.model.blocking") == "0"
    )
