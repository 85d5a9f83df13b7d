"""The artifact catalog's rows: repositories, properties, signatures, attestations, refs.

Reached as ``store.catalog``; the rules (what a policy change means, which keys are valid,
what a signature covers) live in artifacts/catalog.py, which calls these. Each change writes
its audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, delete, exists, select
from sqlalchemy.orm import Session

from shipyard.errors import Conflict, NotFound
from shipyard.store.models import (
    Artifact,
    ArtifactProperty,
    ArtifactRef,
    Attestation,
    Deployment,
    Repository,
    Signature,
    StageRun,
    utcnow,
)

if TYPE_CHECKING:
    from shipyard.store.store import Store

__all__ = ["RUNNING_STATES", "CatalogRows", "Found"]

RUNNING_STATES = ("starting", "ready")
BATCH = 500  # ids per IN (...) query: well under SQLite's limit on bound parameters

# An artifact as search returns it: the row, its repositories, its properties.
Found = tuple[Artifact, list[str], dict[str, str]]


class CatalogRows:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- repositories --------------------------------------------------------------------------

    def repositories(self) -> list[Repository]:
        with self.store.session() as s:
            return list(s.scalars(select(Repository).order_by(Repository.id)))

    def repository(self, name: str) -> Repository:
        with self.store.session() as s:
            return _repository(s, name)

    def create_repository(self, name: str, *, immutable: bool) -> Repository:
        with self.store.session() as s:
            if s.scalar(select(Repository).where(Repository.name == name)) is not None:
                raise Conflict(f"Repository {name!r} already exists.")
            row = Repository(name=name, immutable=immutable, require=[], allow_skipped=[])
            s.add(row)
            self.store.record(s, "repository.created", name, immutable=immutable)
            return row

    def change_repository(
        self, name: str, action: str, change: Callable[[Repository], Mapping[str, Any]]
    ) -> Repository:
        """Apply ``change`` to the row in one transaction; it returns the audit event's detail."""
        with self.store.session() as s:
            row = _repository(s, name)
            detail = change(row)
            self.store.record(s, action, name, **detail)
            return row

    def immutable_repositories(self, artifact_id: int) -> list[str]:
        with self.store.session() as s:
            query = (
                select(Repository.name)
                .join(ArtifactRef, ArtifactRef.repository == Repository.name)
                .where(ArtifactRef.artifact_id == artifact_id, Repository.immutable.is_(True))
            )
            return sorted(s.scalars(query))

    # -- properties ----------------------------------------------------------------------------

    def set_properties(self, artifact: Artifact, values: Mapping[str, str], actor: str) -> None:
        with self.store.session() as s:
            current = {p.key: p for p in s.scalars(_properties_of(artifact.id))}
            for key, value in values.items():
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

    def unset_properties(self, artifact: Artifact, keys: list[str]) -> list[str]:
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

    def properties(self, artifact_id: int) -> dict[str, str]:
        with self.store.session() as s:
            return {p.key: p.value for p in s.scalars(_properties_of(artifact_id))}

    # -- signatures and attestations -----------------------------------------------------------

    def put_signature(self, artifact: Artifact, signature: Signature) -> None:
        """Store ``signature``, replacing the artifact's signature by the same key."""
        with self.store.session() as s:
            query = select(Signature).where(
                Signature.artifact_id == artifact.id, Signature.key_id == signature.key_id
            )
            row = s.scalar(query)
            if row is None:
                row = Signature(artifact_id=artifact.id, key_id=signature.key_id)
                s.add(row)
            row.algorithm, row.public_key = signature.algorithm, signature.public_key
            row.value, row.actor = signature.value, signature.actor
            self.store.record(s, "artifact.signed", _ref(artifact), key=signature.key_id)

    def signatures(self, artifact_ids: Sequence[int]) -> list[Signature]:
        """The release signatures of the artifacts, oldest first (one query per batch)."""
        found: list[Signature] = []
        with self.store.session() as s:
            for start in range(0, len(artifact_ids), BATCH):
                ids = artifact_ids[start : start + BATCH]
                query = select(Signature).where(Signature.artifact_id.in_(ids))
                found += s.scalars(query.order_by(Signature.id))
        return found

    def put_attestation(self, artifact: Artifact, attestation: Attestation) -> None:
        """Store ``attestation``; the same subject signed again by the same key replaces it."""
        with self.store.session() as s:
            query = select(Attestation).where(
                Attestation.artifact_id == artifact.id,
                Attestation.subject == attestation.subject,
                Attestation.key_id == attestation.key_id,
            )
            row = s.scalar(query)
            if row is None:
                row = Attestation(
                    artifact_id=artifact.id,
                    subject=attestation.subject,
                    key_id=attestation.key_id,
                    imported=attestation.imported,
                )
                s.add(row)
            row.statement, row.algorithm = attestation.statement, attestation.algorithm
            row.public_key, row.value = attestation.public_key, attestation.value
            row.actor = attestation.actor
            self.store.record(
                s,
                "artifact.attested",
                _ref(artifact),
                about=attestation.subject,
                key=attestation.key_id,
                imported=row.imported,
            )

    def attestations(self, artifact_id: int) -> list[Attestation]:
        with self.store.session() as s:
            query = select(Attestation).where(Attestation.artifact_id == artifact_id)
            return list(s.scalars(query.order_by(Attestation.id)))

    def own_key_ids(self) -> set[str]:
        """Keys this instance signed with: releases, and attestations it made (not imported)."""
        with self.store.session() as s:
            released = s.scalars(select(Signature.key_id).distinct())
            attested = s.scalars(
                select(Attestation.key_id).where(Attestation.imported.is_(False)).distinct()
            )
            return set(released) | set(attested)

    def replace_key(
        self,
        old_key: str,
        release: Callable[[Artifact, Signature], Signature],
        attested: Callable[[Artifact, Attestation], Attestation],
    ) -> int:
        """Every signature and own attestation by ``old_key`` replaced by what the callables
        make of it, in one transaction (an exception from them changes nothing); audited per
        artifact. Returns how many artifacts changed."""
        done: dict[int, list[str]] = {}
        with self.store.session() as s:
            for row in s.scalars(select(Signature).where(Signature.key_id == old_key)).all():
                s.add(release(s.get_one(Artifact, row.artifact_id), row))
                s.delete(row)
                done.setdefault(row.artifact_id, []).append("release")
            own = select(Attestation).where(
                Attestation.key_id == old_key, Attestation.imported.is_(False)
            )
            for old in s.scalars(own).all():
                s.add(attested(s.get_one(Artifact, old.artifact_id), old))
                s.delete(old)
                done.setdefault(old.artifact_id, []).append(old.subject)
            s.flush()
            for artifact_id, subjects in done.items():
                artifact = s.get_one(Artifact, artifact_id)
                self.store.record(
                    s, "artifact.re-signed", _ref(artifact), old_key=old_key, signed=subjects
                )
        return len(done)

    # -- what the promotion policy reads -------------------------------------------------------

    def stage_statuses(self, run_id: int) -> dict[str, str]:
        with self.store.session() as s:
            rows = s.scalars(select(StageRun).where(StageRun.run_id == run_id))
            return {row.name: row.status for row in rows}

    # -- listing and search --------------------------------------------------------------------

    def search(
        self,
        *,
        name: str | None = None,
        repository: str | None = None,
        properties: Mapping[str, str] | None = None,
        sha: str | None = None,
        keep: Callable[[Artifact], bool] = lambda _: True,
    ) -> list[Found]:
        """Live artifacts matching every filter given (and ``keep``), newest first."""
        query = select(Artifact).where(Artifact.deleted_at.is_(None))
        if name:
            query = query.where(Artifact.name == name)
        if repository:
            query = query.where(
                exists().where(
                    ArtifactRef.artifact_id == Artifact.id, ArtifactRef.repository == repository
                )
            )
        for key, value in (properties or {}).items():
            query = query.where(_has_property(key, value))
        if sha:
            query = query.where(_has_property("git.sha", sha, prefix=True))
        query = query.order_by(Artifact.created_at.desc(), Artifact.id.desc())
        with self.store.session() as s:
            return _found_all(s, [artifact for artifact in s.scalars(query) if keep(artifact)])

    def found(self, artifact: Artifact) -> Found:
        with self.store.session() as s:
            return _found(s, artifact)

    # -- what garbage collection and fsck read and change --------------------------------------

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
        """Artifacts in an immutable repository, or deployed anywhere."""
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
        """Live artifacts in no repository and not deployed."""
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

    def dangling_refs(self) -> list[tuple[str, str, str]]:
        """(repository, name, version) of refs to deleted artifacts."""
        with self.store.session() as s:
            query = (
                select(ArtifactRef.repository, Artifact.name, Artifact.version)
                .join(Artifact, ArtifactRef.artifact_id == Artifact.id)
                .where(Artifact.deleted_at.is_not(None))
            )
            return [(repository, name, version) for repository, name, version in s.execute(query)]

    def dangling_deployments(self) -> list[tuple[str, str, str]]:
        """(environment, name, version) of running deployments of deleted artifacts."""
        with self.store.session() as s:
            query = (
                select(Deployment.environment, Artifact.name, Artifact.version)
                .join(Artifact, Deployment.artifact_id == Artifact.id)
                .where(Artifact.deleted_at.is_not(None), Deployment.state.in_(RUNNING_STATES))
            )
            return [(environment, name, version) for environment, name, version in s.execute(query)]


