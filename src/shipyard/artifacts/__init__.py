"""Artifacts: the blob store, the archive format and the repositories (``dev``, ``release``).

interface   BlobStore (put, exists, fetch, check, blobs, delete), Blob, BlobError, SignatureError
local       LocalBlobStore: blobs in a directory, atomic writes, digest-checked reads
archive     pack / unpack / read_build_info: one deterministic .tar.gz per build
scan        ArchiveScan: checks an archive while it streams into the store (push)
repository  publish / promote / materialize / verify_signature, name and version rules
policy      the promotion policy: a pure function over a run's stage statuses
signing     Ed25519 keys and signatures over (name, version, digest)
properties  key=value rules, the stages' reserved namespaces
catalog     repositories, properties, signatures and search over the metadata store
search      version ranges on the run number, sha prefixes
transfer    pull / push: artifacts between machines, with a manifest
gc          retention and garbage collection
fsck        re-hash every blob, follow every reference
"""

from typing import TYPE_CHECKING

from shipyard.lazy import exports

if TYPE_CHECKING:
    from shipyard.artifacts.archive import PackedArtifact, pack, read_build_info, unpack
    from shipyard.artifacts.interface import Blob, BlobError, BlobStore, SignatureError, StoredBlob
    from shipyard.artifacts.local import LocalBlobStore, digest_of
    from shipyard.artifacts.policy import Decision, PromotionPolicy, decide
    from shipyard.artifacts.repository import (
        PromotionResult,
        materialize,
        promote,
        publish,
        validate_name,
        validate_version,
        verify_signature,
    )
    from shipyard.artifacts.signing import KeyFile, Signer

__getattr__ = exports(
    __name__,
    {
        "PackedArtifact": "archive",
        "pack": "archive",
        "read_build_info": "archive",
        "unpack": "archive",
        "Blob": "interface",
        "BlobError": "interface",
        "BlobStore": "interface",
        "SignatureError": "interface",
        "StoredBlob": "interface",
        "LocalBlobStore": "local",
        "digest_of": "local",
        "Decision": "policy",
        "PromotionPolicy": "policy",
        "decide": "policy",
        "PromotionResult": "repository",
        "materialize": "repository",
        "promote": "repository",
        "publish": "repository",
        "validate_name": "repository",
        "validate_version": "repository",
        "verify_signature": "repository",
        "KeyFile": "signing",
        "Signer": "signing",
    },
)

__all__ = [
    "Blob",
    "BlobError",
    "BlobStore",
    "Decision",
    "KeyFile",
    "LocalBlobStore",
    "PackedArtifact",
    "PromotionPolicy",
    "PromotionResult",
    "SignatureError",
    "Signer",
    "StoredBlob",
    "decide",
    "digest_of",
    "materialize",
    "pack",
    "promote",
    "publish",
    "read_build_info",
    "unpack",
    "validate_name",
    "validate_version",
    "verify_signature",
]
