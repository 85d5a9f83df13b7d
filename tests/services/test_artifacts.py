"""Searching, showing and promoting artifacts through the service: real store, real blobs,
the state directory's own signing key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.signing import Signer
from shipyard.domain import TokenRole
from shipyard.errors import Conflict, Forbidden, NotFound
from shipyard.services import Services
from shipyard.services.artifacts import SbomSummary
from shipyard.store import acting_as

from .conftest import PASSING, published

RELEASABLE = {**PASSING, "qa": "passed"}


def test_search_filters_by_repository_version_and_property(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    first = published(adapters, tmp_path / "1", RELEASABLE)
    second = published(adapters, tmp_path / "2", RELEASABLE)
    found.artifacts.promote("iris", first.version)
    Catalog(adapters.store).set_properties(second, {"team": "vision"})

    def versions(**filters: object) -> list[str]:
        return [a.version for a in found.artifacts.search(**filters)]  # type: ignore[arg-type]

    assert versions(name="iris") == [second.version, first.version]  # newest first
    assert versions(repository="release") == [first.version]
    assert versions(version=">=2") == [second.version]
    assert versions(properties={"team": "vision"}) == [second.version]
    assert versions(name="other") == []


def test_show_says_which_signatures_verify_with_a_trusted_key(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    artifact = published(adapters, tmp_path, RELEASABLE)
    promoted = found.artifacts.promote("iris", artifact.version)
    stranger = Signer(Ed25519PrivateKey.generate())
    forged = stranger.sign(artifact.name, artifact.version, artifact.digest)
    Catalog(adapters.store).add_signature(artifact, forged)

    detail = found.artifacts.show("iris", artifact.version)
    assert detail.repositories == ["dev", "release"] and detail.build_info["run"] == 1
    assert [(s.key_id, s.verified) for s in detail.signatures] == [
        (promoted.signed_by, True),
        (stranger.key_id, False),
    ]
    assert [a.subject for a in detail.attestations] == ["build", "test", "analyze", "qa"]
    assert all(a.verified for a in detail.attestations)


def test_promotion_records_who_promoted_and_what_the_policy_decided(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    artifact = published(adapters, tmp_path, RELEASABLE)
    with acting_as("quinn"):
        view = found.artifacts.promote("iris", artifact.version, reason="QA signed off")
    assert view.promoted and view.allowed and not view.already
    assert view.repositories == ["dev", "release"] and view.signed_by
    assert [(c.stage, c.verdict) for c in view.checks] == [
        ("test", "passed"),
        ("analyze", "passed"),
        ("qa", "passed"),
    ]
    event = adapters.store.events(f"iris:{artifact.version}")[0]
    assert (event.action, event.actor) == ("artifact.promoted", "quinn")
    assert "QA signed off" in event.detail["reason"]
    again = found.artifacts.promote("iris", artifact.version)
    assert again.already and not again.promoted


def test_a_refused_promotion_names_the_stage_and_changes_nothing(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    artifact = published(adapters, tmp_path, {**PASSING, "qa": "failed"})
    dry = found.artifacts.promote("iris", artifact.version, dry_run=True)
    assert not dry.allowed and [c.stage for c in dry.checks if c.verdict == "refused"] == ["qa"]
    with pytest.raises(Conflict, match=r"The .release. policy refuses .*qa failed"):
        found.artifacts.promote("iris", artifact.version)
    assert found.artifacts.show("iris", artifact.version).repositories == ["dev"]


def test_an_override_is_an_admins_call(adapters: Adapters, found: Services, tmp_path: Path) -> None:
    artifact = published(adapters, tmp_path, RELEASABLE)
    with pytest.raises(Forbidden) as refused:
        found.artifacts.promote(
            "iris", artifact.version, override=True, reason="hurry", role=TokenRole.RELEASER
        )
    assert refused.value.message == (
        "Promoting with an override needs the admin role; this token has releaser."
    )
    assert found.artifacts.show("iris", artifact.version).repositories == ["dev"]
    view = found.artifacts.promote(
        "iris", artifact.version, override=True, reason="audited", role=TokenRole.ADMIN
    )
    assert view.promoted


SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "components": [
        {"name": "numpy", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "scipy", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "requests", "licenses": [{"expression": "Apache-2.0"}]},
        {"name": "odd", "licenses": [{"license": {"name": "Custom Licence"}}]},
        {"name": "both", "licenses": [{"license": {"id": "MIT"}}, {"license": {"id": "ISC"}}]},
        {"name": "bare"},
    ],
}


def test_an_sbom_is_summarised_as_components_per_licence() -> None:
    summary = SbomSummary.of(SBOM)
    assert (summary.spec_version, summary.components) == ("1.6", 6)
    assert [(c.licence, c.components) for c in summary.licences] == [
        ("BSD-3-Clause", 2),
        ("Apache-2.0", 1),
        ("Custom Licence", 1),
        ("MIT AND ISC", 1),
        ("unknown", 1),
    ]
    assert SbomSummary.of({}).components == 0


def test_the_sbom_comes_from_the_build_info_and_its_absence_is_not_found(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    with_sbom = published(adapters, tmp_path / "1", RELEASABLE, {"sbom": SBOM})
    without = published(adapters, tmp_path / "2", RELEASABLE)
    assert found.artifacts.sbom("iris", with_sbom.version) == SBOM
    with pytest.raises(NotFound, match="has no SBOM") as missing:
        found.artifacts.sbom("iris", without.version)
    assert missing.value.hint and "analyze.checks" in missing.value.hint


def test_a_page_of_results_says_how_many_matched_and_which_signatures_verify(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    signed = published(adapters, tmp_path / "1", RELEASABLE)
    for n in range(2, 5):
        published(adapters, tmp_path / str(n), RELEASABLE)
    promoted = found.artifacts.promote("iris", signed.version)
    first = found.artifacts.page("iris", limit=3)
    assert first.matched == 4
    assert [a.version for a in first.artifacts] == ["4-ab12cd3", "3-ab12cd3", "2-ab12cd3"]
    assert all(a.signatures == [] for a in first.artifacts)
    [last] = found.artifacts.page("iris", offset=3, limit=3).artifacts
    assert last.version == signed.version
    assert [(s.key_id, s.verified) for s in last.signatures] == [(promoted.signed_by, True)]
    assert found.artifacts.page(version=">=3").matched == 2


def test_an_artifact_s_history_is_its_own_events_newest_first(
    adapters: Adapters, found: Services, tmp_path: Path
) -> None:
    first = published(adapters, tmp_path / "1", RELEASABLE)
    published(adapters, tmp_path / "2", RELEASABLE)
    with acting_as("quinn"):
        found.artifacts.promote("iris", first.version)
    history = found.artifacts.history("iris", first.version)
    assert {e.subject for e in history} == {f"iris:{first.version}"}
    assert (history[0].action, history[0].actor, history[0].detail["target"]) == (
        "artifact.promoted",
        "quinn",
        "release",
    )
    assert "artifact.published" in [e.action for e in history]
    with pytest.raises(NotFound):
        found.artifacts.history("iris", "99-fffffff")