def _found(s: Session, artifact: Artifact) -> Found:
    repos = s.scalars(select(ArtifactRef.repository).where(ArtifactRef.artifact_id == artifact.id))
    props = {p.key: p.value for p in s.scalars(_properties_of(artifact.id))}
    return artifact, sorted(repos), props


def _found_all(s: Session, artifacts: list[Artifact]) -> list[Found]:
    """``_found`` for many at once: two queries per batch rather than two per artifact."""
    repos: dict[int, list[str]] = {a.id: [] for a in artifacts}
    props: dict[int, dict[str, str]] = {a.id: {} for a in artifacts}
    for start in range(0, len(artifacts), BATCH):
        ids = [a.id for a in artifacts[start : start + BATCH]]
        for ref in s.execute(
            select(ArtifactRef.artifact_id, ArtifactRef.repository).where(
                ArtifactRef.artifact_id.in_(ids)
            )
        ):
            repos[ref.artifact_id].append(ref.repository)
        query = select(ArtifactProperty).where(ArtifactProperty.artifact_id.in_(ids))
        for prop in s.scalars(query.order_by(ArtifactProperty.key)):
            props[prop.artifact_id][prop.key] = prop.value
    return [(a, sorted(repos[a.id]), props[a.id]) for a in artifacts]


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
