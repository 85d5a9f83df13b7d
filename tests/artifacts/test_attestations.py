"""Signed stage results and build signatures: what promotion and pickle loading trust.

Two real state directories (stores, blob folders, keys) stand for two Shipyard instances.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

from shipyard.artifacts import KeyFile, LocalBlobStore, promote
from shipyard.artifacts.attestations import may_load_pickle
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.keys import rotate_key
from shipyard.artifacts.repository import record_result, verify_signature
from shipyard.artifacts.signing import key_id
from shipyard.artifacts.transfer import FORMAT, manifest_path, pull, push
from shipyard.domain import RELEASE_REPOSITORY
from shipyard.errors import Conflict, InvalidInput
from shipyard.store.models import Artifact, ArtifactProperty, StageRun
from shipyard.store.models import Attestation as Row
from shipyard.store.store import Store

from .conftest import PASSING, Machine, Tree, publish_run

ALL_PASSED = {f"{stage}.status": "passed" for stage in ("build", "test", "analyze", "qa")}


@pytest.fixture
def built(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> Artifact:
    """Built by this instance: test and analyze signed at publish, qa's figures signed after."""
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "passed"})
    qa = {"qa.status": "passed", "qa.accuracy": "0.91", "qa.load.p99_ms": "12.5"}
    record_result(store, artifact, "qa", qa, keys)
    return artifact


def _events(store: Store, artifact: Artifact, action: str) -> list[dict[str, object]]:
    return [e.detail for e in store.events(f"iris:{artifact.version}") if e.action == action]


def test_a_hand_written_manifest_claiming_every_stage_passed_is_refused_unless_an_admin_overrides(
    tree: Tree, tmp_path: Path, other: Machine
) -> None:
    packed = tree.pack(tmp_path / "forged.tar.gz", version="6.6.6")
    manifest = {
        "format": FORMAT,
        "name": "iris",
        "version": "6.6.6",
        "digest": packed.digest,
        "properties": {**ALL_PASSED, "qa.accuracy": "0.99"},
        "signatures": [],
    }
    manifest_path(packed.path).write_text(json.dumps(manifest))
    push(other.store, other.blobs, packed.path)
    artifact = other.store.get_artifact("iris", "6.6.6")

    with pytest.raises(Conflict) as refused:
        promote(other.store, "iris", "6.6.6", keys=other.keys)
    assert (
        "The 'release' policy refuses iris:6.6.6: its test, analyze, qa result(s) are not signed"
        " by a key this Shipyard trusts (test: no signed result;" in refused.value.message
    )
    assert "A claimed result is not evidence." in refused.value.message
    assert '`shipyard promote iris:6.6.6 --override --reason "..."`' in (refused.value.hint or "")
    assert not other.store.in_repository(RELEASE_REPOSITORY, "iris", "6.6.6")

    with pytest.raises(InvalidInput, match="say why with --reason"):
        promote(other.store, "iris", "6.6.6", keys=other.keys, override=True)
    done = promote(
        other.store, "iris", "6.6.6", keys=other.keys, override=True, reason="vetted by hand"
    )
    assert done.promoted and other.store.in_repository(RELEASE_REPOSITORY, "iris", "6.6.6")
    [overridden] = _events(other.store, artifact, "artifact.promotion-overridden")
    assert overridden["reason"] == "vetted by hand" and overridden["target"] == "release"
    assert set(overridden["unverified"]) == {"test", "analyze", "qa"}  # type: ignore[arg-type]


def test_a_genuine_pull_and_push_is_promotable_once_the_receiving_side_trusts_the_key(
    built: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", built.version, out, keys=keys)
    push(other.store, other.blobs, out)

    with pytest.raises(Conflict, match="which does not verify with any key this Shipyard trusts"):
        promote(other.store, "iris", built.version, keys=other.keys)
    assert other.trust(keys) == key_id(keys.trusted())
    result = promote(other.store, "iris", built.version, keys=other.keys)
    assert result.promoted and result.decision.summary() == (
        "imported stage results: test passed, analyze passed, qa passed"
    )
    assert result.signed_by == other.keys.signer().key_id


def test_a_genuine_signature_with_an_edited_qa_accuracy_is_refused(
    built: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", built.version, out, keys=keys)
    manifest = json.loads(manifest_path(out).read_text())
    manifest["properties"]["qa.accuracy"] = "0.99"
    manifest_path(out).write_text(json.dumps(manifest))
    push(other.store, other.blobs, out)
    other.trust(keys)

    with pytest.raises(Conflict) as refused:
        promote(other.store, "iris", built.version, keys=other.keys)
    assert (
        "qa.accuracy is '0.99' here but the signed qa result says '0.91':"
        " it was changed after qa recorded it" in refused.value.message
    )
    assert not other.store.in_repository(RELEASE_REPOSITORY, "iris", built.version)


def test_editing_the_database_cannot_make_a_failed_stage_look_passed(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "failed"})
    with store.session() as s:  # someone with write access to the database
        s.execute(update(StageRun).where(StageRun.name == "qa").values(status="passed"))
        s.execute(
            update(ArtifactProperty)
            .where(ArtifactProperty.key == "qa.status")
            .values(value="passed")
        )
    with pytest.raises(Conflict, match=r"qa\.status is 'passed' here but the signed qa result"):
        promote(store, "iris", artifact.version, keys=keys)
    assert not store.in_repository(RELEASE_REPOSITORY, "iris", artifact.version)


def test_a_pipeline_built_artifact_promotes_on_its_own_signed_results(
    built: Artifact, store: Store, keys: KeyFile
) -> None:
    result = promote(store, "iris", built.version, keys=keys)
    assert result.promoted
    assert result.decision.summary() == "run #1: test passed, analyze passed, qa passed"
    subjects = [a.subject for a in Catalog(store).attestations(built)]
    assert subjects == ["build", "test", "analyze", "qa"]


# -- point 3: pickle by provenance ---------------------------------------------------------


def _scan(passed: bool) -> dict[str, str]:
    blocking = "0" if passed else "1"
    return {
        "analyze.status": "passed" if passed else "failed",
        "analyze.counts.model.found": "1",
        "analyze.counts.model.blocking": blocking,
    }


@pytest.mark.parametrize(("scan", "allowed"), [(True, True), (False, False), (None, False)])
def test_pickle_loads_only_from_a_trusted_build_whose_model_scan_passed(
    tree: Tree,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    scan: bool | None,
    allowed: bool,
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "analyze": "skipped"})
    if scan is not None:
        record_result(store, artifact, "analyze", _scan(scan), keys)
    assert may_load_pickle(Catalog(store), artifact, keys) is allowed


