"""publish / promote / materialize with a real SQLite store and a real blob directory."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from shipyard.artifacts import (
    BlobError,
    KeyFile,
    LocalBlobStore,
    PackedArtifact,
    SignatureError,
    digest_of,
    materialize,
    promote,
    publish,
    validate_name,
    validate_version,
    verify_signature,
)
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.policy import change_policy
from shipyard.artifacts.signing import public_pem
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.store.models import Artifact, Signature
from shipyard.store.store import Store

from . import hostile
from .conftest import PASSING, Tree, publish_run

BAD_NAMES = [
    "",
    "..",
    "a..b",
    "a/b",
    "a/../b",
    "/abs",
    "../up",
    "a b",
    " a",
    "x" * 64,
    "-a",
    "Iris",
    "a\\b",
]
BAD_VERSIONS = ["", "..", "1..2", "1/2", "a/../b", "/1.0", "1.0 beta", "v" * 129, ".1", "1.0\n"]


@pytest.mark.parametrize("name", ["iris", "a", "iris-model_v2.x", "0" * 63])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names_say_what_is_allowed(name: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid name") as caught:
        validate_name(name)
    assert "a-z, 0-9" in str(caught.value.hint)


@pytest.mark.parametrize("version", ["1.0.0", "2024.06.01+build.7", "1.0.0-rc1", "A" * 128])
def test_valid_versions(version: str) -> None:
    assert validate_version(version) == version


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_invalid_versions_say_what_is_allowed(version: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid version") as caught:
        validate_version(version)
    assert "'+'" in str(caught.value.hint)


def published(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, version: str = "1.0.0"
) -> Artifact:
    packed = tree.pack(tmp_path / "out", version=version)
    return publish(store, blobs, packed, {"name": "iris", "version": version}, run_id=None)


def test_publish_stores_the_blob_and_puts_it_in_dev(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    packed = tree.pack(tmp_path / "out")
    artifact = publish(
        store, blobs, packed, {"name": "iris", "version": "1.0.0", "run": 3}, run_id=None
    )
    assert (artifact.name, artifact.version, artifact.digest, artifact.size) == (
        "iris",
        "1.0.0",
        packed.digest,
        packed.size,
    )
    assert blobs.exists(packed.digest)
    assert store.in_repository(DEV_REPOSITORY, "iris", "1.0.0")
    assert not store.in_repository(RELEASE_REPOSITORY, "iris", "1.0.0")
    assert store.get_artifact("iris", "1.0.0").build_info["run"] == 3
    again = publish(store, blobs, packed, {"name": "iris", "version": "1.0.0"}, run_id=None)
    assert again.id == artifact.id  # same bytes, same version: nothing new


def test_publish_refuses_a_second_digest_for_a_version(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    published(tree, tmp_path, store, blobs)
    other = tree.pack(tmp_path / "out", note="different bytes")
    with pytest.raises(Conflict, match="already exists with digest"):
        publish(store, blobs, other, {"name": "iris", "version": "1.0.0"}, run_id=None)


def test_publish_refuses_bad_build_info(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    packed = tree.pack(tmp_path / "out")
    with pytest.raises(InvalidInput, match="build-info has no version"):
        publish(store, blobs, packed, {"name": "iris"}, run_id=None)
    with pytest.raises(InvalidInput, match=r"Invalid version '\.\./1'"):
        publish(store, blobs, packed, {"name": "iris", "version": "../1"}, run_id=None)
    assert store.list_artifacts() == []


def test_promote_is_metadata_only_idempotent_signed_and_audited(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "passed"})
    ref = artifact.version
    blob_files = sorted(blobs.root.rglob("*"))
    dry = promote(store, "iris", ref, dry_run=True, keys=keys)
    assert (dry.promoted, dry.already, dry.decision.allowed) == (True, False, True)
    assert not store.in_repository(RELEASE_REPOSITORY, "iris", ref)  # dry run changed nothing
    assert "artifact.signed" not in [e.action for e in store.events(f"iris:{ref}")]  # nor signed
    done = promote(store, "iris", ref, reason="QA passed", keys=keys)
    assert done.promoted and done.signed_by and done.signed_by.startswith("ed25519:")
    assert store.in_repository(RELEASE_REPOSITORY, "iris", ref)
    again = promote(store, "iris", ref, keys=keys)
    assert (again.promoted, again.already, again.signed_by) == (False, True, None)
    assert promote(store, "iris", ref, dry_run=True, keys=keys).already
    assert sorted(blobs.root.rglob("*")) == blob_files  # no bytes copied
    [(listed, repositories)] = store.list_artifacts(name="iris")
    assert listed.digest == artifact.digest and repositories == ["dev", "release"]
    promotions = [e for e in store.events(f"iris:{ref}") if e.action == "artifact.promoted"]
    assert len(promotions) == 1
    assert promotions[0].detail == {
        "source": "dev",
        "target": "release",
        "reason": "QA passed (run #1: test passed, analyze passed, qa passed)",
    }
    assert [e.action for e in store.events(f"iris:{ref}")].count("artifact.signed") == 1


@pytest.mark.parametrize(
    ("qa", "analyze", "refused"),
    [
        ("skipped", "passed", "qa skipped"),
        ("failed", "passed", "qa failed"),
        ("passed", "failed", "analyze failed"),
        (None, "passed", "qa queued"),
    ],
)
def test_promote_to_release_needs_test_analyze_and_qa_passed(
    tree: Tree,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    qa: str | None,
    analyze: str,
    refused: str,
) -> None:
    statuses = {**PASSING, "analyze": analyze, **({"qa": qa} if qa else {})}
    artifact = publish_run(tree, tmp_path / "out", store, blobs, statuses)
    with pytest.raises(
        Conflict, match=f"The 'release' policy refuses iris:{artifact.version}: {refused}"
    ):
        promote(store, "iris", artifact.version, keys=keys)
    assert not store.in_repository(RELEASE_REPOSITORY, "iris", artifact.version)
    dry = promote(store, "iris", artifact.version, dry_run=True, keys=keys)
    assert dry.promoted is False and [c.stage for c in dry.decision.refused] == [refused.split()[0]]


def test_an_explicit_skip_allowance_lets_a_skipped_stage_through_and_says_so(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "skipped"})
    catalog = Catalog(store)
    with pytest.raises(InvalidInput, match="loosens the 'release' policy") as caught:
        catalog.set_policy(
            "release", change_policy(catalog.policy("release"), allow_skipped=["qa"]), None
        )
    assert "--reason" in (caught.value.hint or "")
    change = change_policy(catalog.policy("release"), allow_skipped=["qa"])
    catalog.set_policy("release", change, "no staging for this model yet")
    loosened = [e for e in store.events("release") if e.action == "repository.policy-loosened"]
    assert loosened[0].detail["loosened"] == ["qa"]
    assert loosened[0].detail["reason"] == "no staging for this model yet"
    result = promote(store, "iris", artifact.version, keys=keys)
    assert result.promoted
    assert "qa skipped (skip allowed by policy)" in result.decision.summary()
    promoted = next(
        e for e in store.events(f"iris:{artifact.version}") if e.action == "artifact.promoted"
    )
    assert "qa skipped (skip allowed by policy)" in promoted.detail["reason"]


def test_promote_into_an_immutable_repository_needs_a_key(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "passed"})
    with pytest.raises(InvalidInput, match="signs it, and no signing key was given"):
        promote(store, "iris", artifact.version)
    assert not store.in_repository(RELEASE_REPOSITORY, "iris", artifact.version)


def test_promote_to_a_mutable_repository_without_a_policy_does_not_sign(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    artifact = published(tree, tmp_path, store, blobs)
    Catalog(store).create_repository("candidates")
    result = promote(store, "iris", artifact.version, target="candidates")
    assert result.promoted and result.signed_by is None
    assert Catalog(store).signatures(artifact) == []


def test_promote_of_something_not_in_the_source_is_not_found(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    with pytest.raises(NotFound, match=r"iris:9\.9\.9 is not in the 'dev' repository"):
        promote(store, "iris", "9.9.9")
    published(tree, tmp_path, store, blobs)
    with pytest.raises(NotFound, match="There is no repository 'staging'"):
        promote(store, "iris", "1.0.0", source="staging", target="staging2")
    Catalog(store).create_repository("staging")
    with pytest.raises(NotFound, match="is not in the 'staging' repository"):
        promote(store, "iris", "1.0.0", source="staging")
    with pytest.raises(InvalidInput, match="to itself"):
        promote(store, "iris", "1.0.0", target="dev")
    with pytest.raises(InvalidInput, match="Invalid name"):
        promote(store, "../iris", "1.0.0")


def test_materialize_unpacks_and_reuses_a_complete_tree(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    published(tree, tmp_path, store, blobs)
    dest = tmp_path / "deploy" / "1.0.0"
    info = materialize(store, blobs, "iris", "1.0.0", dest, keys=keys)
    assert info["version"] == "1.0.0"
    assert (dest / "model" / "model.skops").read_bytes() == (
        tree.model / "model.skops"
    ).read_bytes()
    unpacked = dest.stat().st_ino
    cache = dest / "code" / "iris_model" / "__pycache__"
    cache.mkdir()
    (cache / "serve.cpython-311.pyc").write_bytes(b"bytecode nobody verified")
    assert materialize(store, blobs, "iris", "1.0.0", dest, keys=keys) == info
    assert dest.stat().st_ino == unpacked  # reused, not unpacked again
    assert not cache.exists()  # bytecode caches are deleted before a reuse, never trusted
    published(tree, tmp_path, store, blobs, version="2.0.0")
    assert materialize(store, blobs, "iris", "2.0.0", dest, keys=keys)["version"] == "2.0.0"
    assert dest.stat().st_ino != unpacked  # another digest: replaced as a whole
    assert [p.name for p in dest.parent.iterdir()] == ["1.0.0"]  # no temp folders left


def poison_the_model(tree: Path) -> None:
    (tree / "model" / "model.skops").write_bytes(b"poisoned")


def add_code(tree: Path) -> None:
    (tree / "code" / "iris_model" / "evil.py").write_text("import os\n")


def remove_the_lock(tree: Path) -> None:
    (tree / "lock" / "requirements.lock").unlink()


def redirect_a_link(tree: Path) -> None:
    (tree / "code" / "serve_link.py").unlink()
    os.symlink("../model/model.skops", tree / "code" / "serve_link.py")


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (poison_the_model, "model/model.skops was changed"),
        (add_code, "code/iris_model/evil.py was added"),
        (remove_the_lock, "lock/requirements.lock was removed"),
        (redirect_a_link, "code/serve_link.py was changed"),
    ],
)
def test_a_changed_deployment_tree_is_unpacked_again_from_the_blob(
    tree: Tree,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None],
    said: str,
) -> None:
    published(tree, tmp_path, store, blobs)
    dest = tmp_path / "deploy" / "1.0.0"
    materialize(store, blobs, "iris", "1.0.0", dest, keys=keys)
    original = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    damage(dest)
    with caplog.at_level(logging.WARNING, logger="shipyard.artifacts.repository"):
        materialize(store, blobs, "iris", "1.0.0", dest, keys=keys)
    assert said in caplog.text and "unpacking iris:1.0.0 again" in caplog.text
    assert {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()} == original
    assert os.readlink(dest / "code" / "serve_link.py") == "iris_model/serve.py"
    assert [p.name for p in dest.parent.iterdir()] == ["1.0.0"]


@pytest.mark.parametrize("case", list(hostile.cases(Path("/tmp/outside"))))
def test_materialize_refuses_a_hostile_blob_and_leaves_no_tree(
    tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile, case: str
) -> None:
    outside = tmp_path / "outside"
    (outside / "deployments").mkdir(parents=True)
    (outside / "outside.txt").write_text("a file a hard link may not reach")
    evil = hostile.build(tmp_path / "evil.tar.gz", hostile.cases(outside)[case])
    found = digest_of(evil)
    packed = PackedArtifact(evil, found.digest, found.size)
    publish(store, blobs, packed, {"name": "iris", "version": "6.6.6"}, run_id=None)
    before = hostile.snapshot(outside)
    dest = outside / "deployments" / "6.6.6"
    with pytest.raises(InvalidInput, match="it holds an unsafe member '"):
        materialize(store, blobs, "iris", "6.6.6", dest, keys=keys)
    assert hostile.snapshot(outside) == before  # no dest, no .6.6.6.* temp tree, no escape


def test_materialize_verifies_the_digest(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = published(tree, tmp_path, store, blobs)
    stored = blobs.path(artifact.digest)
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    dest = tmp_path / "deploy"
    with pytest.raises(
        BlobError, match=f"iris:1.0.0 cannot be deployed: blob {artifact.digest} is corrupt"
    ):
        materialize(store, blobs, "iris", "1.0.0", dest, keys=keys)
    assert not dest.exists()
    assert list(tmp_path.glob(".deploy*")) == []
    with pytest.raises(NotFound, match=r"There is no artifact iris:3\.0"):
        materialize(store, blobs, "iris", "3.0", dest, keys=keys)


def test_materialize_refuses_a_folder_of_other_files(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    published(tree, tmp_path, store, blobs)
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("do not delete")
    with pytest.raises(InvalidInput, match="did not come from an artifact"):
        materialize(store, blobs, "iris", "1.0.0", dest, keys=keys)
    assert (dest / "notes.txt").read_text() == "do not delete"


def released(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> Artifact:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "passed"})
    promote(store, "iris", artifact.version, keys=keys)
    return artifact


def test_a_release_artifact_deploys_when_its_signature_verifies(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = released(tree, tmp_path, store, blobs, keys)
    info = materialize(store, blobs, "iris", artifact.version, tmp_path / "deploy", keys=keys)
    assert info["version"] == artifact.version


def edit_signature(store: Store, artifact: Artifact, **values: str) -> None:
    with store.session() as s:
        for row in s.scalars(select(Signature).where(Signature.artifact_id == artifact.id)):
            for key, value in values.items():
                setattr(row, key, value)


@pytest.mark.parametrize(
    ("tamper", "what"),
    [
        ("value", "its signature does not verify for digest"),
        ("digest", "its signature does not verify for digest sha256:0000"),
        ("missing", "it has no signature"),
        ("other key", "it is signed by key ed25519:"),
    ],
)
def test_a_tampered_signature_stops_the_deploy_naming_the_artifact(
    tree: Tree,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    tamper: str,
    what: str,
) -> None:
    artifact = released(tree, tmp_path, store, blobs, keys)
    if tamper == "value":
        signature = Catalog(store).signatures(artifact)[0].value
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        edit_signature(store, artifact, value=flipped)
    elif tamper == "digest":  # the record now points at other bytes: the statement changed
        with store.session() as s:
            row = s.get(Artifact, artifact.id)
            assert row is not None
            row.digest = "sha256:" + "0" * 64
    elif tamper == "missing":
        with store.session() as s:
            s.execute(delete(Signature))
    else:
        other = KeyFile(tmp_path / "other.key", create=True)
        edit_signature(store, artifact, key_id=other.signer().key_id)
    dest = tmp_path / "deploy"
    with pytest.raises(
        SignatureError, match=f"iris:{artifact.version} cannot be deployed from 'release': {what}"
    ):
        materialize(store, blobs, "iris", artifact.version, dest, keys=keys)
    assert not dest.exists()


def test_a_tampered_release_blob_stops_the_deploy_naming_the_artifact(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = released(tree, tmp_path, store, blobs, keys)
    stored = blobs.path(artifact.digest)
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[-100] ^= 0x01
    stored.write_bytes(bytes(data))
    with pytest.raises(
        BlobError, match=f"iris:{artifact.version} cannot be deployed: blob .* is corrupt"
    ):
        materialize(store, blobs, "iris", artifact.version, tmp_path / "deploy", keys=keys)


def test_verification_with_a_public_key_only_and_without_any_key(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = released(tree, tmp_path, store, blobs, keys)
    public = tmp_path / "release.pub"
    public.write_text(public_pem(keys.trusted()))
    verify_signature(store, artifact, KeyFile(public, create=False))  # a production host
    with pytest.raises(SignatureError, match="there is no signing key at"):
        verify_signature(store, artifact, KeyFile(tmp_path / "absent.key", create=False))
