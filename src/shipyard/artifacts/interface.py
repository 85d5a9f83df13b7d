"""The blob store seam: bytes addressed by their sha256.

``local.py`` keeps blobs in a directory; an S3 backend comes later. Writes are atomic (a
temporary file, fsync, rename), identical bytes are stored once, and reads that feed a
deployment check the digest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import ShipyardError


class BlobError(ShipyardError):
    """A blob is missing or its bytes do not match its digest."""


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:<64 hex>"
    size: int


class BlobStore(ABC):
    @abstractmethod
    def put(self, source: Path) -> Blob:
        """Store the file's bytes (streamed); a no-op when the same bytes are already stored."""

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abstractmethod
    def fetch(self, digest: str, dest: Path) -> Blob:
        """Copy the blob to ``dest``, verifying its digest on the way; BlobError on mismatch."""
