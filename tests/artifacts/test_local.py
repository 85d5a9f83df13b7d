"""LocalBlobStore against the real filesystem and real, concurrently running, killed processes."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.artifacts import BlobError, LocalBlobStore, digest_of
from shipyard.errors import InvalidInput

PUT_WHEN_TOLD = """
import sys, time
from pathlib import Path
from shipyard.artifacts.local import LocalBlobStore
store, source, go = LocalBlobStore(Path(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
print(store.put(source).digest, flush=True)
"""

PUT = """
import sys
from pathlib import Path
from shipyard.artifacts.local import LocalBlobStore
LocalBlobStore(Path(sys.argv[1])).put(Path(sys.argv[2]))
"""


def stored_files(blobs: LocalBlobStore) -> list[Path]:
    return [path for path in (blobs.root / "sha256").rglob("*") if path.is_file()]


def test_put_then_fetch_round_trip(blobs: LocalBlobStore, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # spans several 1 MiB chunks
    blob = blobs.put(source)
    assert blob == digest_of(source)
    assert blob.size == source.stat().st_size
    assert blobs.exists(blob.digest)
    hex_digest = blob.digest.removeprefix("sha256:")
    assert blobs.path(blob.digest) == blobs.root / "sha256" / hex_digest[:2] / hex_digest
    fetched = blobs.fetch(blob.digest, tmp_path / "out" / "copy.bin")
    assert fetched == blob
    assert (tmp_path / "out" / "copy.bin").read_bytes() == source.read_bytes()
    assert list((blobs.root / "tmp").iterdir()) == []


def test_identical_bytes_are_stored_once(blobs: LocalBlobStore, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"same bytes")
    second.write_bytes(b"same bytes")
    assert blobs.put(first) == blobs.put(second)
    assert len(stored_files(blobs)) == 1
    assert list((blobs.root / "tmp").iterdir()) == []


def test_fetch_of_a_missing_blob_names_the_digest_and_the_store(
    blobs: LocalBlobStore, tmp_path: Path
) -> None:
    digest = "sha256:" + "ab" * 32
    with pytest.raises(BlobError, match=f"blob {digest} is missing from {blobs.root}"):
        blobs.fetch(digest, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("digest", ["", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "G" * 64])
def test_a_malformed_digest_is_refused(blobs: LocalBlobStore, digest: str) -> None:
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        blobs.exists(digest)


def test_tampered_blob_is_refused_and_leaves_no_dest(blobs: LocalBlobStore, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"model weights" * 1000)
    blob = blobs.put(source)
    stored = blobs.path(blob.digest)
    stored.chmod(0o644)
    stored.write_bytes(b"evil weights" * 1000)
    dest_dir = tmp_path / "dest"
    with pytest.raises(BlobError, match=f"blob {blob.digest} is corrupt") as caught:
        blobs.fetch(blob.digest, dest_dir / "model.bin")
    assert digest_of(stored).digest in str(caught.value)
    assert list(dest_dir.iterdir()) == []


def test_concurrent_puts_of_the_same_bytes_both_succeed(
    blobs: LocalBlobStore, tmp_path: Path
) -> None:
    source, go = tmp_path / "big.bin", tmp_path / "go"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    args = [sys.executable, "-c", PUT_WHEN_TOLD, str(blobs.root), str(source), str(go)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()  # both are past their imports: the two puts overlap
        results = [proc.communicate(timeout=30) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    expected = digest_of(source).digest
    assert [proc.returncode for proc in procs] == [0, 0]
    assert [out.strip() for out, _ in results] == [expected, expected]
    assert stored_files(blobs) == [blobs.path(expected)]
    assert digest_of(blobs.path(expected)).digest == expected
    assert list((blobs.root / "tmp").iterdir()) == []


def open_fifo_writer(fifo: Path, timeout: float) -> int:
    """Open the FIFO for writing once the reader has it open (ENXIO until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        os.set_blocking(fd, True)
        return fd


def wait_for_partial_write(temp_dir: Path, at_least: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sizes = [path.stat().st_size for path in temp_dir.glob("*")] if temp_dir.exists() else []
        if sizes and max(sizes) >= at_least:
            return
        time.sleep(0.01)
    raise AssertionError("the writer never started writing its temporary file")


def test_a_put_killed_mid_write_leaves_no_blob(blobs: LocalBlobStore, tmp_path: Path) -> None:
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-c", PUT, str(blobs.root), str(fifo)])
    fd = -1
    try:
        fd = open_fifo_writer(fifo, timeout=20)
        for _ in range(3):  # the FIFO stays open: the put can never finish on its own
            os.write(fd, os.urandom(1024 * 1024))
        wait_for_partial_write(blobs.root / "tmp", at_least=1024 * 1024, timeout=20)
        proc.kill()
        assert proc.wait(timeout=10) == -9
    finally:
        if fd >= 0:
            os.close(fd)
        proc.kill()
        proc.wait()
    assert stored_files(blobs) == []
    assert len(list((blobs.root / "tmp").iterdir())) == 1  # the killed write's leftover
    assert blobs.sweep(older_than=3600) == 0  # too young: it could be a write in progress
    assert blobs.sweep(older_than=0) == 1
    assert list((blobs.root / "tmp").iterdir()) == []
