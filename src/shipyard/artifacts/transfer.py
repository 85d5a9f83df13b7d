"""Moving artifacts between machines: ``pull`` to a file, ``push`` from one.

``pull NAME:VERSION -o FILE`` writes the artifact's exact bytes to FILE (so ``sha256sum FILE``
is its digest; build-info is inside) and a manifest beside it, ``FILE.manifest.json``: name,
version, digest, size, the repositories it was in, its properties (stage results included) and
its signatures with their public keys.

``push FILE`` reads FILE once: while the bytes stream into the blob store they are hashed and
scanned (:mod:`shipyard.artifacts.scan`), so a truncated, foreign or hostile file is refused
and nothing becomes visible. With the manifest beside it (or ``--manifest``), the bytes must
have the manifest's digest and name:version, and each signature in it must verify with its
own public key; properties and attestations (signed build and stage results) come along. An
attestation counts for promotion only when this machine trusts its key
(`shipyard artifacts key trust`); without one, or without a manifest, the artifact may sit in
``dev`` but the release policy refuses it until the pipeline or an admin's override vouches
for it. Pushing lands in a mutable
repository (``dev``); promotion into ``release`` goes through the policy and signs with this
machine's key. The same bytes again is a no-op; other bytes under a known version are refused.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shipyard.artifacts.attestations import Attestation, check_carried
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.interface import BlobError, BlobStore, SignatureError
from shipyard.artifacts.local import fsync_dir
from shipyard.artifacts.properties import RESERVED, validate_key, validate_value
from shipyard.artifacts.repository import (
    validate_name,
    validate_version,
    verify_signature,
)
from shipyard.artifacts.scan import ArchiveScan, ScanningReader
from shipyard.artifacts.signing import KeyFile, SignatureRecord, verify
from shipyard.domain import DEV_REPOSITORY
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.store.store import current_actor

if TYPE_CHECKING:
    from shipyard.store.models import Artifact
    from shipyard.store.store import Store

MANIFEST_SUFFIX = ".manifest.json"
FORMAT = "shipyard.artifact-manifest.v1"


def manifest_path(file: Path) -> Path:
    return file.with_name(file.name + MANIFEST_SUFFIX)


@dataclass(frozen=True)
class Transferred:
    ref: str
    digest: str
    size: int
    path: Path
    manifest: Path | None
    created: bool = False  # push: the version is new here


def pull(
    store: Store, blobs: BlobStore, name: str, version: str, out: Path, *, keys: KeyFile
) -> Transferred:
    """Write ``name:version``'s exact bytes to ``out`` (digest checked) and its manifest."""
    artifact = store.get_artifact(validate_name(name), validate_version(version))
    verify_signature(store, artifact, keys)
    out = Path(out)
    try:
        blobs.fetch(artifact.digest, out)
    except BlobError as exc:
        raise BlobError(f"Cannot pull {name}:{version}: {exc.message}.", hint=exc.hint) from None
    catalog = Catalog(store)
    listed = catalog.describe(name, version)
    # The stage results travel as properties: the receiving side's policy reads them.
    statuses, _ = catalog.stage_statuses(artifact)
    properties = {**listed.properties, **{f"{s}.status": v for s, v in statuses.items()}}
    manifest = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "digest": artifact.digest,
        "size": artifact.size,
        "repositories": listed.repositories,
        "properties": properties,
        "signatures": [record.__dict__ for record in catalog.signatures(artifact)],
        "attestations": [a.to_dict() for a in catalog.attestations(artifact)],
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exported_by": current_actor(),
    }
    written = _write_json(manifest_path(out), manifest)
    return Transferred(f"{name}:{version}", artifact.digest, artifact.size, out, written)


def push(
    store: Store,
    blobs: BlobStore,
    file: Path,
    *,
    repository: str = DEV_REPOSITORY,
    manifest: Path | None = None,
) -> Transferred:
    """Store the artifact in ``file`` and put it in ``repository`` (a mutable one)."""
    catalog = Catalog(store)
    if catalog.repository(repository).immutable:
        raise InvalidInput(
            f"Cannot push into {repository!r}: it is immutable, and only promotion fills it.",
            hint=f"Push into dev, then `shipyard promote NAME:VERSION --to {repository}`.",
        )
    file = Path(file)
    chosen = manifest or manifest_path(file)
    meta = _read_manifest(chosen) if manifest or chosen.is_file() else None
    # Name and version are checked as soon as build-info streams past, before any blob exists.
    scan = ArchiveScan(str(file), lambda info: _identity(file, info, meta))
    try:
        with open(file, "rb") as source:
            blob = blobs.put(ScanningReader(source, scan), expect=meta.digest if meta else None)
    except FileNotFoundError:
        raise InvalidInput(f"{file} is not a Shipyard artifact: there is no such file.") from None
    except IsADirectoryError:
        raise InvalidInput(f"{file} is a folder, not an artifact file.") from None
    except BlobError as exc:
        raise InvalidInput(
            f"{file} does not match {chosen}: {exc.message}.", hint=exc.hint
        ) from None
    info = scan.finish()
    name, version = _identity(file, info, meta)
    known = _known(store, name, version)
    artifact = _add(store, catalog, name, version, blob.digest, blob.size, info)
    store.add_ref(repository, artifact)
    if meta is not None:
        _import(catalog, artifact, meta)
    used = chosen if meta is not None else None
    return Transferred(f"{name}:{version}", blob.digest, blob.size, file, used, not known)


