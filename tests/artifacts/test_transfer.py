"""pull and push between two real state directories (two stores, two blob folders, two keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.artifacts import KeyFile, LocalBlobStore, promote
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.transfer import manifest_path, pull, push
from shipyard.errors import Conflict, InvalidInput
from shipyard.store.models import Artifact
from shipyard.store.store import Store

from . import hostile
from .conftest import PASSING, Machine, Tree, publish_run


@pytest.fixture
def released(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> Artifact:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "passed"})
    Catalog(store).set_properties(artifact, {"qa.status": "passed", "team": "vision"})
    promote(store, "iris", artifact.version, keys=keys)
    return artifact


def test_pull_writes_the_exact_bytes_and_a_manifest(
    released: Artifact, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    out = tmp_path / "moved" / "iris.tar.gz"
    done = pull(store, blobs, "iris", released.version, out, keys=keys)
    assert out.read_bytes() == blobs.path(released.digest).read_bytes()
    manifest = json.loads(manifest_path(out).read_text())
    assert (manifest["name"], manifest["digest"], manifest["size"]) == (
        "iris",
        released.digest,
        released.size,
    )
    assert manifest["repositories"] == ["dev", "release"]
    assert manifest["properties"]["team"] == "vision"
    assert [s["key_id"] for s in manifest["signatures"]] == [keys.signer().key_id]
    assert done.manifest == manifest_path(out)


def test_push_on_another_machine_carries_properties_and_stage_results(
    released: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", released.version, out, keys=keys)
    done = push(other.store, other.blobs, out)
    assert done.created and done.digest == released.digest
    assert other.store.in_repository("dev", "iris", released.version)
    props = Catalog(other.store).properties(other.store.get_artifact("iris", released.version))
    assert props["team"] == "vision" and props["origin.signed-by"] == keys.signer().key_id
    assert props["test.status"] == props["qa.status"] == "passed"
    # The other machine trusts this one's key: its policy reads the imported signed results
    # and signs the release with its own key.
    other.trust(keys)
    result = promote(other.store, "iris", released.version, keys=other.keys)
    assert result.promoted and result.decision.evidence == "imported stage results"
    assert result.signed_by == other.keys.signer().key_id != keys.signer().key_id
    again = push(other.store, other.blobs, out)
    assert not again.created
    assert len(other.blob_files()) == 1


def test_push_without_a_manifest_arrives_bare_and_release_refuses_it(
    released: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", released.version, out, keys=keys)
    manifest_path(out).unlink()
    done = push(other.store, other.blobs, out)
    assert done.manifest is None
    with pytest.raises(Conflict, match="test unknown, analyze unknown, qa unknown"):
        promote(other.store, "iris", released.version, keys=other.keys)


def test_damaged_files_are_refused_and_leave_nothing_visible(
    released: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", released.version, out, keys=keys)
    data = out.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    manifest_path(cut).write_text(manifest_path(out).read_text())
    with pytest.raises(InvalidInput, match=f"{cut} is not a Shipyard artifact: it is truncated"):
        push(other.store, other.blobs, cut)
    flipped = tmp_path / "flipped.tar.gz"
    changed = bytearray(data)
    changed[100] ^= 0x01
    flipped.write_bytes(bytes(changed))
    manifest_path(flipped).write_text(manifest_path(out).read_text())
    with pytest.raises(InvalidInput, match=f"{flipped}"):
        push(other.store, other.blobs, flipped)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello\n" * 1000)
    with pytest.raises(InvalidInput, match="not a gzip file"):
        push(other.store, other.blobs, foreign)
    with pytest.raises(InvalidInput, match="there is no such file"):
        push(other.store, other.blobs, tmp_path / "absent.tar.gz")
    assert other.blob_files() == []
    assert other.store.list_artifacts() == []
    assert [p.name for p in (other.blobs.root / "tmp").iterdir()] == []


def test_an_edited_manifest_is_refused_before_anything_is_read(
    released: Artifact,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    keys: KeyFile,
    other: Machine,
) -> None:
    out = tmp_path / "iris.tar.gz"
    pull(store, blobs, "iris", released.version, out, keys=keys)
    manifest = json.loads(manifest_path(out).read_text())
    manifest["digest"] = "sha256:" + "0" * 64  # e.g. to pass off other bytes
    manifest_path(out).write_text(json.dumps(manifest))
    with pytest.raises(InvalidInput, match=r"signature by ed25519:.* does not hold"):
        push(other.store, other.blobs, out)
    manifest_path(out).write_text('{"format": "something else"}')
    with pytest.raises(InvalidInput, match="is not a Shipyard manifest"):
        push(other.store, other.blobs, out)
    assert other.store.list_artifacts() == []


def test_other_bytes_under_a_released_version_are_refused(
    released: Artifact,
    tree: Tree,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
) -> None:
    impostor = tree.pack(tmp_path / "impostor", name="iris", version=released.version, note="x")
    with pytest.raises(Conflict, match="in the immutable 'release' repository with digest"):
        push(store, blobs, impostor.path)
    assert store.get_artifact("iris", released.version).digest == released.digest
    with pytest.raises(InvalidInput, match="it is immutable, and only promotion fills it"):
        push(store, blobs, impostor.path, repository="release")


@pytest.mark.parametrize(
    ("name", "version", "error"),
    [
        ("../iris", "1", "Invalid name"),
        ("iris", "1/../../x", "Invalid version"),
        ("Iris", "1", "Invalid name"),
    ],
)
def test_a_pushed_archive_with_a_bad_name_or_version_is_refused(
    tree: Tree,
    tmp_path: Path,
    store: Store,
    blobs: LocalBlobStore,
    name: str,
    version: str,
    error: str,
) -> None:
    packed = tree.pack(tmp_path / "out", name=name, version=version)
    with pytest.raises(InvalidInput, match=error):
        push(store, blobs, packed.path)
    assert store.list_artifacts() == []
    assert [p for p in (blobs.root / "sha256").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("case", list(hostile.cases(Path("/tmp/outside"))))
def test_push_refuses_every_way_out_of_the_tree_naming_the_member(
    tmp_path: Path, store: Store, blobs: LocalBlobStore, case: str
) -> None:
    evil = hostile.build(tmp_path / "evil.tar.gz", hostile.cases(tmp_path / "outside")[case])
    with pytest.raises(
        InvalidInput, match=f"{evil} is not a Shipyard artifact: it holds an unsafe member '"
    ):
        push(store, blobs, evil)
    assert store.list_artifacts() == []
    assert [p for p in (blobs.root / "sha256").rglob("*") if p.is_file()] == []
