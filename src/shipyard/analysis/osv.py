"""Matching installed distributions against OSV records (https://ossf.github.io/osv-schema/).

A record affects ``name==version`` when one of its ``affected`` entries is for the PyPI
ecosystem, names the same project after PEP 503 normalisation (``Foo_Bar`` is ``foo-bar``),
and either lists the version in ``versions`` or has an ``ECOSYSTEM`` range containing it.
Range events are evaluated as the OSV specification's pseudocode does: sorted by PEP 440
version (``introduced: "0"`` first), ``introduced`` opens an interval, ``fixed`` closes it at
that version, ``last_affected`` closes it after that version, and ``limit`` bounds the whole
range. Records with ``withdrawn`` set are ignored.

Severity: the record's ``database_specific.severity`` (GitHub's LOW/MODERATE/HIGH/CRITICAL)
when present, else the highest CVSS v3 base score in ``severity`` turned into a word, else
``high``: a known vulnerability with no rating is not assumed to be harmless.

Records that name each other as aliases (PYSEC-2023-1 and GHSA-x for the same CVE) become
one finding, with every id shown together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from shipyard.analysis.interface import Distribution, Finding, rank

__all__ = [
    "affects",
    "cvss3_base_score",
    "findings_for",
    "lowest_fix",
    "normalize",
    "severity_of",
]

Record = Mapping[str, Any]
ECOSYSTEM = "PyPI"
_GITHUB_SEVERITY = {"low": "low", "moderate": "medium", "medium": "medium", "high": "high"}
_GITHUB_SEVERITY["critical"] = "critical"


def normalize(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` are one ``-``; case does not matter."""
    return str(canonicalize_name(name))


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


# --- does a record affect a version? -------------------------------------------------------


def affects(record: Record, name: str, version: str) -> bool:
    if record.get("withdrawn"):
        return False
    return any(_entry_affects(entry, version) for entry in _entries(record, name))


def _entries(record: Record, name: str) -> Iterable[Mapping[str, Any]]:
    wanted = normalize(name)
    for entry in record.get("affected") or []:
        package = entry.get("package") or {}
        if package.get("ecosystem") == ECOSYSTEM and normalize(package.get("name", "")) == wanted:
            yield entry


