"""OSV records for the tests, written the way OSV's PyPI export writes them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


def record(
    record_id: str,
    package: str,
    *,
    ranges: list[list[dict[str, str]]] | None = None,
    versions: list[str] | None = None,
    aliases: list[str] | None = None,
    severity: str | None = None,
    cvss: str | None = None,
    withdrawn: str | None = None,
    summary: str = "a vulnerability",
    ecosystem: str = "PyPI",
) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": package}}
    if ranges is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events} for events in ranges]
    if versions is not None:
        affected["versions"] = versions
    data: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": record_id,
        "modified": "2025-06-01T00:00:00Z",
        "summary": summary,
        "affected": [affected],
    }
    if aliases:
        data["aliases"] = aliases
    if severity:
        data["database_specific"] = {"severity": severity}
    if cvss:
        data["severity"] = [{"type": "CVSS_V3", "score": cvss}]
    if withdrawn:
        data["withdrawn"] = withdrawn
    return data


# The set most tests use: every shape of range the matching must get right.
RECORDS = [
    # Two intervals: [1.0, 1.5) and [2.0, 2.3).
    record(
        "GHSA-aaaa-1111-0001",
        "Foo_Bar",
        ranges=[[{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}]],
        aliases=["CVE-2025-0001"],
        severity="CRITICAL",
        summary="Remote code execution in foo-bar",
    ),
    # The same vulnerability from PyPI's own database: one finding, three names.
    record(
        "PYSEC-2025-1",
        "foo.bar",
        ranges=[[{"introduced": "0"}, {"fixed": "1.5"}], [{"introduced": "2.0"}, {"fixed": "2.3"}]],
        aliases=["CVE-2025-0001", "GHSA-aaaa-1111-0001"],
    ),
    # Up to and including 3.1.4, no fix known.
    record(
        "GHSA-bbbb-2222-0002",
        "lastpkg",
        ranges=[[{"introduced": "0"}, {"last_affected": "3.1.4"}]],
        cvss="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N",
    ),
    # Only below the limit 5.0, even though never fixed.
    record(
        "GHSA-cccc-3333-0003",
        "limitpkg",
        ranges=[[{"introduced": "4.0"}, {"limit": "5.0"}]],
        severity="LOW",
    ),
    # An explicit list of versions and no ranges.
    record("PYSEC-2025-7", "listpkg", versions=["0.9", "1.0.0"], severity="MODERATE"),
    # Withdrawn: must never match.
    record(
        "GHSA-dddd-4444-0004",
        "foo-bar",
        ranges=[[{"introduced": "0"}]],
        withdrawn="2025-07-01T00:00:00Z",
        severity="CRITICAL",
    ),
    # Pre-releases: 2.0.0rc1 is before 2.0.0, which fixed it.
    record("GHSA-eeee-5555-0005", "prepkg", ranges=[[{"introduced": "1.0"}, {"fixed": "2.0.0"}]]),
    # Another ecosystem's package of the same name.
    record("GHSA-ffff-6666-0006", "lastpkg", ranges=[[{"introduced": "0"}]], ecosystem="npm"),
]


def write_folder(folder: Path, records: list[dict[str, Any]] = RECORDS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for item in records:
        (folder / f"{item['id']}.json").write_text(json.dumps(item))
    return folder


def write_zip(path: Path, records: list[dict[str, Any]] = RECORDS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in records:
            archive.writestr(f"{item['id']}.json", json.dumps(item))
    return path
