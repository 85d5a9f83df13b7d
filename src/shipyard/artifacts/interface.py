"""The blob store seam: bytes addressed by their sha256.

``local.py`` keeps blobs in a directory; an S3 backend comes later; ``memory.py`` is the
in-memory twin for fast tests. Writes are atomic (a
temporary file, fsync, rename), identical bytes are stored once, and reads that feed a
deployment check the digest.

Errors::

    ShipyardError (shipyard.errors)
    └── BlobError             a blob is missing or its bytes do not match its digest
        └── SignatureError    a release artifact's signature is missing or does not verify
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipyard.errors import ShipyardError


class BlobError(ShipyardError):
    """A blob is missing or its bytes do not match its digest."""


class SignatureError(BlobError):
    """An artifact that must be signed has no signature, or one that does not verify."""


class Readable(Protocol):
    """What ``put`` reads from: a binary file or anything with the same ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:<64 hex>"
    size: int


@dataclass(frozen=True)
class StoredBlob:
    digest: str
    size: int
    modified: float  # seconds since the epoch: when the blob was last written or re-put


class BlobStore(ABC):
    @abstractmethod
    def put(self, source: Path | Readable, *, expect: str | None = None) -> Blob:
        """Store the bytes of a file or stream (read once, in chunks).

        A no-op when the same bytes are already stored. Nothing becomes visible when the
        stream's ``read`` raises, or when ``expect`` is given and the bytes have another
        digest (BlobError).
        """

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def fetch(self, digest: str, dest: Path) -> Blob:
        """Copy the blob to ``dest``, verifying its digest on the way; BlobError on mismatch."""

    @abstractmethod
    def check(self, digest: str) -> Blob:
        """Re-hash the stored bytes; the digest they really have (BlobError when missing)."""

    @abstractmethod
    def blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob."""

    @abstractmethod
    def delete(self, digest: str, *, older_than: float = 0.0) -> bool:
        """Remove a blob unless it was written or re-put in the last ``older_than`` seconds.

        The age check is what lets garbage collection run beside a push that is reusing the
        blob; True when it was removed.
        """
