"""The artifact catalog over the metadata store: repositories, properties, signatures, search.

One class over :class:`~shipyard.store.Store` sessions. As everywhere in the store, each change
writes its audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, delete, exists, select
from sqlalchemy.orm import Session

from shipyard.artifacts.attestations import Attestation
from shipyard.artifacts.policy import PolicyChange, PromotionPolicy
from shipyard.artifacts.properties import validate_key, validate_value
from shipyard.artifacts.search import VersionFilter
from shipyard.artifacts.signing import SignatureRecord, statement
from shipyard.domain import STAGES
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.store.models import (
    Artifact,
    ArtifactProperty,
    ArtifactRef,
    Deployment,
    Repository,
    Signature,
    StageRun,
    utcnow,
)
from shipyard.store.models import Attestation as AttestationRow
from shipyard.store.store import current_actor

if TYPE_CHECKING:
    from shipyard.store.store import Store

RUNNING_STATES = ("starting", "ready")


@dataclass(frozen=True)
class Listed:
    """An artifact as search and show return it."""

    artifact: Artifact
    repositories: list[str]
    properties: dict[str, str]


class Catalog:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- repositories --------------------------------------------------------------------------

    def repositories(self) -> list[Repository]:
        with self.store.session() as s:
            return list(s.scalars(select(Repository).order_by(Repository.id)))

    def repository(self, name: str) -> Repository:
        with self.store.session() as s:
            return _repository(s, name)

    def create_repository(self, name: str, *, immutable: bool = False) -> Repository:
        with self.store.session() as s:
            if s.scalar(select(Repository).where(Repository.name == name)) is not None:
                raise Conflict(f"Repository {name!r} already exists.")
            row = Repository(name=name, immutable=immutable, require=[], allow_skipped=[])
            s.add(row)
            self.store.record(s, "repository.created", name, immutable=immutable)
            return row

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
        with self.store.session() as s:
            row = _repository(s, name)
            row.require = list(change.policy.require)
            row.allow_skipped = list(change.policy.allow_skipped)
            action = "repository.policy-loosened" if change.loosened else "repository.policy"
            self.store.record(
                s,
                action,
                name,
                require=row.require,
                allow_skipped=row.allow_skipped,
                loosened=list(change.loosened),
                tightened=list(change.tightened),
                reason=reason,
            )
            return row

    def set_retention(self, name: str, keep_last: int | None, max_age: int | None) -> Repository:
        with self.store.session() as s:
            row = _repository(s, name)
            if row.immutable and (keep_last is not None or max_age is not None):
                raise InvalidInput(
                    f"Repository {name!r} is immutable: it keeps every version, so it has no retention.",
                    hint="Retention applies to mutable repositories such as dev.",
                )
            for value, what in ((keep_last, "--keep-last"), (max_age, "--max-age")):
                if value is not None and value < 1:
                    raise InvalidInput(f"{what} must be at least 1.")
            row.keep_last, row.max_age = keep_last, max_age
            self.store.record(s, "repository.retention", name, keep_last=keep_last, max_age=max_age)
            return row

    # -- properties ----------------------------------------------------------------------------

    def set_properties(
        self, artifact: Artifact, values: Mapping[str, str], actor: str | None = None
    ) -> None:
        if not values:
            return
        actor = actor or current_actor()
        with self.store.session() as s:
            current = {p.key: p for p in s.scalars(_properties_of(artifact.id))}
            for key, value in values.items():
                validate_value(validate_key(key), value)
                row = current.get(key)
                if row is None:
                    s.add(
                        ArtifactProperty(artifact_id=artifact.id, key=key, value=value, actor=actor)
                    )
                elif row.value != value:
                    row.value, row.actor = value, actor
            self.store.record(
                s, "artifact.properties", _ref(artifact), actor, set=dict(sorted(values.items()))
            )

    def unset_properties(self, artifact: Artifact, keys: Iterable[str]) -> list[str]:
        keys = sorted(set(keys))
        with self.store.session() as s:
            removed = s.execute(
                delete(ArtifactProperty)
                .where(ArtifactProperty.artifact_id == artifact.id, ArtifactProperty.key.in_(keys))
                .returning(ArtifactProperty.key)
            ).scalars()
            gone = sorted(removed)
            if gone:
                self.store.record(s, "artifact.properties", _ref(artifact), unset=gone)
            return gone

    def properties(self, artifact: Artifact) -> dict[str, str]:
        with self.store.session() as s:
            return {p.key: p.value for p in s.scalars(_properties_of(artifact.id))}

    # -- signatures ----------------------------------------------------------------------------

    def add_signature(self, artifact: Artifact, record: SignatureRecord) -> None:
        with self.store.session() as s:
            query = select(Signature).where(
                Signature.artifact_id == artifact.id, Signature.key_id == record.key_id
            )
            row = s.scalar(query)
            if row is None:
                row = Signature(artifact_id=artifact.id, key_id=record.key_id)
                s.add(row)
            row.algorithm, row.public_key, row.value = (
                record.algorithm,
                record.public_key,
                record.value,
            )
            row.actor = current_actor()
            self.store.record(s, "artifact.signed", _ref(artifact), key=record.key_id)

    def signatures(self, artifact: Artifact) -> list[SignatureRecord]:
        with self.store.session() as s:
            rows = s.scalars(
                select(Signature).where(Signature.artifact_id == artifact.id).order_by(Signature.id)
            )
            return [SignatureRecord(r.algorithm, r.key_id, r.public_key, r.value) for r in rows]

    # -- attestations --------------------------------------------------------------------------

    def add_attestation(
        self, artifact: Artifact, attestation: Attestation, *, imported: bool
    ) -> None:
        """Store a signed statement; the same subject signed again by the same key replaces it."""
        record = attestation.signature
        with self.store.session() as s:
            query = select(AttestationRow).where(
                AttestationRow.artifact_id == artifact.id,
                AttestationRow.subject == attestation.subject,
                AttestationRow.key_id == record.key_id,
            )
            row = s.scalar(query)
            if row is None:
                row = AttestationRow(
                    artifact_id=artifact.id,
                    subject=attestation.subject,
                    key_id=record.key_id,
                    imported=imported,
                )
                s.add(row)
            row.statement, row.algorithm = attestation.statement, record.algorithm
            row.public_key, row.value = record.public_key, record.value
            row.actor = current_actor()
            self.store.record(
                s,
                "artifact.attested",
                _ref(artifact),
                about=attestation.subject,
                key=record.key_id,
                imported=row.imported,
            )

    def attestations(self, artifact: Artifact) -> list[Attestation]:
        with self.store.session() as s:
            rows = s.scalars(
                select(AttestationRow)
                .where(AttestationRow.artifact_id == artifact.id)
                .order_by(AttestationRow.id)
            )
            return [_attestation(row) for row in rows]

    def own_key_ids(self) -> set[str]:
        """Keys this instance signed with: releases, and attestations it made (not imported)."""
        with self.store.session() as s:
            released = s.scalars(select(Signature.key_id).distinct())
            attested = s.scalars(
                select(AttestationRow.key_id).where(AttestationRow.imported.is_(False)).distinct()
            )
            return set(released) | set(attested)

    def re_sign(
        self, old_key: str, sign: Callable[[Artifact, bytes, SignatureRecord], SignatureRecord]
    ) -> int:
        """Replace every signature and own attestation by ``old_key`` with ``sign``'s, atomically.

        ``sign`` gets the artifact, the signed bytes and the old record, checks it and returns
        the new one; an exception from it leaves everything as it was. Audited per artifact.
        """
        done: dict[int, list[str]] = {}
        with self.store.session() as s:
            for row in s.scalars(select(Signature).where(Signature.key_id == old_key)).all():
                artifact = s.get_one(Artifact, row.artifact_id)
                data = statement(artifact.name, artifact.version, artifact.digest)
                stored = SignatureRecord(row.algorithm, row.key_id, row.public_key, row.value)
                s.add(_signature_row(artifact.id, sign(artifact, data, stored)))
                s.delete(row)
                done.setdefault(artifact.id, []).append("release")
            own = select(AttestationRow).where(
                AttestationRow.key_id == old_key, AttestationRow.imported.is_(False)
            )
            for old in s.scalars(own).all():
                artifact = s.get_one(Artifact, old.artifact_id)
                record = sign(artifact, old.statement.encode(), _attestation(old).signature)
                s.add(_attestation_row(old, record))
                s.delete(old)
                done.setdefault(artifact.id, []).append(old.subject)
            s.flush()
            for artifact_id, subjects in done.items():
                artifact = s.get_one(Artifact, artifact_id)
                self.store.record(
                    s, "artifact.re-signed", _ref(artifact), old_key=old_key, signed=subjects
                )
        return len(done)

    def record_override(
        self, artifact: Artifact, target: str, reason: str, doubts: Mapping[str, str]
    ) -> None:
        """An admin promoted on results that do not verify: its own kind of audit event."""
        with self.store.session() as s:
            self.store.record(
                s,
                "artifact.promotion-overridden",
                _ref(artifact),
                target=target,
                reason=reason,
                unverified=dict(doubts),
            )

    def record_rotation(self, old_key: str, new_key: str, artifacts: int) -> None:
        with self.store.session() as s:
            self.store.record(s, "key.rotated", new_key, old_key=old_key, artifacts=artifacts)

    def immutable_repositories(self, artifact: Artifact) -> list[str]:
        """The immutable repositories holding ``artifact``: its signature must verify to deploy."""
        with self.store.session() as s:
            query = (
                select(Repository.name)
                .join(ArtifactRef, ArtifactRef.repository == Repository.name)
                .where(ArtifactRef.artifact_id == artifact.id, Repository.immutable.is_(True))
            )
            return sorted(s.scalars(query))

    # -- what the promotion policy reads -------------------------------------------------------

    def stage_statuses(self, artifact: Artifact) -> tuple[dict[str, str], str]:
        """The stage results ``artifact`` claims, and where they come from.

        An artifact built here has a run: its stage rows are the record. One pushed from
        elsewhere has only the ``<stage>.status`` properties it arrived with. Claims only: the
        promotion policy reads the signed results (:mod:`shipyard.artifacts.attestations`).
        """
        if artifact.run_id is not None:
            with self.store.session() as s:
                rows = s.scalars(select(StageRun).where(StageRun.run_id == artifact.run_id))
                statuses = {row.name: row.status for row in rows}
                number = artifact.build_info.get("run", "?")
            return statuses, f"run #{number}"
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
        query = select(Artifact).where(Artifact.deleted_at.is_(None))
        if name:
            query = query.where(Artifact.name == name)
        if repository:
            query = query.where(
                exists().where(
                    ArtifactRef.artifact_id == Artifact.id, ArtifactRef.repository == repository
                )
            )
        conditions = dict(properties or {})
        for key, value in conditions.items():
            query = query.where(_has_property(key, value))
        if sha:
            query = query.where(_has_property("git.sha", sha, prefix=True))
        query = query.order_by(Artifact.created_at.desc(), Artifact.id.desc())
        with self.store.session() as s:
            found = [a for a in s.scalars(query) if versions is None or versions.matches(a.version)]
            return [self._listed(s, artifact) for artifact in found]

    def describe(self, name: str, version: str) -> Listed:
        artifact = self.store.get_artifact(name, version)
        with self.store.session() as s:
            return self._listed(s, artifact)

    @staticmethod
    def _listed(s: Session, artifact: Artifact) -> Listed:
        repos = s.scalars(
            select(ArtifactRef.repository).where(ArtifactRef.artifact_id == artifact.id)
        )
        props = {p.key: p.value for p in s.scalars(_properties_of(artifact.id))}
        return Listed(artifact, sorted(repos), props)

    # -- what garbage collection reads and changes ---------------------------------------------

    def refs(self, repository: str) -> list[tuple[ArtifactRef, Artifact]]:
        with self.store.session() as s:
            query = (
                select(ArtifactRef, Artifact)
                .join(Artifact, ArtifactRef.artifact_id == Artifact.id)
                .where(ArtifactRef.repository == repository)
                .order_by(Artifact.created_at.desc(), Artifact.id.desc())
            )
            return [(ref, artifact) for ref, artifact in s.execute(query)]

    def protected(self) -> set[int]:
        """Artifacts gc must never touch: in an immutable repository, or deployed anywhere."""
        with self.store.session() as s:
            immutable = select(Repository.name).where(Repository.immutable.is_(True))
            kept = s.scalars(
                select(ArtifactRef.artifact_id).where(ArtifactRef.repository.in_(immutable))
            )
            deployed = s.scalars(
                select(Deployment.artifact_id).where(Deployment.state.in_(RUNNING_STATES))
            )
            return set(kept) | set(deployed)

    def remove_ref(self, ref: ArtifactRef, artifact: Artifact, why: str) -> None:
        with self.store.session() as s:
            s.execute(delete(ArtifactRef).where(ArtifactRef.id == ref.id))
            self.store.record(
                s, "artifact.expired", _ref(artifact), repository=ref.repository, why=why
            )

    def unreferenced(self) -> list[Artifact]:
        """Live artifacts in no repository and not deployed: what gc removes next."""
        with self.store.session() as s:
            in_repo = select(ArtifactRef.artifact_id)
            deployed = select(Deployment.artifact_id).where(Deployment.state.in_(RUNNING_STATES))
            query = select(Artifact).where(
                Artifact.deleted_at.is_(None),
                Artifact.id.not_in(in_repo),
                Artifact.id.not_in(deployed),
            )
            return list(s.scalars(query.order_by(Artifact.id)))

    def mark_deleted(self, artifact: Artifact) -> bool:
        """Tombstone ``artifact`` unless a ref or deployment appeared meanwhile."""
        with self.store.session() as s:
            row = s.get(Artifact, artifact.id)
            busy = s.scalar(select(ArtifactRef.id).where(ArtifactRef.artifact_id == artifact.id))
            deployed = s.scalar(
                select(Deployment.id).where(
                    Deployment.artifact_id == artifact.id, Deployment.state.in_(RUNNING_STATES)
                )
            )
            if row is None or row.deleted_at is not None or busy or deployed:
                return False
            row.deleted_at = utcnow()
            self.store.record(s, "artifact.deleted", _ref(artifact), digest=artifact.digest)
            return True

    def live_digests(self) -> set[str]:
        with self.store.session() as s:
            return set(s.scalars(select(Artifact.digest).where(Artifact.deleted_at.is_(None))))

    def live_artifacts(self) -> list[Artifact]:
        with self.store.session() as s:
            query = select(Artifact).where(Artifact.deleted_at.is_(None)).order_by(Artifact.id)
            return list(s.scalars(query))


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


def _repository(s: Session, name: str) -> Repository:
    row = s.scalar(select(Repository).where(Repository.name == name))
    if row is None:
        names = ", ".join(s.scalars(select(Repository.name).order_by(Repository.id)))
        raise NotFound(
            f"There is no repository {name!r} (there are: {names}).",
            hint="`shipyard artifacts repos` lists them; `shipyard artifacts create-repo` adds one.",
        )
    return row


def _properties_of(artifact_id: int) -> Select[ArtifactProperty]:
    return (
        select(ArtifactProperty)
        .where(ArtifactProperty.artifact_id == artifact_id)
        .order_by(ArtifactProperty.key)
    )


def _has_property(key: str, value: str, *, prefix: bool = False) -> ColumnElement[bool]:
    match = (
        ArtifactProperty.value.startswith(value, autoescape=True)
        if prefix
        else ArtifactProperty.value == value
    )
    return exists().where(
        ArtifactProperty.artifact_id == Artifact.id, ArtifactProperty.key == key, match
    )


def _ref(artifact: Artifact) -> str:
    return f"{artifact.name}:{artifact.version}"
