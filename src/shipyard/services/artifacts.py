"""Artifacts: search the repositories, show one artifact, promote it.

The promotion policy and its override rule stay in ``artifacts/repository.py``; what is decided
here is who may ask: an override is an admin's call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog, Listed
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY, TokenRole
from shipyard.errors import Forbidden, NotFound
from shipyard.services.audit import EventView
from shipyard.services.cache import ViewCache
from shipyard.services.views import View
from shipyard.store.models import Artifact

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from shipyard.artifacts.signing import KeyFile, SignatureRecord

__all__ = [
    "ArtifactDetail",
    "ArtifactPage",
    "ArtifactView",
    "Artifacts",
    "AttestationView",
    "LicenceCount",
    "PolicyCheckView",
    "PromotionView",
    "SbomSummary",
    "SignatureView",
    "SignedArtifactView",
]

UNKNOWN_LICENCE = "unknown"  # a component whose SBOM entry names no licence


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


class SignedArtifactView(ArtifactView):
    signatures: list[SignatureView]


class ArtifactPage(View):
    matched: int  # how many artifacts match the filters, on every page
    artifacts: list[SignedArtifactView]


class ArtifactDetail(ArtifactView):
    signatures: list[SignatureView]
    attestations: list[AttestationView]


class PolicyCheckView(View):
    stage: str
    status: str  # the stage's status, or "unknown" when there is no record of it
    verdict: str  # passed, skip allowed by policy, project states none, or refused


class PromotionView(ArtifactView):
    """The artifact after a promotion, with the target policy's decision."""

    target: str
    promoted: bool  # a ref was added now (with dry_run: would be)
    already: bool  # it was in the target before
    allowed: bool
    summary: str  # the decision in one line, as the audit log has it
    checks: list[PolicyCheckView]
    signed_by: str | None  # the key that signed it now, if it did


class LicenceCount(View):
    licence: str  # an SPDX id or expression, the licence's name, or "unknown"
    components: int


class SbomSummary(View):
    """A CycloneDX SBOM in a few numbers: its components and their licences."""

    spec_version: str
    components: int
    licences: list[LicenceCount]  # most common first

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> SbomSummary:
        components = [c for c in document.get("components") or [] if isinstance(c, dict)]
        counts = Counter(_licence(component) for component in components)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0].lower()))
        return cls(
            spec_version=str(document.get("specVersion", "")),
            components=len(components),
            licences=[LicenceCount(licence=name, components=n) for name, n in ranked],
        )


def sbom_document(name: str, version: str, build_info: Mapping[str, Any]) -> dict[str, Any]:
    """The CycloneDX SBOM the publish stage keeps in the build-info (NotFound without one)."""
    document = build_info.get("sbom")
    if not isinstance(document, dict):
        raise NotFound(
            f"{name}:{version} has no SBOM in its build-info.",
            hint="The analyze stage writes one when `sbom` is in `analyze.checks`.",
        )
    return document


def _licence(component: Mapping[str, Any]) -> str:
    """A component's licences as CycloneDX lists them: an SPDX expression, or licences by id
    or name (several joined by AND: each applies)."""
    names = []
    for entry in component.get("licenses") or []:
        if not isinstance(entry, dict):
            continue
        found = entry.get("license")
        if entry.get("expression"):
            names.append(str(entry["expression"]))
        elif isinstance(found, dict) and (found.get("id") or found.get("name")):
            names.append(str(found.get("id") or found.get("name")))
    return " AND ".join(dict.fromkeys(names)) or UNKNOWN_LICENCE


class Artifacts:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters
        self.catalog = Catalog(adapters.store)
        self.views = ViewCache(adapters.store)  # pages, until the store changes

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
        found = self._search(name, repository, version, properties, sha)
        return [ArtifactView.of(item) for item in found]

    def page(
        self,
        name: str | None = None,
        repository: str | None = None,
        version: str | None = None,
        properties: Mapping[str, str] | None = None,
        *,
        offset: int = 0,
        limit: int = 50,
    ) -> ArtifactPage:
        """One page of ``search``'s results, each with its release signatures checked against
        the keys this Shipyard trusts (read once for the page), and how many matched. Kept
        until the store changes: checking fifty signatures is the page's main cost."""
        key = ("page", name, repository, version, tuple(sorted((properties or {}).items())))
        return self.views.get(
            (*key, offset, limit),
            lambda: self._page(name, repository, version, properties, offset, limit),
        )

    def _page(
        self,
        name: str | None,
        repository: str | None,
        version: str | None,
        properties: Mapping[str, str] | None,
        offset: int,
        limit: int,
    ) -> ArtifactPage:
        found = self._search(name, repository, version, properties)
        window = found[offset : offset + limit]
        trusted = self._keys().trusted_keys()
        records = self.catalog.signatures_of([item.artifact for item in window])
        shown = [
            SignedArtifactView(
                **ArtifactView.of(item).model_dump(),
                signatures=_checked(item.artifact, records[item.artifact.id], trusted),
            )
            for item in window
        ]
        return ArtifactPage(matched=len(found), artifacts=shown)

    def _search(
        self,
        name: str | None,
        repository: str | None,
        version: str | None,
        properties: Mapping[str, str] | None,
        sha: str | None = None,
    ) -> list[Listed]:
        from shipyard.artifacts.search import parse_sha, parse_versions

        return self.catalog.search(
            name=name,
            versions=parse_versions(version) if version is not None else None,
            sha=parse_sha(sha) if sha is not None else None,
            properties=properties or {},
            repository=repository,
        )

    def show(self, name: str, version: str) -> ArtifactDetail:
        """Build-info, properties, repositories, and each signature checked against the keys
        this Shipyard trusts."""
        from shipyard.artifacts.attestations import verified

        item = self.catalog.describe(name, version)
        art = item.artifact
        trusted = self._keys().trusted_keys()
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
            signatures=_checked(art, self.catalog.signatures(art), trusted),
            attestations=attestations,
        )

    def sbom(self, name: str, version: str) -> dict[str, Any]:
        """The CycloneDX SBOM kept in the artifact's build-info by the publish stage."""
        return sbom_document(
            name, version, self.catalog.describe(name, version).artifact.build_info
        )

    def history(self, name: str, version: str, limit: int = 100) -> list[EventView]:
        """What happened to ``name:version``, newest first: published, signed, promoted..."""
        self.catalog.describe(name, version)  # NotFound, with its hint, for an unknown one
        subject = f"{name}:{version}"
        events = self.adapters.store.events(subject, limit)
        return [EventView.of(event) for event in events if event.subject == subject]

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


def _checked(
    art: Artifact, records: list[SignatureRecord], trusted: Mapping[str, Ed25519PublicKey]
) -> list[SignatureView]:
    """Each release signature, and whether it verifies with a key this Shipyard trusts."""
    from shipyard.artifacts.signing import statement, verifies

    signed = statement(art.name, art.version, art.digest)
    return [
        SignatureView(
            key_id=record.key_id,
            verified=record.key_id in trusted and verifies(record, trusted[record.key_id], signed),
        )
        for record in records
    ]
