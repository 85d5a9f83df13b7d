"""Fixtures for the artifact tests: a blob store, a project tree to pack, a real SQLite store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.artifacts import KeyFile, LocalBlobStore, PackedArtifact, pack, publish
from shipyard.artifacts.attestations import ATTESTED_STAGES
from shipyard.artifacts.keys import trust_key
from shipyard.artifacts.properties import stage_properties
from shipyard.artifacts.signing import public_pem
from shipyard.domain import Status
from shipyard.store.models import Artifact
from shipyard.store.store import Store


@dataclass(frozen=True)
class Tree:
    model: Path
    code: Path
    lock: Path

    def pack(self, out: Path, **build_info: object) -> PackedArtifact:
        info = {"name": "iris", "version": "1.0.0", **build_info}
        return pack(
            out, model_dir=self.model, code_dir=self.code, lock_file=self.lock, build_info=info
        )


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """A model folder, a code checkout (with the clutter packing must skip) and a lock file."""
    model, code = tmp_path / "src" / "model", tmp_path / "src" / "code"
    (model / "weights").mkdir(parents=True)
    (model / "model.skops").write_bytes(os.urandom(50_000))
    (model / "weights" / "layer.bin").write_bytes(b"\x00\x01" * 1000)
    for folder in ("iris_model/__pycache__", ".git", ".shipyard/runs", "scripts"):
        (code / folder).mkdir(parents=True)
    (code / "iris_model" / "serve.py").write_text("class Model: ...\n")
    (code / "iris_model" / "__pycache__" / "serve.cpython-311.pyc").write_bytes(b"pyc")
    (code / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (code / ".shipyard" / "runs" / "log").write_text("state\n")
    (code / "scripts" / "train.sh").write_text("#!/bin/sh\n")
    (code / "scripts" / "train.sh").chmod(0o700)
    os.symlink("iris_model/serve.py", code / "serve_link.py")
    lock = tmp_path / "src" / "requirements.lock"
    lock.write_text("scikit-learn==1.5.0\n")
    return Tree(model, code, lock)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def keys(tmp_path: Path) -> KeyFile:
    """The default kind of key: created on first use."""
    return KeyFile(tmp_path / "keys" / "signing.key", create=True)


PASSING = {"build": "passed", "test": "passed", "analyze": "passed", "publish": "passed"}


def run_with(store: Store, statuses: dict[str, str], project: str = "iris") -> tuple[int, int]:
    """A real run of ``project`` whose stages ended with ``statuses``: (run id, run number)."""
    store.ensure_project(project, f"/repos/{project}")
    run = store.create_run(project, "ab12cd34" * 5, "main")
    for stage, status in statuses.items():
        store.set_stage_status(project, run.number, stage, Status(status))
    return run.id, run.number


def publish_run(
    tree: Tree,
    out: Path,
    store: Store,
    blobs: LocalBlobStore,
    statuses: dict[str, str],
    **build_info: object,
) -> Artifact:
    """Pack and publish an artifact of a run with ``statuses``, versioned ``<run>-ab12cd3``.

    As the pipeline does, the build and the results of test, analyze and qa are signed with
    the key beside the blob store (``<root>/keys/signing.key``: the ``keys`` fixture, or the
    state directory's key).
    """
    run_id, number = run_with(store, statuses)
    info = {"name": "iris", "version": f"{number}-ab12cd3", "run": number, **build_info}
    packed = tree.pack(out, **info)
    results = {
        stage: stage_properties(stage, status, {})
        for stage, status in statuses.items()
        if stage in ATTESTED_STAGES
    }
    keys = KeyFile(blobs.root.parent / "keys" / "signing.key", create=True)
    return publish(store, blobs, packed, info, run_id=run_id, keys=keys, results=results)


@dataclass
class Machine:
    """Another Shipyard instance: its own store, blob folder and signing key."""

    store: Store
    blobs: LocalBlobStore
    keys: KeyFile

    def blob_files(self) -> list[Path]:
        return [p for p in (self.blobs.root / "sha256").rglob("*") if p.is_file()]

    def trust(self, keys: KeyFile) -> str:
        """Trust the public half of ``keys`` here, as `shipyard artifacts key trust` does."""
        pem = self.keys.path.parent / "their.pub"
        pem.parent.mkdir(parents=True, exist_ok=True)
        pem.write_text(public_pem(keys.trusted()))
        return trust_key(self.keys, pem)


@pytest.fixture
def other(tmp_path: Path) -> Iterator[Machine]:
    root = tmp_path / "other"
    store = Store(f"sqlite:///{root}/s.db")
    yield Machine(
        store, LocalBlobStore(root / "blobs"), KeyFile(root / "keys" / "signing.key", create=True)
    )
    store.close()