def _known(store: Store, name: str, version: str) -> bool:
    try:
        store.get_artifact(name, version)
    except NotFound:
        return False
    return True


@dataclass(frozen=True)
class _Manifest:
    name: str
    version: str
    digest: str
    properties: dict[str, str]
    signatures: list[SignatureRecord]
    attestations: list[Attestation]
    exported_by: str


def _read_manifest(path: Path) -> _Manifest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"There is no manifest {path}.") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a Shipyard manifest: {exc}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(
            f'{path} is not a Shipyard manifest (no "format": "{FORMAT}").',
            hint="Use the .manifest.json that `shipyard artifacts pull` wrote, or none.",
        )
    try:
        props = {validate_key(k): validate_value(k, v) for k, v in data["properties"].items()}
        records = [SignatureRecord(**record) for record in data["signatures"]]
        carried = [Attestation.from_dict(item) for item in data.get("attestations", [])]
        found = _Manifest(
            validate_name(data["name"]),
            validate_version(data["version"]),
            str(data["digest"]),
            props,
            records,
            carried,
            str(data.get("exported_by", "unknown")),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{path} is a damaged Shipyard manifest ({exc!r}).") from None
    _check_signatures(path, found)
    return found


def _check_signatures(path: Path, meta: _Manifest) -> None:
    """Each signature must verify with the public key it carries: the manifest was not edited."""
    for record in meta.signatures:
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(record.public_key))
            verify(record, public, meta.name, meta.version, meta.digest)
        except (ValueError, SignatureError) as exc:
            reason = exc.message if isinstance(exc, SignatureError) else str(exc)
            raise InvalidInput(
                f"{path}: the signature by {record.key_id} of {meta.name}:{meta.version}"
                f" does not hold: {reason}.",
                hint="The manifest or the file was altered; pull it again from its source.",
            ) from None
    for attestation in meta.attestations:
        try:
            check_carried(attestation, meta.name, meta.version, meta.digest)
        except SignatureError as exc:
            raise InvalidInput(
                f"{path}: the attestation by {attestation.signature.key_id} of"
                f" {meta.name}:{meta.version} does not hold: {exc.message}.",
                hint="The manifest was altered; pull it again from its source.",
            ) from None


def _identity(file: Path, info: dict[str, Any], meta: _Manifest | None) -> tuple[str, str]:
    for key in ("name", "version"):
        if key not in info:
            raise InvalidInput(f"{file} is not a Shipyard artifact: its build-info has no {key}.")
    name, version = validate_name(info["name"]), validate_version(info["version"])
    if meta is not None and (meta.name, meta.version) != (name, version):
        raise InvalidInput(
            f"{file} holds {name}:{version}, but its manifest says {meta.name}:{meta.version}."
        )
    return name, version


def _add(
    store: Store,
    catalog: Catalog,
    name: str,
    version: str,
    digest: str,
    size: int,
    info: dict[str, Any],
) -> Artifact:
    try:
        return store.add_artifact(name, version, digest, size, info, None)
    except Conflict as exc:
        existing = store.get_artifact(name, version)
        immutable = catalog.immutable_repositories(existing)
        where = f" in the immutable {immutable[0]!r} repository" if immutable else ""
        raise Conflict(
            f"{name}:{version} already exists{where} with digest {existing.digest};"
            f" the file has digest {digest}.",
            hint="A version names one set of bytes forever; build or name a new version.",
        ) from exc


def _import(catalog: Catalog, artifact: Artifact, meta: _Manifest) -> None:
    actor = f"push from {meta.exported_by}"
    values = dict(meta.properties)
    if artifact.run_id is not None:  # built here: our own stage records win over any claim
        values = {k: v for k, v in values.items() if not k.startswith(RESERVED)}
    for record in meta.signatures:
        values["origin.signed-by"] = record.key_id
    catalog.set_properties(artifact, values, actor)
    # Kept whoever signed them: promotion counts those whose key this machine trusts.
    for attestation in meta.attestations:
        catalog.add_attestation(artifact, attestation, imported=True)


def _write_json(path: Path, value: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(value, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(name, 0o644)
        os.replace(name, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    return path