def _entry_affects(entry: Mapping[str, Any], version: str) -> bool:
    parsed = _version(version)
    listed = entry.get("versions") or []
    # The explicit list is compared as PEP 440 versions (1.0 is 1.0.0), and as text for a
    # version PEP 440 cannot parse.
    if version in listed or (parsed is not None and parsed in map(_version, listed)):
        return True
    if parsed is None:
        return False
    # PyPI's ranges are ECOSYSTEM ones; a SEMVER range is compared the same way (PEP 440).
    ranges = [r for r in entry.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")]
    return any(_in_range(parsed, r.get("events") or []) for r in ranges)


def _in_range(version: Version, events: Sequence[Mapping[str, str]]) -> bool:
    limits = [event["limit"] for event in events if "limit" in event]
    if limits and not any(limit == "*" or _before(version, limit) for limit in limits):
        return False
    affected = False
    for kind, at in _sorted_events(events):
        if kind == "introduced" and version >= at:
            affected = True
        elif (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at):
            affected = False
    return affected


def _before(version: Version, limit: str) -> bool:
    bound = _version(limit)
    return bound is not None and version < bound


def _sorted_events(events: Sequence[Mapping[str, str]]) -> list[tuple[str, Version]]:
    parsed: list[tuple[str, Version]] = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event:
                # "0" is the spec's "from the very first version".
                at = Version("0") if event[kind] == "0" else _version(event[kind])
                if at is not None:  # an unparsable bound cannot be compared: left out
                    parsed.append((kind, at))
    return sorted(parsed, key=lambda pair: pair[1])


# --- the fix -------------------------------------------------------------------------------


def lowest_fix(records: Sequence[Record], name: str, version: str) -> str | None:
    """The lowest ``fixed`` version above ``version`` that none of ``records`` affects."""
    current = _version(version)
    candidates: set[Version] = set()
    for record in records:
        for entry in _entries(record, name):
            for rng in entry.get("ranges") or []:
                for event in rng.get("events") or []:
                    fixed = _version(event.get("fixed", ""))
                    if fixed is not None and (current is None or fixed > current):
                        candidates.add(fixed)
    for candidate in sorted(candidates):
        if not any(affects(record, name, str(candidate)) for record in records):
            return str(candidate)
    return None


# --- severity ------------------------------------------------------------------------------


def severity_of(record: Record) -> str:
    words = [_word(record.get("database_specific") or {})]
    for entry in record.get("affected") or []:
        words += [_word(entry.get("database_specific") or {})]
        words += [_word(entry.get("ecosystem_specific") or {})]
    rated = [word for word in words if word]
    if rated:
        return max(rated, key=rank)
    ratings = [*(record.get("severity") or [])]
    for entry in record.get("affected") or []:
        ratings += entry.get("severity") or []
    scores = [
        cvss3_base_score(str(item.get("score", "")))
        for item in ratings
        if item.get("type") == "CVSS_V3"
    ]
    known = [score for score in scores if score is not None]
    return _score_word(max(known)) if known else "high"


def _word(specific: Mapping[str, Any]) -> str | None:
    value = specific.get("severity")
    return _GITHUB_SEVERITY.get(value.lower()) if isinstance(value, str) else None


def _score_word(score: float) -> str:
    # CVSS v3's qualitative scale; "none" (0.0) is shown as low rather than hidden.
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    return "medium" if score >= 4.0 else "low"


_CVSS_WEIGHTS = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS_VECTOR = re.compile(r"^CVSS:3\.[01]/")


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS v3.0/3.1 base score of a vector string, or None when it is not one."""
    if not _CVSS_VECTOR.match(vector):
        return None
    metrics = dict(part.split(":", 1) for part in vector.split("/")[1:] if ":" in part)
    try:
        weights = {key: table[metrics[key]] for key, table in _CVSS_WEIGHTS.items()}
        changed = {"U": False, "C": True}[metrics["S"]]
        privileges = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}
        pr = privileges[metrics["PR"]]
    except KeyError:
        return None
    iss = 1 - (1 - weights["C"]) * (1 - weights["I"]) * (1 - weights["A"])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    exploitability = 8.22 * weights["AV"] * weights["AC"] * pr * weights["UI"]
    if impact <= 0:
        return 0.0
    base = (impact + exploitability) * (1.08 if changed else 1)
    return _round_up(min(base, 10.0))


def _round_up(value: float) -> float:
    # CVSS v3.1's Roundup: the smallest one-decimal number >= value, free of float noise.
    scaled = round(value * 100000)
    return scaled / 100000.0 if scaled % 10000 == 0 else (math.floor(scaled / 10000) + 1) / 10.0


# --- findings ------------------------------------------------------------------------------

# Which id of a group of aliased records leads: GitHub's ids are the most widely shown.
_PREFERENCE = ("GHSA-", "PYSEC-", "CVE-")


def findings_for(distributions: Sequence[Distribution], records: Iterable[Record]) -> list[Finding]:
    """One finding per (distribution, group of aliased records) that affects it."""
    by_name: dict[str, list[Record]] = {}
    for record in records:
        for entry in record.get("affected") or []:
            package = entry.get("package") or {}
            if package.get("ecosystem") == ECOSYSTEM:
                by_name.setdefault(normalize(package.get("name", "")), []).append(record)
    found: list[Finding] = []
    for dist in distributions:
        hits = [
            r
            for r in _unique(by_name.get(normalize(dist.name), []))
            if affects(r, dist.name, dist.version)
        ]
        found += [_finding(dist, group) for group in _alias_groups(hits)]
    return found


def _unique(records: list[Record]) -> list[Record]:
    seen: dict[str, Record] = {}
    for record in records:
        seen.setdefault(str(record.get("id")), record)
    return list(seen.values())


def _alias_groups(records: list[Record]) -> list[list[Record]]:
    groups: list[tuple[set[str], list[Record]]] = []
    for record in records:
        names = {str(record.get("id")), *map(str, record.get("aliases") or [])}
        joined = [group for group in groups if group[0] & names]
        merged_names = names.union(*(g[0] for g in joined))
        merged = [r for g in joined for r in g[1]] + [record]
        groups = [g for g in groups if g not in joined] + [(merged_names, merged)]
    return [group[1] for group in groups]


def _lead(ids: set[str]) -> str:
    def key(value: str) -> tuple[int, str]:
        order = next((i for i, p in enumerate(_PREFERENCE) if value.startswith(p)), 99)
        return order, value

    return min(ids, key=key)


def _finding(dist: Distribution, group: list[Record]) -> Finding:
    ids = {str(r.get("id")) for r in group}
    names = ids.union(*(set(map(str, r.get("aliases") or [])) for r in group))
    lead = _lead(ids)
    record = next(r for r in group if r.get("id") == lead)
    severity = max((severity_of(r) for r in group), key=rank)
    fixed = lowest_fix(group, dist.name, dist.version)
    fix = f"upgrade {dist.name} to {fixed}" if fixed else "no fixed version is known yet"
    title = str(record.get("summary") or record.get("details") or "known vulnerability")
    return Finding(
        kind="vulnerability",
        id=lead,
        severity=severity,
        title=title.strip().splitlines()[0][:200],
        location=f"{dist.name}=={dist.version}",
        aliases=tuple(sorted(names - {lead})),
        fix=fix,
        details={
            "package": dist.name,
            "version": dist.version,
            "fixed": fixed,
            "records": sorted(ids),
        },
    )
