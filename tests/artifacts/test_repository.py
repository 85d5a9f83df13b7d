"""publish / promote / materialize with a real SQLite store and a real blob directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.artifacts import (
    BlobError,
    LocalBlobStore,
    materialize,
    promote,
    publish,
    validate_name,
    validate_version,
)
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.store.models import Artifact
from shipyard.store.store import Store

from .conftest import Tree

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


def test_promote_is_metadata_only_and_idempotent(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    artifact = published(tree, tmp_path, store, blobs)
    blob_files = sorted(blobs.root.rglob("*"))
    assert promote(store, "iris", "1.0.0", dry_run=True) is True
    assert not store.in_repository(RELEASE_REPOSITORY, "iris", "1.0.0")  # dry run changed nothing
    assert promote(store, "iris", "1.0.0", reason="QA passed") is True
    assert store.in_repository(RELEASE_REPOSITORY, "iris", "1.0.0")
    assert promote(store, "iris", "1.0.0") is False
    assert promote(store, "iris", "1.0.0", dry_run=True) is False
    assert sorted(blobs.root.rglob("*")) == blob_files  # no bytes copied
    [(listed, repositories)] = store.list_artifacts(name="iris")
    assert listed.digest == artifact.digest and repositories == ["dev", "release"]
    promotions = [e for e in store.events("iris:1.0.0") if e.action == "artifact.promoted"]
    assert len(promotions) == 1
    assert promotions[0].detail == {"source": "dev", "target": "release", "reason": "QA passed"}


def test_promote_of_something_not_in_the_source_is_not_found(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    with pytest.raises(NotFound, match=r"iris:9\.9\.9 is not in the 'dev' repository"):
        promote(store, "iris", "9.9.9")
    published(tree, tmp_path, store, blobs)
    with pytest.raises(NotFound, match="is not in the 'staging' repository"):
        promote(store, "iris", "1.0.0", source="staging")
    with pytest.raises(InvalidInput, match="to itself"):
        promote(store, "iris", "1.0.0", target="dev")
    with pytest.raises(InvalidInput, match="Invalid name"):
        promote(store, "../iris", "1.0.0")


def test_materialize_unpacks_and_reuses_a_complete_tree(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    published(tree, tmp_path, store, blobs)
    dest = tmp_path / "deploy" / "1.0.0"
    info = materialize(store, blobs, "iris", "1.0.0", dest)
    assert info["version"] == "1.0.0"
    assert (dest / "model" / "model.skops").read_bytes() == (
        tree.model / "model.skops"
    ).read_bytes()
    (dest / "model" / "sentinel").write_text("kept when the tree is reused")
    assert materialize(store, blobs, "iris", "1.0.0", dest) == info
    assert (dest / "model" / "sentinel").exists()
    published(tree, tmp_path, store, blobs, version="2.0.0")
    assert materialize(store, blobs, "iris", "2.0.0", dest)["version"] == "2.0.0"
    assert not (dest / "model" / "sentinel").exists()  # another digest: replaced as a whole
    assert [p.name for p in dest.parent.iterdir()] == ["1.0.0"]  # no temp folders left


def test_materialize_verifies_the_digest(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    artifact = published(tree, tmp_path, store, blobs)
    stored = blobs.path(artifact.digest)
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    dest = tmp_path / "deploy"
    with pytest.raises(BlobError, match=f"blob {artifact.digest} is corrupt"):
        materialize(store, blobs, "iris", "1.0.0", dest)
    assert not dest.exists()
    assert list(tmp_path.glob(".deploy*")) == []
    with pytest.raises(NotFound, match=r"There is no artifact iris:3\.0"):
        materialize(store, blobs, "iris", "3.0", dest)


def test_materialize_refuses_a_folder_of_other_files(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    published(tree, tmp_path, store, blobs)
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("do not delete")
    with pytest.raises(InvalidInput, match="did not come from an artifact"):
        materialize(store, blobs, "iris", "1.0.0", dest)
    assert (dest / "notes.txt").read_text() == "do not delete"
