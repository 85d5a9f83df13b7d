"""Known vulnerabilities in the exact distributions installed in the build environment.

The build environment is another virtualenv than Shipyard's, so its distributions are read by
a short script run with *its* interpreter (``python -I``: no user site, no working directory
on the path), which prints their names, versions and licence metadata as JSON. What is
installed is what ships, whatever the lock said.

Records come from the offline database and, when ``online`` is set, from OSV's API as well
(merged by id: the API's copy wins, local records of a team's own advisories still count).
When the API cannot be reached, the scan says so once and goes on with the offline data; when
there is no data at all, the check is *unchecked*, which the policy fails when
``vulnerabilities.required`` is set and shows loudly otherwise.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shipyard.analysis.interface import Distribution, ScanResult, Target
from shipyard.analysis.osv import findings_for, normalize
from shipyard.analysis.vulndb import (
    DatabaseStatus,
    OsvApi,
    OsvUnavailable,
    default_location,
    open_database,
)
from shipyard.config.schema import VulnerabilityConfig
from shipyard.errors import StageFailed

__all__ = ["VulnerabilityScanner", "database_path", "installed_distributions"]

# Run by the build environment's interpreter: standard library only, any Python 3.8+.
_INVENTORY = """
import json, sys
from importlib import metadata
paths = sys.argv[1:] or None
found = []
for dist in (metadata.distributions(path=paths) if paths else metadata.distributions()):
    meta = dist.metadata
    name = meta["Name"] if meta else None
    if not name:
        continue
    found.append({
        "name": name,
        "version": dist.version,
        "license_expression": meta.get("License-Expression"),
        "license": meta.get("License"),
        "classifiers": [c for c in (meta.get_all("Classifier") or []) if c.startswith("License")],
    })
json.dump(found, sys.stdout)
"""


def installed_distributions(
    python: Path, *, paths: Sequence[Path] = (), timeout: float = 60
) -> list[Distribution]:
    """The distributions ``python`` sees (or those in ``paths``), first one per name."""
    command = [str(python), "-I", "-c", _INVENTORY, *map(str, paths)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StageFailed(f"Could not list the distributions of {python}: {error}") from error
    if done.returncode != 0:
        tail = done.stderr.strip()[-1000:] or "(no output)"
        raise StageFailed(f"Could not list the distributions of {python}: {tail}")
    seen: dict[str, Distribution] = {}
    for item in json.loads(done.stdout):
        # Like importlib, the first distribution of a name on the path is the one imported.
        seen.setdefault(normalize(item["name"]), _distribution(item))
    return sorted(seen.values(), key=lambda d: normalize(d.name))


def _distribution(item: dict[str, Any]) -> Distribution:
    return Distribution(
        name=str(item["name"]),
        version=str(item["version"]),
        license_expression=item.get("license_expression") or None,
        license=item.get("license") or None,
        classifiers=tuple(item.get("classifiers") or ()),
    )


def database_path(config: VulnerabilityConfig, root: Path) -> Path:
    """The configured database (relative to the project root), else the machine's default."""
    if config.database is None:
        return default_location()
    path = Path(config.database).expanduser()
    return path if path.is_absolute() else root / path


class VulnerabilityScanner:
    kind = "vulnerability"

    def __init__(
        self,
        config: VulnerabilityConfig,
        *,
        database: Path,
        api: OsvApi | None = None,
        now: datetime | None = None,
    ) -> None:
        self.config = config
        self.database = database
        self.api = api  # None: offline only
        self.now = now or datetime.now(UTC)

    def scan(self, target: Target) -> ScanResult:
        if target.distributions is None:
            return _unchecked("no build environment to inspect", "no environment")
        dists = list(target.distributions)
        scope = f"{len(dists)} installed distributions"
        notes: list[str] = []
        offline, status = self._offline(dists, notes)
        online = self._online(dists, status, notes)
        if offline is None and online is None:
            reason = f"no vulnerability data: no offline database at {self.database}" + (
                " and OSV's API was not reachable" if self.api else ""
            )
            notes.append(f"NOT CHECKED: {reason}; run `shipyard vulndb import all.zip`")
            return ScanResult(self.kind, [], scope, notes, unchecked=reason)
        merged = {str(r["id"]): r for r in (offline or [])}
        merged |= {str(r["id"]): r for r in (online or [])}
        sources = [s for s, data in (("offline", offline), ("osv-api", online)) if data is not None]
        data: dict[str, Any] = {"sources": sources, "distributions": len(dists)}
        if status is not None:
            data["database"] = status.to_dict(self.now)
        return ScanResult(self.kind, findings_for(dists, merged.values()), scope, notes, data=data)

    def _offline(
        self, dists: list[Distribution], notes: list[str]
    ) -> tuple[list[dict[str, Any]] | None, DatabaseStatus | None]:
        database = open_database(self.database, now=self.now)
        if database is None:
            return None, None
        try:
            status = database.status()
            records = database.records_for(d.name for d in dists)
        finally:
            database.close()
        notes.append(f"used the {status.describe(self.now)}")
        if status.age(self.now) > timedelta(seconds=self.config.max_age):
            notes.append(
                f"the offline database is older than {_days(self.config.max_age)}: "
                "import a fresh all.zip with `shipyard vulndb import`"
            )
        return records, status

    def _online(
        self, dists: list[Distribution], status: DatabaseStatus | None, notes: list[str]
    ) -> list[dict[str, Any]] | None:
        if self.api is None:
            return None
        try:
            records = self.api.records_for(dists)
        except OsvUnavailable as error:
            fallback = (
                f"used the offline database from {status.imported_at:%Y-%m-%d}"
                if status
                else "and there is no offline database"
            )
            notes.append(f"Could not reach OSV's API; {fallback} ({error.message})")
            return None
        notes.append(f"asked OSV's API at {self.api.base_url}: {len(records)} records")
        return records


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} day{'s' if days != 1 else ''}" if days >= 1 else f"{seconds:g}s"


def _unchecked(reason: str, scope: str) -> ScanResult:
    return ScanResult("vulnerability", [], scope, [f"NOT CHECKED: {reason}"], unchecked=reason)
