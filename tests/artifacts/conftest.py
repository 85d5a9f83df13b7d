"""Fixtures for the artifact tests: a blob store, a project tree to pack, a real SQLite store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.artifacts import LocalBlobStore, PackedArtifact, pack
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
