"""The artifact repositories: ``dev`` takes every published build, ``release`` what passed QA.

A repository is metadata only: it maps (name, version) to an artifact row, and the artifact
row to a blob digest. Publishing stores the bytes once; promoting adds a row, never copies
bytes. A version names one digest forever (the store refuses a second digest), which is what
makes ``release`` immutable. Materializing is the way back to files: fetch the blob checking
its digest, unpack it, and leave a marker so the next call for the same digest reuses the tree.

Names and versions end up in paths (deployment folders, URLs), so they are checked here
against a small documented character set before anything else sees them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts.archive import BUILD_INFO, PackedArtifact, unpack
from shipyard.artifacts.interface import BlobError, BlobStore
from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # the store pulls in SQLAlchemy; readers of artifacts need not
    from shipyard.store.models import Artifact
    from shipyard.store.store import Store

NAME_RULE = "1 to 63 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
VERSION_RULE = (
    "1 to 128 characters from A-Z, a-z, 0-9, '.', '_', '+' and '-', starting with a letter or digit"
)
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
MARKER = ".shipyard-artifact"  # in a materialized tree: the digest it was unpacked from


def _validate(value: object, pattern: re.Pattern[str], what: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise InvalidInput(
            f"Invalid {what} {value!r}.",
            hint=f"A {what} is {rule}, with no '..'.",
        )
    return value


def validate_name(name: str) -> str:
    """``name`` when it is a valid artifact or repository name, else InvalidInput."""
    return _validate(name, _NAME, "name", NAME_RULE)


def validate_version(version: str) -> str:
    """``version`` when it is a valid artifact version, else InvalidInput."""
    return _validate(version, _VERSION, "version", VERSION_RULE)


def _name_and_version(build_info: Mapping[str, Any]) -> tuple[str, str]:
    missing = [key for key in ("name", "version") if key not in build_info]
    if missing:
        raise InvalidInput(f"build-info has no {' or '.join(missing)}; the builder must set both.")
    return validate_name(build_info["name"]), validate_version(build_info["version"])


def publish(
    store: Store,
    blobs: BlobStore,
    packed: PackedArtifact,
    build_info: Mapping[str, Any],
    *,
    run_id: int | None,
) -> Artifact:
    """Store the archive's bytes and put ``name:version`` into the ``dev`` repository."""
    name, version = _name_and_version(build_info)
    blob = blobs.put(packed.path)
    if blob.digest != packed.digest:
        raise BlobError(
            f"{packed.path} changed after packing: its digest is {blob.digest},"
            f" not {packed.digest}.",
            hint="Something wrote to the archive; build again.",
        )
    artifact = store.add_artifact(name, version, blob.digest, blob.size, dict(build_info), run_id)
    store.add_ref(DEV_REPOSITORY, artifact)
    return artifact


def promote(
    store: Store,
    name: str,
    version: str,
    *,
    source: str = DEV_REPOSITORY,
    target: str = RELEASE_REPOSITORY,
    reason: str | None = None,
    dry_run: bool = False,
) -> bool:
    """Add ``name:version`` from ``source`` to ``target``; False when it was already there.

    Metadata only: the blob is shared. With ``dry_run`` nothing changes and the answer says
    whether a real call would promote.
    """
    _check_promotion(name, version, source, target)
    if not store.in_repository(source, name, version):
        raise NotFound(
            f"{name}:{version} is not in the {source!r} repository.",
            hint=f"`shipyard artifacts --repository {source}` lists what it holds.",
        )
    if store.in_repository(target, name, version):
        return False
    if dry_run:
        return True
    artifact = store.get_artifact(name, version)
    if not store.add_ref(target, artifact):
        return False  # a concurrent promotion got there first
    store.record_promotion(artifact, source, target, reason)
    return True


def _check_promotion(name: str, version: str, source: str, target: str) -> None:
    validate_name(name)
    validate_version(version)
    for repository in (source, target):
        _validate(repository, _NAME, "repository name", NAME_RULE)
    if source == target:
        raise InvalidInput(f"Cannot promote from {source!r} to itself; name another target.")


def materialize(
    store: Store, blobs: BlobStore, name: str, version: str, dest: Path
) -> dict[str, Any]:
    """Files of ``name:version`` in ``dest`` (digest verified), and its build-info.

    ``dest`` is reused when a marker says it holds a complete unpack of the same digest;
    otherwise it is replaced as a whole, never left half-written.
    """
    artifact = store.get_artifact(validate_name(name), validate_version(version))
    dest = Path(dest)
    if _holds(dest, artifact.digest):
        return _read_build_info(dest)
    _check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as work:
        staging = Path(work) / "tree"
        blobs.fetch(artifact.digest, Path(work) / "artifact.tar.gz")
        build_info = unpack(Path(work) / "artifact.tar.gz", staging)
        (staging / MARKER).write_text(artifact.digest + "\n")
        _swap_in(staging, dest, Path(work) / "old", artifact.digest)
    return build_info


def _holds(dest: Path, digest: str) -> bool:
    try:
        return (dest / MARKER).read_text().strip() == digest
    except OSError:
        return False


def _read_build_info(tree: Path) -> dict[str, Any]:
    with open(tree / BUILD_INFO, encoding="utf-8") as stream:
        value: dict[str, Any] = json.load(stream)
    return value


def _check_replaceable(dest: Path) -> None:
    """Only a tree this module wrote (it has a marker) or an empty folder may be replaced."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise InvalidInput(f"Cannot materialize into {dest}: it is not a folder.")
    if dest.is_dir() and not (dest / MARKER).is_file() and any(dest.iterdir()):
        raise InvalidInput(
            f"Cannot materialize into {dest}: it holds files that did not come from an artifact.",
            hint="Name an empty or new folder.",
        )


def _swap_in(staging: Path, dest: Path, trash: Path, digest: str) -> None:
    """Replace ``dest`` by ``staging``; the old tree goes to ``trash`` (deleted by the caller)."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(dest, trash)
    try:
        os.replace(staging, dest)
    except OSError:
        # Another process materialized the same version meanwhile; its tree is as good as ours.
        if not _holds(dest, digest):
            raise
