"""Retention and garbage collection.

Three steps, each safe to interrupt:

1. Retention: in each mutable repository with a policy, a ref is kept when it is one of the
   newest ``keep_last`` of its artifact name there, or younger than ``max_age`` (either rule
   keeps it); the others expire. An artifact in an immutable repository (``release``) or
   deployed in any environment (a deployment ``starting`` or ``ready``) is never touched.
2. Artifacts left in no repository and not deployed are marked deleted (a tombstone: the row
   stays for the audit log, and its version can never name other bytes).
3. Blobs no live artifact points at are removed, unless written or reused within ``grace``
   seconds (a push between storing its bytes and recording its artifact), and so are temporary
   files of killed writers older than ``grace``.

``plan`` says what would go without changing anything; ``collect`` does it and writes an audit
event per ref and per artifact.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.interface import BlobStore, StoredBlob
from shipyard.artifacts.local import LocalBlobStore
from shipyard.errors import InvalidInput
from shipyard.store.models import Artifact, ArtifactRef, utcnow

if TYPE_CHECKING:
    from shipyard.store.store import Store

DEFAULT_GRACE = 3600.0
_AGE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> int:
    """``"30d"`` -> seconds. Units: s, m, h, d, w."""
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(
            f"{text!r} is not an age.", hint="Write a number and a unit: 90m, 12h, 30d, 8w."
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_age(seconds: int | None) -> str:
    if seconds is None:
        return ""
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Expiry:
    repository: str
    ref: str  # NAME:VERSION
    why: str
    artifact_id: int


@dataclass
class GcPlan:
    expired: list[Expiry] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # NAME:VERSION
    blobs: list[StoredBlob] = field(default_factory=list)
    temporaries: list[Path] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(blob.size for blob in self.blobs)


def plan(store: Store, blobs: BlobStore, *, grace: float = DEFAULT_GRACE) -> GcPlan:
    """What ``collect`` would remove now."""
    catalog = Catalog(store)
    result = GcPlan(expired=_expired(catalog))
    gone_refs = {(e.repository, e.artifact_id) for e in result.expired}
    doomed = _doomed(catalog, gone_refs)
    result.deleted = [f"{a.name}:{a.version}" for a in doomed]
    gone = {a.id for a in doomed}
    live = {a.digest for a in catalog.live_artifacts() if a.id not in gone}
    result.blobs = _unused_blobs(blobs, live, grace)
    result.temporaries = _old_temporaries(blobs, grace)
    return result


def collect(store: Store, blobs: BlobStore, *, grace: float = DEFAULT_GRACE) -> GcPlan:
    """Expire refs, tombstone unreferenced artifacts, remove unused blobs; what was done."""
    catalog = Catalog(store)
    done = GcPlan()
    for expiry, ref, artifact in _expirable(catalog):
        catalog.remove_ref(ref, artifact, expiry.why)
        done.expired.append(expiry)
    for artifact in catalog.unreferenced():
        if catalog.mark_deleted(artifact):
            done.deleted.append(f"{artifact.name}:{artifact.version}")
    live = catalog.live_digests()  # read after the tombstones, so a new push is seen
    for blob in _unused_blobs(blobs, live, grace):
        if blob.digest not in catalog.live_digests() and blobs.delete(
            blob.digest, older_than=grace
        ):
            done.blobs.append(blob)
    for temp in _old_temporaries(blobs, grace):
        temp.unlink(missing_ok=True)
        done.temporaries.append(temp)
    return done


def _expired(catalog: Catalog) -> list[Expiry]:
    return [expiry for expiry, _, _ in _expirable(catalog)]


def _expirable(catalog: Catalog) -> list[tuple[Expiry, ArtifactRef, Artifact]]:
    protected = catalog.protected()
    now = utcnow()
    found = []
    for repository in catalog.repositories():
        if repository.immutable or (repository.keep_last is None and repository.max_age is None):
            continue
        seen: dict[str, int] = defaultdict(int)
        for ref, artifact in catalog.refs(repository.name):  # newest first
            seen[artifact.name] += 1
            why = _why_expired(
                seen[artifact.name], ref.created_at, now, repository.keep_last, repository.max_age
            )
            if why and artifact.id not in protected:
                expiry = Expiry(
                    repository.name, f"{artifact.name}:{artifact.version}", why, artifact.id
                )
                found.append((expiry, ref, artifact))
    return found


def _why_expired(
    position: int, created: datetime, now: datetime, keep_last: int | None, max_age: int | None
) -> str | None:
    """None when a rule keeps the ref; else why it goes."""
    age = (now - created).total_seconds()
    if keep_last is not None and position <= keep_last:
        return None
    if max_age is not None and age < max_age:
        return None
    reasons = []
    if keep_last is not None:
        reasons.append(f"not among the newest {keep_last}")
    if max_age is not None:
        reasons.append(f"older than {format_age(max_age)}")
    return " and ".join(reasons)


def _doomed(catalog: Catalog, gone_refs: set[tuple[str, int]]) -> list[Artifact]:
    """Artifacts that would be left in no repository (and are not deployed)."""
    refs_left: dict[int, int] = defaultdict(int)
    artifacts: dict[int, Artifact] = {}
    for repository in catalog.repositories():
        for _ref, artifact in catalog.refs(repository.name):
            artifacts[artifact.id] = artifact
            if (repository.name, artifact.id) not in gone_refs:
                refs_left[artifact.id] += 1
    deployed = catalog.protected()
    doomed = [a for i, a in artifacts.items() if not refs_left[i] and i not in deployed]
    return doomed + [a for a in catalog.unreferenced() if a.id not in artifacts]


def _unused_blobs(blobs: BlobStore, live: set[str], grace: float) -> list[StoredBlob]:
    cutoff = time.time() - grace
    return [b for b in blobs.blobs() if b.digest not in live and b.modified <= cutoff]


def _old_temporaries(blobs: BlobStore, grace: float) -> list[Path]:
    if not isinstance(blobs, LocalBlobStore):
        return []  # an object store cleans up its own failed uploads
    cutoff = time.time() - grace
    return [path for path, modified in blobs.temporary_files() if modified <= cutoff]
