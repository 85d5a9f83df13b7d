"""Blobs in a dict by digest: the blob store's in-memory twin for fast tests.

Same contract and errors as the local store (``local.py``): a put that does not match
``expect`` stores nothing, a fetch of a missing or altered blob is a BlobError. ``corrupt``
lets a test alter stored bytes the way a disk fault would.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shipyard.artifacts.digests import copy_hashing, hex_of
from shipyard.artifacts.interface import Blob, BlobError, BlobStore, Readable, StoredBlob

__all__ = ["MemoryBlobStore"]


@dataclass
class _Entry:
    data: bytes
    modified: float


class MemoryBlobStore(BlobStore):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._blobs: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBlobStore({len(self._blobs)} blobs)"

    def put(self, source: Path | Readable, *, expect: str | None = None) -> Blob:
        buffer = io.BytesIO()
        if isinstance(source, Path):
            with open(source, "rb") as reader:
                blob = copy_hashing(reader, buffer)
        else:
            blob = copy_hashing(source, buffer)
        if expect is not None and blob.digest != expect:
            raise BlobError(
                f"the bytes read ({blob.size} bytes) have digest {blob.digest}, not {expect}",
                hint="The file was altered or cut short; copy it again.",
            )
        with self._lock:
            self._blobs[blob.digest] = _Entry(buffer.getvalue(), self.clock())
        return blob

    def exists(self, digest: str) -> bool:
        hex_of(digest)
        return digest in self._blobs

    def fetch(self, digest: str, dest: Path) -> Blob:
        data = self._data(digest, "Publish the artifact again, or use the store that holds it.")
        blob = copy_hashing(io.BytesIO(data), None)
        if blob.digest != digest:
            raise BlobError(
                f"blob {digest} is corrupt: the store holds {blob.size} bytes"
                f" whose digest is {blob.digest}",
                hint="The stored bytes were altered; publish the artifact again.",
            )
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return blob

    def check(self, digest: str) -> Blob:
        return copy_hashing(io.BytesIO(self._data(digest)), None)

    def blobs(self) -> Iterator[StoredBlob]:
        with self._lock:
            entries = sorted(self._blobs.items())
        for digest, entry in entries:
            yield StoredBlob(digest, len(entry.data), entry.modified)

    def delete(self, digest: str, *, older_than: float = 0.0) -> bool:
        hex_of(digest)
        with self._lock:
            entry = self._blobs.get(digest)
            if entry is None or entry.modified > self.clock() - older_than:
                return False
            del self._blobs[digest]
            return True

    def corrupt(self, digest: str, data: bytes) -> None:
        """Replace a blob's stored bytes (its digest stays): what fsck and fetch must catch."""
        with self._lock:
            self._blobs[digest] = _Entry(data, self._blobs[digest].modified)

    def _data(self, digest: str, hint: str | None = None) -> bytes:
        hex_of(digest)
        entry = self._blobs.get(digest)
        if entry is None:
            raise BlobError(f"blob {digest} is missing from memory", hint=hint)
        return entry.data
