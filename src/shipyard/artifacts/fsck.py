"""``shipyard artifacts fsck``: every blob re-hashed, every reference followed.

Problems (the command exits non-zero on any): a blob whose bytes no longer hash to its name
(``corrupt``), a live artifact whose blob is gone (``missing``), a ref or running deployment
that points at a deleted artifact (``dangling``), an artifact in an immutable repository whose
signature does not verify (``signature``), a deployment tree whose files no longer match what
was unpacked (``modified``; its next start unpacks it again). Worth knowing but not wrong:
blobs no artifact uses (gc removes them) and temporary files of killed writers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.deployed import differences, read_marker
from shipyard.artifacts.interface import BlobError, BlobStore, StoredBlob
from shipyard.artifacts.local import LocalBlobStore
from shipyard.artifacts.repository import verify_signature
from shipyard.artifacts.signing import KeyFile
from shipyard.store.models import Artifact

if TYPE_CHECKING:
    from shipyard.store.store import Store

Progress = Callable[[int], None]  # called with the bytes just checked


@dataclass(frozen=True)
class Problem:
    kind: str  # corrupt, missing, dangling, signature, modified
    subject: str  # a digest, NAME:VERSION, repository/NAME:VERSION, or a deployment folder
    detail: str


@dataclass
class FsckReport:
    blobs: int = 0
    bytes: int = 0
    artifacts: int = 0
    problems: list[Problem] = field(default_factory=list)
    unused: list[StoredBlob] = field(default_factory=list)
    temporaries: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def fsck(
    store: Store,
    blobs: BlobStore,
    *,
    keys: KeyFile,
    progress: Progress | None = None,
    trees: Iterable[Path] = (),
) -> FsckReport:
    """Check blobs, artifacts and references, and the deployment folders ``trees``."""
    report = FsckReport()
    catalog = Catalog(store)
    artifacts = catalog.live_artifacts()
    users: dict[str, list[str]] = defaultdict(list)
    for artifact in artifacts:
        users[artifact.digest].append(f"{artifact.name}:{artifact.version}")
    stored = _check_blobs(blobs, users, report, progress)
    for artifact in artifacts:
        _check_artifact(store, artifact, stored, keys, report)
    _check_references(store, report)
    for tree in trees:
        _check_tree(tree, report)
    report.artifacts = len(artifacts)
    if isinstance(blobs, LocalBlobStore):
        report.temporaries = [path for path, _ in blobs.temporary_files()]
    return report


def _check_blobs(
    blobs: BlobStore, users: dict[str, list[str]], report: FsckReport, progress: Progress | None
) -> set[str]:
    stored: set[str] = set()
    for blob in blobs.blobs():
        stored.add(blob.digest)
        try:
            actual = blobs.check(blob.digest)
        except BlobError:
            continue  # removed while we looked: not a problem of the store
        report.blobs += 1
        report.bytes += actual.size
        if progress is not None:
            progress(actual.size)
        if actual.digest != blob.digest:
            used_by = ", ".join(users.get(blob.digest, [])) or "no artifact"
            report.problems.append(
                Problem(
                    "corrupt", blob.digest, f"its bytes hash to {actual.digest} (used by {used_by})"
                )
            )
        elif blob.digest not in users:
            report.unused.append(blob)
    return stored


def _check_artifact(
    store: Store, artifact: Artifact, stored: set[str], keys: KeyFile, report: FsckReport
) -> None:
    ref = f"{artifact.name}:{artifact.version}"
    if artifact.digest not in stored:
        report.problems.append(Problem("missing", ref, f"its blob {artifact.digest} is not stored"))
    try:
        verify_signature(store, artifact, keys)
    except BlobError as exc:
        report.problems.append(Problem("signature", ref, exc.message))


def _check_references(store: Store, report: FsckReport) -> None:
    for repository, name, version in store.catalog.dangling_refs():
        report.problems.append(
            Problem("dangling", f"{repository}/{name}:{version}", "the artifact was deleted")
        )
    for environment, name, version in store.catalog.dangling_deployments():
        report.problems.append(
            Problem("dangling", f"{environment}/{name}:{version}", "deployed, but deleted")
        )


def _check_tree(tree: Path, report: FsckReport) -> None:
    record = read_marker(tree)
    if record is None:
        detail = "it has no readable record of its files; its next start unpacks it again"
        report.problems.append(Problem("modified", str(tree), detail))
        return
    changed = differences(tree, record)
    if changed:
        detail = "; ".join(changed) + "; its next start unpacks it again"
        report.problems.append(Problem("modified", str(tree), detail))
