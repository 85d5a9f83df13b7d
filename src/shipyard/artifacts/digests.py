"""Blob digests (``sha256:<64 hex>``): shared by every blob store backend."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts.interface import Blob, Readable
from shipyard.errors import InvalidInput

__all__ = ["CHUNK", "DIGEST", "copy_hashing", "digest_of", "hex_of"]

CHUNK = 1 << 20  # 1 MiB: large enough to run near disk speed, small enough to stay flat in memory
DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def hex_of(digest: str) -> str:
    """The 64 hex characters of a ``sha256:<hex>`` digest; InvalidInput for anything else."""
    match = DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise InvalidInput(
            f'{digest!r} is not a blob digest: expected "sha256:" and 64 lowercase hex characters.'
        )
    return match.group(1)


def copy_hashing(source: Readable, target: BinaryIO | None) -> Blob:
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
