"""The embedded blob store: a local directory of files named by their sha256.

Layout: ``<root>/sha256/<first 2 hex>/<64 hex>``; writes go through ``<root>/tmp/``. A blob
becomes visible only by ``os.replace`` of a complete, fsynced file, so a process killed mid-write
leaves at most a stray temporary file (see :meth:`LocalBlobStore.sweep`) and never a partial
blob. Two writers of the same bytes race harmlessly: both renames install identical content.

A put that finds its bytes already stored touches the blob's mtime, and :meth:`delete` moves a
blob aside before it looks at that mtime, so garbage collection and a push reusing a blob can
run at the same time: either the push sees the blob gone and installs its own copy, or the gc
sees it fresh and puts it back.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from shipyard.artifacts.digests import CHUNK, DIGEST, copy_hashing, digest_of, hex_of
from shipyard.artifacts.interface import Blob, BlobError, BlobStore, Readable, StoredBlob

__all__ = ["CHUNK", "LocalBlobStore", "copy_hashing", "digest_of", "fsync_dir", "hex_of"]


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable: the entry lives in the directory, not the file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, source: Readable, *, mode: int) -> tuple[Path, Blob]:
    """Copy ``source`` into a new fsynced temporary file in ``directory``."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".blob-", suffix=".part")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            blob = copy_hashing(source, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp, blob


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        hex_digest = hex_of(digest)
        return self.root / "sha256" / hex_digest[:2] / hex_digest

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, source: Path | Readable, *, expect: str | None = None) -> Blob:
        temp_dir = self.root / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            reader = stack.enter_context(open(source, "rb")) if isinstance(source, Path) else source
            # Read-only on disk: a blob is immutable, and this guards against a stray write.
            temp, blob = _write_temp(temp_dir, reader, mode=0o444)
        try:
            if expect is not None and blob.digest != expect:
                raise BlobError(
                    f"the bytes read ({blob.size} bytes) have digest {blob.digest}, not {expect}",
                    hint="The file was altered or cut short; copy it again.",
                )
            self._install(temp, blob.digest)
            return blob
        finally:
            temp.unlink(missing_ok=True)

    def _install(self, temp: Path, digest: str) -> None:
        final = self.path(digest)
        try:
            os.utime(final)  # already stored: mark it fresh so a running gc keeps it
            return
        except FileNotFoundError:
            pass
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
        fsync_dir(final.parent)

    def fetch(self, digest: str, dest: Path) -> Blob:
        stored = self.path(digest)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            reader = open(stored, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            raise BlobError(
                f"blob {digest} is missing from {self.root}",
                hint="Publish the artifact again, or use the state directory that holds it.",
            ) from None
        with reader:
            temp, blob = _write_temp(dest.parent, reader, mode=0o644)
        try:
            if blob.digest != digest:
                raise BlobError(
                    f"blob {digest} is corrupt: {stored} holds {blob.size} bytes"
                    f" whose digest is {blob.digest}",
                    hint="The stored file was altered; publish the artifact again.",
                )
            os.replace(temp, dest)
            return blob
        finally:
            temp.unlink(missing_ok=True)

    def check(self, digest: str) -> Blob:
        try:
            with open(self.path(digest), "rb") as reader:
                return copy_hashing(reader, None)
        except FileNotFoundError:
            raise BlobError(f"blob {digest} is missing from {self.root}") from None

    def blobs(self) -> Iterator[StoredBlob]:
        for path in sorted((self.root / "sha256").glob("??/*")):
            if DIGEST.fullmatch(f"sha256:{path.name}") is None or not path.is_file():
                continue  # not ours: fsck reports only what it can name
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                yield StoredBlob(f"sha256:{path.name}", info.st_size, info.st_mtime)

    def delete(self, digest: str, *, older_than: float = 0.0) -> bool:
        stored = self.path(digest)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        aside = self.root / "tmp" / f".delete-{hex_of(digest)}-{os.getpid()}"
        try:
            os.replace(stored, aside)
        except FileNotFoundError:
            return False
        if aside.stat().st_mtime > time.time() - older_than:
            os.replace(aside, stored)  # a put reused it meanwhile: it stays
            return False
        aside.unlink()
        fsync_dir(stored.parent)
        return True

    def temporary_files(self) -> list[tuple[Path, float]]:
        """Leftovers of killed writers (and of deletes) with their mtimes, oldest first."""
        found = []
        for path in (self.root / "tmp").glob(".*"):
            with contextlib.suppress(FileNotFoundError):
                found.append((path, path.stat().st_mtime))
        return sorted(found, key=lambda item: item[1])

    def sweep(self, older_than: float = 3600.0) -> int:
        """Delete temporary files left by killed writers; returns how many were removed.

        Only files older than ``older_than`` seconds go, so a write in progress is never touched.
        """
        cutoff = time.time() - older_than
        removed = 0
        for temp in (self.root / "tmp").glob(".blob-*.part"):
            with contextlib.suppress(FileNotFoundError):
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()
                    removed += 1
        return removed
