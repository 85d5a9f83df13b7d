"""Matching distributions against OSV records: ranges, lists, limits, aliases, fixes, severity."""

from __future__ import annotations

import pytest

from shipyard.analysis.interface import Distribution
from shipyard.analysis.osv import (
    affects,
    cvss3_base_score,
    findings_for,
    lowest_fix,
    normalize,
    severity_of,
)

from .osv_records import RECORDS, record

BY_ID = {r["id"]: r for r in RECORDS}
TWO_INTERVALS = BY_ID["GHSA-aaaa-1111-0001"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9", False),
        ("1.0", True),
        ("1.4.9", True),
        ("1.5", False),  # fixed
        ("1.9", False),  # between the intervals
        ("2.0.0", True),  # 2.0 == 2.0.0 under PEP 440
        ("2.2.post1", True),
        ("2.3", False),
        ("3.0", False),
    ],
)
def test_a_range_with_two_intervals(version: str, expected: bool) -> None:
    assert affects(TWO_INTERVALS, "foo-bar", version) is expected


@pytest.mark.parametrize("name", ["Foo_Bar", "foo-bar", "FOO.BAR", "foo__bar"])
def test_names_are_compared_after_pep_503_normalisation(name: str) -> None:
    assert normalize(name) == "foo-bar"
    assert affects(TWO_INTERVALS, name, "1.1")
    assert not affects(TWO_INTERVALS, "foobar", "1.1")


def test_last_affected_includes_that_version_and_nothing_after() -> None:
    last = BY_ID["GHSA-bbbb-2222-0002"]
    assert affects(last, "lastpkg", "0.1")
    assert affects(last, "lastpkg", "3.1.4")
    assert not affects(last, "lastpkg", "3.1.5")
    assert not affects(last, "lastpkg", "3.1.4.post1")


def test_limit_bounds_the_range() -> None:
    limited = BY_ID["GHSA-cccc-3333-0003"]
    assert not affects(limited, "limitpkg", "3.9")
    assert affects(limited, "limitpkg", "4.7")
    assert not affects(limited, "limitpkg", "5.0")
    open_ended = record("X-1", "p", ranges=[[{"introduced": "1.0"}, {"limit": "*"}]])
    assert affects(open_ended, "p", "99")


def test_explicit_versions_list() -> None:
    listed = BY_ID["PYSEC-2025-7"]
    assert affects(listed, "listpkg", "0.9")
    assert affects(listed, "listpkg", "1.0")  # 1.0 is 1.0.0
    assert not affects(listed, "listpkg", "0.9.1")
    odd = record("X-2", "odd", versions=["2024-snapshot"])
    assert affects(odd, "odd", "2024-snapshot")  # not PEP 440: compared as text
    assert not affects(odd, "odd", "2024")


def test_withdrawn_records_never_match() -> None:
    withdrawn = BY_ID["GHSA-dddd-4444-0004"]
    assert not affects(withdrawn, "foo-bar", "1.1")
    assert affects({**withdrawn, "withdrawn": None}, "foo-bar", "1.1")


def test_pre_releases_order_before_their_release() -> None:
    pre = BY_ID["GHSA-eeee-5555-0005"]
    assert affects(pre, "prepkg", "2.0.0rc1")
    assert affects(pre, "prepkg", "2.0.0.dev3")
    assert not affects(pre, "prepkg", "2.0.0")
    assert not affects(pre, "prepkg", "1.0a1")  # before the introduction
    assert lowest_fix([pre], "prepkg", "2.0.0rc1") == "2.0.0"


def test_other_ecosystems_and_git_ranges_are_ignored() -> None:
    npm = BY_ID["GHSA-ffff-6666-0006"]
    assert not affects(npm, "lastpkg", "0.1")
    git = {
        "id": "X-3",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "g"},
                "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    assert not affects(git, "g", "1.0")


def test_the_lowest_fix_that_leaves_the_vulnerability_behind() -> None:
    group = [TWO_INTERVALS, BY_ID["PYSEC-2025-1"]]
    assert lowest_fix(group, "foo-bar", "1.2") == "1.5"
    assert lowest_fix(group, "foo-bar", "2.1") == "2.3"  # 1.5 is lower but not an upgrade
    assert lowest_fix([BY_ID["GHSA-bbbb-2222-0002"]], "lastpkg", "1.0") is None
    # A fix that another record of the group still affects is skipped.
    other = record("X-4", "foo-bar", ranges=[[{"introduced": "2.3"}, {"fixed": "2.4"}]])
    assert lowest_fix([TWO_INTERVALS, other], "foo-bar", "2.1") == "2.4"


def test_aliased_records_become_one_finding_with_every_name() -> None:
    dists = [
        Distribution("Foo_Bar", "2.1"),
        Distribution("lastpkg", "3.0"),
        Distribution("limitpkg", "5.1"),  # past the limit
        Distribution("listpkg", "1.0.0"),
        Distribution("safe", "1.0"),
    ]
    found = {f.id: f for f in findings_for(dists, RECORDS)}
    assert sorted(found) == ["GHSA-aaaa-1111-0001", "GHSA-bbbb-2222-0002", "PYSEC-2025-7"]
    foo = found["GHSA-aaaa-1111-0001"]
    assert foo.aliases == ("CVE-2025-0001", "PYSEC-2025-1")
    assert foo.severity == "critical"  # the worst of the group
    assert foo.location == "Foo_Bar==2.1"
    assert foo.fix == "upgrade Foo_Bar to 2.3"
    assert foo.title == "Remote code execution in foo-bar"
    assert foo.details["records"] == ["GHSA-aaaa-1111-0001", "PYSEC-2025-1"]
    assert found["GHSA-bbbb-2222-0002"].fix == "no fixed version is known yet"
    assert found["PYSEC-2025-7"].severity == "medium"  # GitHub's MODERATE


def test_severity_from_the_database_then_cvss_then_high() -> None:
    assert severity_of(record("S-1", "p", severity="HIGH")) == "high"
    assert (
        severity_of(
            record("S-2", "p", severity="LOW", cvss="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
        )
        == "low"
    )
    critical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert severity_of(record("S-3", "p", cvss=critical)) == "critical"
    assert (
        severity_of(record("S-4", "p", cvss="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N"))
        == "medium"
    )
    assert severity_of(record("S-5", "p")) == "high"  # unrated: not assumed harmless
    assert severity_of(record("S-6", "p", cvss="CVSS:4.0/AV:N/AC:L/AT:N")) == "high"


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N", 6.5),
        ("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.8),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_scores(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


def test_not_a_cvss3_vector() -> None:
    assert cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") is None  # CVSS v2
    assert cvss3_base_score("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") is None
