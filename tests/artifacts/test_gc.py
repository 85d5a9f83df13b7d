"""Retention and garbage collection on real files and a real store."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from shipyard.artifacts import KeyFile, LocalBlobStore, promote
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.gc import collect, format_age, parse_age, plan
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.models import Artifact, ArtifactRef, Deployment, utcnow
from shipyard.store.store import Store

from .conftest import PASSING, Tree, publish_run


def builds(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, count: int
) -> list[Artifact]:
    return [
        publish_run(tree, tmp_path / f"out{i}", store, blobs, {**PASSING, "qa": "passed"}, n=i)
        for i in range(count)
    ]


def age_refs(store: Store, days: int) -> None:
    with store.session() as s:
        s.execute(update(ArtifactRef).values(created_at=utcnow() - timedelta(days=days)))


def test_keep_last_expires_old_dev_builds_but_never_release_or_deployed(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore, keys: KeyFile
) -> None:
    made = builds(tree, tmp_path, store, blobs, 5)  # versions 1..5, newest last
    promote(store, "iris", made[0].version, keys=keys)  # the oldest is released
    store.save_deployment(
        Deployment(
            project="iris",
            environment="staging",
            version=made[1].version,
            artifact_id=made[1].id,
            role="stable",
            state="ready",
        ),
        "started",
    )
    Catalog(store).set_retention("dev", 2, None)
    preview = plan(store, blobs, grace=0)
    assert [e.ref for e in preview.expired] == [f"iris:{made[2].version}"]
    assert preview.expired[0].why == "not among the newest 2"
    assert preview.deleted == [f"iris:{made[2].version}"]
    assert [b.digest for b in preview.blobs] == [made[2].digest]
    assert store.in_repository("dev", "iris", made[2].version)  # the plan changed nothing
    done = collect(store, blobs, grace=0)
    assert done.deleted == preview.deleted and [b.digest for b in done.blobs] == [made[2].digest]
    assert not blobs.exists(made[2].digest)
    for kept in (made[0], made[1], made[3], made[4]):
        assert blobs.exists(kept.digest)
    with pytest.raises(NotFound, match="removed by garbage collection"):
        store.get_artifact("iris", made[2].version)
    actions = [e.action for e in store.events(f"iris:{made[2].version}")]
    assert {"artifact.expired", "artifact.deleted"} <= set(actions)
    assert plan(store, blobs, grace=0).expired == []  # nothing more to do


def test_max_age_and_keep_last_together_keep_what_either_keeps(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    made = builds(tree, tmp_path, store, blobs, 3)
    age_refs(store, days=40)
    Catalog(store).set_retention("dev", 1, parse_age("30d"))
    expired = plan(store, blobs, grace=0).expired
    assert [e.ref for e in expired] == [f"iris:{a.version}" for a in (made[1], made[0])]
    assert expired[0].why == "not among the newest 1 and older than 30d"
    Catalog(store).set_retention("dev", None, parse_age("90d"))
    assert plan(store, blobs, grace=0).expired == []


def test_unreferenced_blobs_go_after_the_grace_and_temporaries_too(
    tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    stray = tmp_path / "stray.bin"
    stray.write_bytes(b"left by a push whose process died before recording it")
    blob = blobs.put(stray)
    temp = blobs.root / "tmp" / ".blob-dead.part"
    temp.write_bytes(b"half")
    assert plan(store, blobs).blobs == []  # within the default grace: could be a push in flight
    old = time.time() - 7200
    os.utime(blobs.path(blob.digest), (old, old))
    os.utime(temp, (old, old))
    done = collect(store, blobs)
    assert [b.digest for b in done.blobs] == [blob.digest] and done.temporaries == [temp]
    assert not blobs.exists(blob.digest) and not temp.exists()


def test_a_blob_reused_by_a_put_survives_a_concurrent_delete(
    tmp_path: Path, blobs: LocalBlobStore
) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"shared bytes")
    blob = blobs.put(source)
    old = time.time() - 7200
    os.utime(blobs.path(blob.digest), (old, old))
    blobs.put(source)  # a push reusing it marks it fresh...
    assert blobs.delete(blob.digest, older_than=3600) is False  # ...so gc keeps it
    assert blobs.exists(blob.digest)
    assert blobs.delete(blob.digest, older_than=0) is True
    assert not blobs.exists(blob.digest) and blobs.delete(blob.digest) is False


def test_ages_parse_and_print() -> None:
    assert parse_age("30d") == 30 * 86400 and parse_age("2w") == 14 * 86400
    assert format_age(parse_age("90m")) == "90m" and format_age(86400 * 14) == "2w"
    for bad in ("", "30", "0d", "1y", "-1d"):
        with pytest.raises(InvalidInput, match="is not an age"):
            parse_age(bad)
