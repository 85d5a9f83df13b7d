"""Artifacts: search the repositories, show one artifact, promote it.

The promotion policy and its override rule stay in ``artifacts/repository.py``; what is decided
here is who may ask: an override is an admin's call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog, Listed
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY, TokenRole
from shipyard.errors import Forbidden
from shipyard.services.views import View

if TYPE_CHECKING:
    from shipyard.artifacts.signing import KeyFile

__all__ = [
    "ArtifactDetail",
    "ArtifactView",
    "Artifacts",
    "AttestationView",
    "PolicyCheckView",
    "PromotionView",
    "SignatureView",
]


class ArtifactView(View):
    name: str
    version: str
    digest: str
    size: int
    repositories: list[str]
    properties: dict[str, str]
    created_at: datetime
    build_info: dict[str, Any]

    @classmethod
    def of(cls, item: Listed) -> ArtifactView:
        art = item.artifact
        return cls(
            name=art.name,
            version=art.version,
            digest=art.digest,
            size=art.size,
            repositories=item.repositories,
            properties=item.properties,
            created_at=art.created_at,
            build_info=art.build_info,
        )


class SignatureView(View):
    """A release signature, and whether it verifies with a key this Shipyard trusts."""

    key_id: str
    verified: bool


class AttestationView(View):
    """A signed statement: the build, or a stage's result."""

    subject: str
    key_id: str
    verified: bool


class ArtifactDetail(ArtifactView):
    signatures: list[SignatureView]
    attestations: list[AttestationView]


class PolicyCheckView(View):
    stage: str
    status: str  # the stage's status, or "unknown" when there is no record of it
    verdict: str  # passed, skip allowed by policy, or refused


class PromotionView(ArtifactView):
    """The artifact after a promotion, with the target policy's decision."""

    target: str
    promoted: bool  # a ref was added now (with dry_run: would be)
    already: bool  # it was in the target before
    allowed: bool
    summary: str  # the decision in one line, as the audit log has it
    checks: list[PolicyCheckView]
    signed_by: str | None  # the key that signed it now, if it did


class Artifacts:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters
        self.catalog = Catalog(adapters.store)

    def search(
        self,
        name: str | None = None,
        repository: str | None = None,
        version: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        sha: str | None = None,
    ) -> list[ArtifactView]:
        """Live artifacts matching every filter given, newest first. ``version`` is a version
        or a run-number range such as ``>=3,<7``; ``sha`` a git commit prefix."""
        from shipyard.artifacts.search import parse_sha, parse_versions

        found = self.catalog.search(
            name=name,
            versions=parse_versions(version) if version is not None else None,
            sha=parse_sha(sha) if sha is not None else None,
            properties=properties or {},
            repository=repository,
        )
        return [ArtifactView.of(item) for item in found]

    def show(self, name: str, version: str) -> ArtifactDetail:
        """Build-info, properties, repositories, and each signature checked against the keys
        this Shipyard trusts."""
        from shipyard.artifacts.attestations import verified
        from shipyard.artifacts.signing import statement, verifies

        item = self.catalog.describe(name, version)
        art = item.artifact
        trusted = self._keys().trusted_keys()
        signed = statement(art.name, art.version, art.digest)
        signatures = [
            SignatureView(
                key_id=record.key_id,
                verified=record.key_id in trusted
                and verifies(record, trusted[record.key_id], signed),
            )
            for record in self.catalog.signatures(art)
        ]
        attestations = [
            AttestationView(
                subject=attestation.subject,
                key_id=attestation.signature.key_id,
                verified=verified(attestation, art, trusted),
            )
            for attestation in self.catalog.attestations(art)
        ]
        return ArtifactDetail(
            **ArtifactView.of(item).model_dump(),
            signatures=signatures,
            attestations=attestations,
        )

    def promote(
        self,
        name: str,
        version: str,
        *,
        override: bool = False,
        reason: str | None = None,
        source: str = DEV_REPOSITORY,
        target: str = RELEASE_REPOSITORY,
        dry_run: bool = False,
        key: Path | None = None,
        role: TokenRole | None = None,
    ) -> PromotionView:
        """Promote ``name:version`` from ``source`` to ``target`` if the target's policy allows
        it (Conflict naming what stops it if not). ``role`` is the caller's through the API;
        None is the local user, who holds the state directory and its key anyway."""
        from shipyard.artifacts.repository import promote

        if override and role is not None and not role.allows(TokenRole.ADMIN):
            raise Forbidden(
                f"Promoting with an override needs the admin role; this token has {role}.",
                hint="Ask an admin, or promote without --override.",
            )
        result = promote(
            self.adapters.store,
            name,
            version,
            source=source,
            target=target,
            reason=reason or ("" if override else "manual promotion"),
            dry_run=dry_run,
            keys=self._keys(key),
            override=override,
        )
        decision = result.decision
        return PromotionView(
            **ArtifactView.of(self.catalog.describe(name, version)).model_dump(),
            target=target,
            promoted=result.promoted,
            already=result.already,
            allowed=decision.allowed,
            summary=decision.summary(),
            checks=[
                PolicyCheckView(stage=c.stage, status=c.status, verdict=c.verdict)
                for c in decision.checks
            ],
            signed_by=result.signed_by,
        )

    def _keys(self, key: Path | None = None) -> KeyFile:
        from shipyard.artifacts.signing import KeyFile

        return KeyFile.resolve(self.adapters.state.signing_key, key)
