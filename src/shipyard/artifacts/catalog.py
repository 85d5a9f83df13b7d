"""The artifact catalog: repositories, properties, signatures, search, and their rules.

What a policy change means, which property keys are valid, what a signature covers: decided
here. The rows themselves are read and written by the store (``store.catalog``), which writes
each change's audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.artifacts.attestations import Attestation
from shipyard.artifacts.policy import PolicyChange, PromotionPolicy
from shipyard.artifacts.properties import validate_key, validate_value
from shipyard.artifacts.search import VersionFilter
from shipyard.artifacts.signing import SignatureRecord, statement
from shipyard.domain import STAGES
from shipyard.errors import InvalidInput
from shipyard.store.catalog import RUNNING_STATES, CatalogRows
from shipyard.store.models import Artifact, ArtifactRef, Repository, Signature
from shipyard.store.models import Attestation as AttestationRow
from shipyard.store.store import current_actor

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = ["RUNNING_STATES", "Catalog", "Listed"]


@dataclass(frozen=True)
class Listed:
    """An artifact as search and show return it."""

    artifact: Artifact
    repositories: list[str]
    properties: dict[str, str]


class Catalog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows: CatalogRows = store.catalog

    # -- repositories --------------------------------------------------------------------------

    def repositories(self) -> list[Repository]:
        return self.rows.repositories()

    def repository(self, name: str) -> Repository:
        return self.rows.repository(name)

    def create_repository(self, name: str, *, immutable: bool = False) -> Repository:
        return self.rows.create_repository(name, immutable=immutable)

    def policy(self, name: str) -> PromotionPolicy:
        row = self.repository(name)
        return PromotionPolicy(tuple(row.require), tuple(row.allow_skipped))

    def set_policy(self, name: str, change: PolicyChange, reason: str | None) -> Repository:
        """Store a new promotion policy; loosening is recorded under its own action."""
        if change.loosened and not reason:
            raise InvalidInput(
                f"Allowing {', '.join(change.loosened)} to be skipped loosens the {name!r} policy.",
                hint="Say why with --reason; it goes into the audit log.",
            )

        def apply(row: Repository) -> dict[str, Any]:
            row.require = list(change.policy.require)
            row.allow_skipped = list(change.policy.allow_skipped)
            return {
                "require": row.require,
                "allow_skipped": row.allow_skipped,
                "loosened": list(change.loosened),
                "tightened": list(change.tightened),
                "reason": reason,
            }

        action = "repository.policy-loosened" if change.loosened else "repository.policy"
        return self.rows.change_repository(name, action, apply)

    def set_retention(self, name: str, keep_last: int | None, max_age: int | None) -> Repository:
        def apply(row: Repository) -> dict[str, Any]:
            if row.immutable and (keep_last is not None or max_age is not None):
                raise InvalidInput(
                    f"Repository {name!r} is immutable: it keeps every version, so it has no retention.",
                    hint="Retention applies to mutable repositories such as dev.",
                )
            for value, what in ((keep_last, "--keep-last"), (max_age, "--max-age")):
                if value is not None and value < 1:
                    raise InvalidInput(f"{what} must be at least 1.")
            row.keep_last, row.max_age = keep_last, max_age
            return {"keep_last": keep_last, "max_age": max_age}

        return self.rows.change_repository(name, "repository.retention", apply)

    # -- properties ----------------------------------------------------------------------------

    def set_properties(
        self, artifact: Artifact, values: Mapping[str, str], actor: str | None = None
    ) -> None:
        if not values:
            return
        for key, value in values.items():
            validate_value(validate_key(key), value)
        self.rows.set_properties(artifact, values, actor or current_actor())

    def unset_properties(self, artifact: Artifact, keys: Iterable[str]) -> list[str]:
        return self.rows.unset_properties(artifact, sorted(set(keys)))

    def properties(self, artifact: Artifact) -> dict[str, str]:
        return self.rows.properties(artifact.id)

    # -- signatures ----------------------------------------------------------------------------

    def add_signature(self, artifact: Artifact, record: SignatureRecord) -> None:
        self.rows.put_signature(artifact, _signature_row(artifact.id, record))

    def signatures(self, artifact: Artifact) -> list[SignatureRecord]:
        return self.signatures_of([artifact])[artifact.id]

    def signatures_of(self, artifacts: Sequence[Artifact]) -> dict[int, list[SignatureRecord]]:
        """Each artifact's signatures by its id, read at once (a page of search results)."""
        found: dict[int, list[SignatureRecord]] = {a.id: [] for a in artifacts}
        for r in self.rows.signatures([a.id for a in artifacts]):
            found[r.artifact_id].append(
                SignatureRecord(r.algorithm, r.key_id, r.public_key, r.value)
            )
        return found

    # -- attestations --------------------------------------------------------------------------

    def add_attestation(
        self, artifact: Artifact, attestation: Attestation, *, imported: bool
    ) -> None:
        """Store a signed statement; the same subject signed again by the same key replaces it."""
        record = attestation.signature
        row = AttestationRow(
            artifact_id=artifact.id,
            subject=attestation.subject,
            statement=attestation.statement,
            algorithm=record.algorithm,
            key_id=record.key_id,
            public_key=record.public_key,
            value=record.value,
            imported=imported,
            actor=current_actor(),
        )
        self.rows.put_attestation(artifact, row)

    def attestations(self, artifact: Artifact) -> list[Attestation]:
        return [_attestation(row) for row in self.rows.attestations(artifact.id)]

    def own_key_ids(self) -> set[str]:
        """Keys this instance signed with: releases, and attestations it made (not imported)."""
        return self.rows.own_key_ids()

    def re_sign(
        self, old_key: str, sign: Callable[[Artifact, bytes, SignatureRecord], SignatureRecord]
    ) -> int:
        """Replace every signature and own attestation by ``old_key`` with ``sign``'s, atomically.

        ``sign`` gets the artifact, the signed bytes and the old record, checks it and returns
        the new one; an exception from it leaves everything as it was. Audited per artifact.
        """

        def release(artifact: Artifact, row: Signature) -> Signature:
            data = statement(artifact.name, artifact.version, artifact.digest)
            stored = SignatureRecord(row.algorithm, row.key_id, row.public_key, row.value)
            return _signature_row(artifact.id, sign(artifact, data, stored))

        def attested(artifact: Artifact, old: AttestationRow) -> AttestationRow:
            record = sign(artifact, old.statement.encode(), _attestation(old).signature)
            return _attestation_row(old, record)

        return self.rows.replace_key(old_key, release, attested)

    def record_override(
        self, artifact: Artifact, target: str, reason: str, doubts: Mapping[str, str]
    ) -> None:
        """An admin promoted on results that do not verify: its own kind of audit event."""
        self.store.record_event(
            "artifact.promotion-overridden",
            _ref(artifact),
            target=target,
            reason=reason,
            unverified=dict(doubts),
        )

    def record_rotation(self, old_key: str, new_key: str, artifacts: int) -> None:
        self.store.record_event("key.rotated", new_key, old_key=old_key, artifacts=artifacts)

    def immutable_repositories(self, artifact: Artifact) -> list[str]:
        """The immutable repositories holding ``artifact``: its signature must verify to deploy."""
        return self.rows.immutable_repositories(artifact.id)

    # -- what the promotion policy reads -------------------------------------------------------

    def stage_statuses(self, artifact: Artifact) -> tuple[dict[str, str], str]:
        """The stage results ``artifact`` claims, and where they come from.

        An artifact built here has a run: its stage rows are the record. One pushed from
        elsewhere has only the ``<stage>.status`` properties it arrived with. Claims only: the
        promotion policy reads the signed results (:mod:`shipyard.artifacts.attestations`).
        """
        if artifact.run_id is not None:
            number = artifact.build_info.get("run", "?")
            return self.rows.stage_statuses(artifact.run_id), f"run #{number}"
        found = self.properties(artifact)
        statuses = {s: found[f"{s}.status"] for s in STAGES if f"{s}.status" in found}
        return statuses, "imported stage results"

    # -- listing and search --------------------------------------------------------------------

    def search(
        self,
        *,
        name: str | None = None,
        versions: VersionFilter | None = None,
        sha: str | None = None,
        properties: Mapping[str, str] | None = None,
        repository: str | None = None,
    ) -> list[Listed]:
        """Live artifacts matching every filter given, newest first."""
        found = self.rows.search(
            name=name,
            repository=repository,
            properties=properties,
            sha=sha,
            keep=lambda a: versions is None or versions.matches(a.version),
        )
        return [Listed(*entry) for entry in found]

    def describe(self, name: str, version: str) -> Listed:
        return Listed(*self.rows.found(self.store.get_artifact(name, version)))

    # -- what garbage collection reads and changes ---------------------------------------------

    def refs(self, repository: str) -> list[tuple[ArtifactRef, Artifact]]:
        return self.rows.refs(repository)

    def protected(self) -> set[int]:
        """Artifacts gc must never touch: in an immutable repository, or deployed anywhere."""
        return self.rows.protected()

    def remove_ref(self, ref: ArtifactRef, artifact: Artifact, why: str) -> None:
        self.rows.remove_ref(ref, artifact, why)

    def unreferenced(self) -> list[Artifact]:
        """Live artifacts in no repository and not deployed: what gc removes next."""
        return self.rows.unreferenced()

    def mark_deleted(self, artifact: Artifact) -> bool:
        """Tombstone ``artifact`` unless a ref or deployment appeared meanwhile."""
        return self.rows.mark_deleted(artifact)

    def live_digests(self) -> set[str]:
        return self.rows.live_digests()

    def live_artifacts(self) -> list[Artifact]:
        return self.rows.live_artifacts()


def _attestation(row: AttestationRow) -> Attestation:
    record = SignatureRecord(row.algorithm, row.key_id, row.public_key, row.value)
    return Attestation(row.subject, row.statement, record)


def _signature_row(artifact_id: int, record: SignatureRecord) -> Signature:
    return Signature(
        artifact_id=artifact_id,
        algorithm=record.algorithm,
        key_id=record.key_id,
        public_key=record.public_key,
        value=record.value,
        actor=current_actor(),
    )


def _attestation_row(old: AttestationRow, record: SignatureRecord) -> AttestationRow:
    return AttestationRow(
        artifact_id=old.artifact_id,
        subject=old.subject,
        statement=old.statement,
        algorithm=record.algorithm,
        key_id=record.key_id,
        public_key=record.public_key,
        value=record.value,
        imported=False,
        actor=current_actor(),
    )


def _ref(artifact: Artifact) -> str:
    return f"{artifact.name}:{artifact.version}"
