"""fsck against real damage: flipped bytes, deleted blobs, dangling refs, forged signatures."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from shipyard.artifacts import KeyFile, LocalBlobStore, materialize, promote
from shipyard.artifacts.fsck import fsck
from shipyard.paths import StateDir
from shipyard.store.models import Artifact, Signature, utcnow
from shipyard.store.store import Store

from .conftest import PASSING, Tree, publish_run


def test_a_clean_repository_passes(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": "passed"})
    promote(store, "iris", artifact.version, keys=keys)
    seen: list[int] = []
    report = fsck(store, blobs, keys=keys, progress=seen.append)
    assert report.ok and (report.blobs, report.artifacts) == (1, 1)
    assert sum(seen) == report.bytes == artifact.size


def test_every_kind_of_damage_is_reported(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    made = [
        publish_run(tree, tmp_path / f"o{i}", store, blobs, {**PASSING, "qa": "passed"}, n=i)
        for i in range(4)
    ]
    corrupt, missing, forged, dangling = made
    stored = blobs.path(corrupt.digest)
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes()[:-1] + b"!")
    blobs.path(missing.digest).unlink()
    promote(store, "iris", forged.version, keys=keys)
    with store.session() as s:
        s.execute(update(Signature).values(value="AAAA" + "A" * 84))
        s.execute(update(Artifact).where(Artifact.id == dangling.id).values(deleted_at=utcnow()))
    unused = tmp_path / "unused.bin"
    unused.write_bytes(b"nobody's")
    blobs.put(unused)
    report = fsck(store, blobs, keys=keys)
    found = {(p.kind, p.subject) for p in report.problems}
    assert found == {
        ("corrupt", corrupt.digest),
        ("missing", f"iris:{missing.version}"),
        ("signature", f"iris:{forged.version}"),
        ("dangling", f"dev/iris:{dangling.version}"),
    }
    details = {p.kind: p.detail for p in report.problems}
    assert f"used by iris:{corrupt.version}" in details["corrupt"]
    assert "does not verify" in details["signature"]
    assert not report.ok and len(report.unused) == 2  # the stray blob and the deleted one's


def test_a_modified_deployment_tree_is_reported_with_its_files(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, PASSING)
    state = StateDir(tmp_path / "state")
    for environment in ("staging", "production"):
        dest = state.deployment_dir("iris", environment, artifact.version)
        materialize(store, blobs, "iris", artifact.version, dest, keys=keys)
    assert fsck(store, blobs, keys=keys, trees=state.deployment_dirs()).ok
    production = state.deployment_dir("iris", "production", artifact.version)
    (production / "code" / "iris_model" / "serve.py").write_text("import os; os.system('id')\n")
    (production / "model" / "extra.pkl").write_bytes(b"added later")
    report = fsck(store, blobs, keys=keys, trees=state.deployment_dirs())
    assert [(p.kind, p.subject) for p in report.problems] == [("modified", str(production))]
    detail = report.problems[0].detail
    assert "code/iris_model/serve.py was changed" in detail
    assert "model/extra.pkl was added" in detail
    assert not report.ok
