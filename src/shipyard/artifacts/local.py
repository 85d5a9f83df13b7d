"""The embedded blob store: a local directory of files named by their sha256.

Layout: ``<root>/sha256/<first 2 hex>/<64 hex>``; writes go through ``<root>/tmp/``. A blob
becomes visible only by ``os.replace`` of a complete, fsynced file, so a process killed mid-write
leaves at most a stray temporary file (see :meth:`LocalBlobStore.sweep`) and never a partial
blob. Two writers of the same bytes race harmlessly: both renames install identical content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts.interface import Blob, BlobError, BlobStore
from shipyard.errors import InvalidInput

CHUNK = 1 << 20  # 1 MiB: large enough to run near disk speed, small enough to stay flat in memory
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def hex_of(digest: str) -> str:
    """The 64 hex characters of a ``sha256:<hex>`` digest; InvalidInput for anything else."""
    match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise InvalidInput(
            f'{digest!r} is not a blob digest: expected "sha256:" and 64 lowercase hex characters.'
        )
    return match.group(1)


def copy_hashing(source: BinaryIO, target: BinaryIO | None) -> Blob:
    """Stream ``source`` into ``target`` (or nowhere) in chunks, hashing on the way."""
    hasher = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
        if target is not None:
            target.write(chunk)
    return Blob(digest=f"sha256:{hasher.hexdigest()}", size=size)


def digest_of(path: Path) -> Blob:
    """The digest and size of a file, read in chunks."""
    with open(path, "rb") as source:
        return copy_hashing(source, None)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable: the entry lives in the directory, not the file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, source: BinaryIO, *, mode: int) -> tuple[Path, Blob]:
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

    def put(self, source: Path) -> Blob:
        temp_dir = self.root / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as reader:
            # Read-only on disk: a blob is immutable, and this guards against a stray write.
            temp, blob = _write_temp(temp_dir, reader, mode=0o444)
        try:
            final = self.path(blob.digest)
            if final.is_file():
                return blob
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)
            fsync_dir(final.parent)
            return blob
        finally:
            temp.unlink(missing_ok=True)

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
