"""Artifacts: the blob store, the archive format and the ``dev``/``release`` repositories.

interface   BlobStore (put, exists, fetch), Blob, BlobError
local       LocalBlobStore: blobs in a directory, atomic writes, digest-checked reads
archive     pack / unpack / read_build_info: one deterministic .tar.gz per build
repository  publish / promote / materialize, name and version rules
"""

from shipyard.artifacts.archive import PackedArtifact, pack, read_build_info, unpack
from shipyard.artifacts.interface import Blob, BlobError, BlobStore
from shipyard.artifacts.local import LocalBlobStore, digest_of
from shipyard.artifacts.repository import (
    materialize,
    promote,
    publish,
    validate_name,
    validate_version,
)

__all__ = [
    "Blob",
    "BlobError",
    "BlobStore",
    "LocalBlobStore",
    "PackedArtifact",
    "digest_of",
    "materialize",
    "pack",
    "promote",
    "publish",
    "read_build_info",
    "unpack",
    "validate_name",
    "validate_version",
]
