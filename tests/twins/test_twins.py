"""The twins keep the contracts of the seams they stand in for.

The blob store twin answers exactly as the local store does (the same tests run on both);
the executor twin runs registered callables; the store twin is one in-memory SQLite database
shared by every thread.
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import pytest

from shipyard.artifacts.interface import BlobError, BlobStore
from shipyard.artifacts.local import LocalBlobStore
from shipyard.artifacts.memory import MemoryBlobStore
from shipyard.coordination.store import StoreLeases
from shipyard.errors import ExecutorError, InvalidInput
from shipyard.executor.interface import CommandResult
from shipyard.executor.memory import Call, MemoryExecutor
from shipyard.store import Store

DATA = b"model weights " * 1000
DIGEST = f"sha256:{hashlib.sha256(DATA).hexdigest()}"


@pytest.fixture(params=["local", "memory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return LocalBlobStore(tmp_path / "blobs") if request.param == "local" else MemoryBlobStore()


def test_blobs_are_stored_once_fetched_and_checked(blobs: BlobStore, tmp_path: Path) -> None:
    first = blobs.put(io.BytesIO(DATA))
    again = blobs.put(io.BytesIO(DATA), expect=DIGEST)

    assert first == again and (first.digest, first.size) == (DIGEST, len(DATA))
    assert [b.digest for b in blobs.blobs()] == [DIGEST]
    assert blobs.fetch(DIGEST, tmp_path / "out" / "a.bin") == first
    assert (tmp_path / "out" / "a.bin").read_bytes() == DATA
    assert blobs.check(DIGEST) == first and blobs.exists(DIGEST)


def test_blob_errors_are_the_same_on_both(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(BlobError, match=f"have digest {DIGEST}, not sha256:0"):
        blobs.put(io.BytesIO(DATA), expect="sha256:" + "0" * 64)
    assert list(blobs.blobs()) == []  # a refused put leaves nothing
    with pytest.raises(BlobError, match=f"blob {DIGEST} is missing") as missing:
        blobs.fetch(DIGEST, tmp_path / "a.bin")
    assert missing.value.hint is not None and "Publish the artifact again" in missing.value.hint
    with pytest.raises(InvalidInput, match="is not a blob digest"):
        blobs.exists("md5:abc")
    assert not (tmp_path / "a.bin").exists()


def test_delete_spares_a_blob_written_lately(blobs: BlobStore) -> None:
    blobs.put(io.BytesIO(DATA))
    assert not blobs.delete(DIGEST, older_than=3600)
    assert blobs.delete(DIGEST) and not blobs.exists(DIGEST)
    assert not blobs.delete(DIGEST)


def test_a_corrupt_blob_is_refused_on_fetch(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    blobs.put(io.BytesIO(DATA))
    blobs.corrupt(DIGEST, b"flipped bits")

    with pytest.raises(BlobError, match=f"blob {DIGEST} is corrupt"):
        blobs.fetch(DIGEST, tmp_path / "a.bin")
    assert blobs.check(DIGEST).digest != DIGEST


def run(
    executor: MemoryExecutor,
    command: str,
    log: Path,
    seen: list[str],
    env: dict[str, str] | None = None,
    *,
    cancel: bool = False,
) -> CommandResult:
    return executor.run(
        command,
        cwd=log.parent,
        env=env or {},
        log=log,
        timeout=60.0,
        should_cancel=lambda: cancel,
        on_output=seen.append,
    )


def test_the_executor_twin_runs_what_the_test_registered(tmp_path: Path) -> None:
    executor = MemoryExecutor(tmp_path / "envs")
    log = tmp_path / "logs" / "build.log"
    seen: list[str] = []

    def train(call: Call) -> int:
        call.say(f"training with {call.env['SEED']}")
        return 0

    executor.on("python train.py", train)
    executor.on("pytest -q", CommandResult(1, 2.5))
    executor.on("ruff check", 0)

    trained = run(executor, "python train.py", log, seen, {"SEED": "7"})
    tested = run(executor, "pytest -q", log, seen)
    linted = run(executor, "ruff check", log, seen)
    unknown = run(executor, "make model", log, seen)
    cancelled = run(executor, "python train.py", log, seen, cancel=True)

    assert trained.ok and linted.ok and not tested.ok and tested.duration == 2.5
    assert unknown.exit_code == 127 and "make model: command not found" in seen[-1]
    assert cancelled.cancelled and not cancelled.ok
    assert seen[0] == "training with 7" and log.read_text().splitlines()[0] == seen[0]
    assert [c.command for c in executor.calls][:4] == [
        "python train.py",
        "pytest -q",
        "ruff check",
        "make model",
    ]


def test_the_executor_twin_keeps_workspaces_and_environments(tmp_path: Path) -> None:
    executor = MemoryExecutor(tmp_path / "envs")
    lock = tmp_path / "requirements.txt"
    lock.write_text("scikit-learn==1.5.0\n")

    workspace = executor.prepare_workspace(tmp_path / "repo", "abc123", tmp_path / "ws")
    with pytest.raises(ExecutorError, match="already exists"):
        executor.prepare_workspace(tmp_path / "repo", "abc123", tmp_path / "ws")
    first, second = executor.python_env(lock, "3.11"), executor.python_env(lock, "3.11")
    executor.release_workspace(tmp_path / "repo", workspace)

    assert not workspace.exists() and executor.workspaces == {}
    assert (first.reused, second.reused) == (False, True) and first.key == second.key
    assert executor.python_env(lock, "3.12").key != first.key
    env = executor.command_env(first, {"SHIPYARD_MODEL_DIR": "/m"})
    assert env == {"PATH": str(first.bin), "SHIPYARD_MODEL_DIR": "/m"}


def test_the_store_twin_is_one_database_for_every_thread() -> None:
    store = Store("sqlite://")
    store.ensure_project("iris", "/repos/iris")
    numbers: list[int] = []
    lock = threading.Lock()

    def queue() -> None:
        for _ in range(10):
            run = store.create_run("iris", "a" * 40, "main")
            with lock:
                numbers.append(run.number)

    threads = [threading.Thread(target=queue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(numbers) == list(range(1, 41))  # no number twice: one transaction at a time
    leases = StoreLeases(store)
    assert leases.acquire("run:iris#1", "worker-a") and not leases.acquire("run:iris#1", "worker-b")
    assert Store("sqlite://").list_projects() == []  # each twin is a database of its own
    store.close()