def test_an_artifact_pushed_from_elsewhere_never_loads_pickle(
    built: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    record_result(store, built, "analyze", _scan(True), keys)
    assert may_load_pickle(Catalog(store), built, keys)
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", built.version, out, keys=keys)
    manifest_path(out).unlink()  # no manifest: no build signature
    push(other.store, other.blobs, out)
    arrived = other.store.get_artifact("iris", built.version)
    assert not may_load_pickle(Catalog(other.store), arrived, other.keys)


def test_a_foreign_build_signature_loads_pickle_only_once_its_key_is_trusted(
    built: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    record_result(store, built, "analyze", _scan(True), keys)
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", built.version, out, keys=keys)
    push(other.store, other.blobs, out)
    arrived = other.store.get_artifact("iris", built.version)
    assert not may_load_pickle(Catalog(other.store), arrived, other.keys)
    other.trust(keys)
    assert may_load_pickle(Catalog(other.store), arrived, other.keys)


# -- point 5: a lost key is never silently replaced ----------------------------------------


def test_a_lost_signing_key_is_refused_not_replaced(
    built: Artifact, tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    promote(store, "iris", built.version, keys=keys)
    lost = key_id(keys.trusted())
    keys.path.unlink()
    with pytest.raises(InvalidInput) as refused:
        promote(store, "iris", built.version, keys=keys)
    assert f"The signing key {keys.path} is missing" in refused.value.message
    assert lost in refused.value.message
    assert f"Put the key file back at {keys.path}" in (refused.value.hint or "")
    assert "$SHIPYARD_SIGNING_KEY" in (refused.value.hint or "")
    assert "`shipyard artifacts key rotate`" in (refused.value.hint or "")
    with pytest.raises(InvalidInput, match=f"is missing, and the store holds signatures by {lost}"):
        publish_run(tree, tmp_path / "o3", store, blobs, {**PASSING, "qa": "passed"}, n=3)
    assert not keys.path.exists()


def test_rotation_re_signs_everything_with_the_new_key_and_audits_it(
    built: Artifact, tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    promote(store, "iris", built.version, keys=keys)
    other = publish_run(tree, tmp_path / "o2", store, blobs, {**PASSING, "qa": "passed"}, n=2)
    catalog = Catalog(store)
    old = key_id(keys.trusted())

    done = rotate_key(catalog, keys)

    new = key_id(keys.trusted())
    assert (done.old, done.new, done.artifacts) == (old, new, 2) and old != new
    assert done.retired.is_file() and done.retired.stat().st_mode & 0o077 == 0
    for artifact in (built, other):
        keys_used = {a.signature.key_id for a in catalog.attestations(artifact)}
        assert keys_used == {new}  # the old key's attestations are gone
    assert [s.key_id for s in catalog.signatures(built)] == [new]
    verify_signature(store, built, keys)  # the release still deploys, with the new key
    assert promote(store, "iris", other.version, keys=keys).promoted
    re_signed = _events(store, built, "artifact.re-signed")
    assert re_signed == [{"old_key": old, "signed": ["release", "build", "test", "analyze", "qa"]}]
    assert [e.detail for e in store.events(new) if e.action == "key.rotated"] == [
        {"old_key": old, "artifacts": 2}
    ]


def test_rotation_needs_the_old_key_and_stops_on_a_signature_that_does_not_verify(
    built: Artifact, store: Store, keys: KeyFile
) -> None:
    promote(store, "iris", built.version, keys=keys)
    catalog = Catalog(store)
    old = key_id(keys.trusted())
    with store.session() as s:  # an altered release record
        s.execute(update(Artifact).values(digest="sha256:" + "0" * 64))
    with pytest.raises(Exception, match="does not verify: nothing was re-signed"):
        rotate_key(catalog, keys)
    assert key_id(keys.trusted()) == old
    assert [s.key_id for s in catalog.signatures(built)] == [old]
    assert sorted(p.name for p in keys.path.parent.iterdir()) == ["signing.key"]  # no new key left
    keys.path.unlink()
    with pytest.raises(InvalidInput, match="There is no signing key"):
        rotate_key(catalog, keys)


def test_a_signed_result_relabelled_as_another_stage_does_not_count(
    built: Artifact, store: Store, keys: KeyFile
) -> None:
    with store.session() as s:  # the genuine test result, relabelled as qa's
        s.execute(update(Row).where(Row.subject == "qa").values(subject="gone"))
        s.execute(update(Row).where(Row.subject == "test").values(subject="qa"))
    with pytest.raises(Conflict, match="its test, qa result"):
        promote(store, "iris", built.version, keys=keys)
