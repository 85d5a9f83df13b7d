"""The offline OSV database (import, status, lookups) and OSV's API through an in-memory transport.

OSV's API is outside this machine, so it is the one thing answered by ``httpx.MockTransport``;
no test touches the network.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.analysis.dependencies import VulnerabilityScanner, database_path
from shipyard.analysis.interface import Distribution, Target
from shipyard.analysis.policy import judge
from shipyard.analysis.vulndb import (
    DATABASE_FILE,
    OsvApi,
    OsvUnavailable,
    default_location,
    import_database,
    open_database,
)
from shipyard.config.schema import AnalyzeConfig, VulnerabilityConfig
from shipyard.errors import InvalidInput, NotFound

from .osv_records import RECORDS, record, write_folder, write_zip

IMPORTED = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DISTS = [Distribution("Foo_Bar", "1.2"), Distribution("listpkg", "0.9"), Distribution("ok", "1")]


def test_import_a_zip_and_read_its_status(tmp_path: Path) -> None:
    source = write_zip(tmp_path / "all.zip")
    status = import_database(source, tmp_path / "db", now=IMPORTED)
    assert (tmp_path / "db" / DATABASE_FILE).is_file()
    assert list((tmp_path / "db").iterdir()) == [tmp_path / "db" / DATABASE_FILE]  # no leftovers
    # The npm-only record is left out; the withdrawn one is kept (and counted) but never matched.
    assert (status.records, status.withdrawn) == (len(RECORDS) - 1, 1)
    assert status.packages == 5  # foo-bar (three spellings), lastpkg, limitpkg, listpkg, prepkg
    assert status.source == str(source) and status.newest == "2025-06-01T00:00:00Z"
    later = IMPORTED + timedelta(days=3, hours=2)
    assert status.age(later) == timedelta(days=3, hours=2)
    assert status.describe(later) == (
        "offline OSV database from 2026-01-10 (3 days old, 7 records for 5 packages)"
    )

    database = open_database(tmp_path / "db")
    assert database is not None
    assert database.status() == status
    ids = sorted(r["id"] for r in database.records_for(["FOO.bar", "nothing"]))
    assert ids == ["GHSA-aaaa-1111-0001", "GHSA-dddd-4444-0004", "PYSEC-2025-1"]
    database.close()


def test_a_folder_imports_the_same_and_bad_files_are_skipped(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "advisories")
    (folder / "notes.json").write_text('{"title": "not a record"}')
    (folder / "broken.json").write_text("{")
    (folder / "README.md").write_text("ignored: not JSON")
    status = import_database(folder, tmp_path / "db", now=IMPORTED)
    assert status.records == len(RECORDS) - 1
    assert [s.split(":")[0] for s in status.skipped] == ["broken.json", "notes.json"]


def test_an_import_replaces_the_previous_database(tmp_path: Path) -> None:
    import_database(write_zip(tmp_path / "all.zip"), tmp_path / "db", now=IMPORTED)
    one = [record("GHSA-zzzz-9999-0009", "other", ranges=[[{"introduced": "0"}]])]
    status = import_database(write_folder(tmp_path / "new", one), tmp_path / "db")
    assert status.records == 1
    database = open_database(tmp_path / "db")
    assert database is not None and database.records_for(["foo-bar"]) == []
    database.close()


def test_import_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist") as missing:
        import_database(tmp_path / "nope.zip", tmp_path / "db")
    assert missing.value.hint and "all.zip" in missing.value.hint
    (tmp_path / "all.tar").write_text("not a zip")
    with pytest.raises(InvalidInput, match=r"neither a zip file, a folder nor a \.json file"):
        import_database(tmp_path / "all.tar", tmp_path / "db")
    npm_only = [record("GHSA-n", "left-pad", ranges=[[{"introduced": "0"}]], ecosystem="npm")]
    with pytest.raises(InvalidInput, match="holds no OSV records for the PyPI ecosystem"):
        import_database(write_folder(tmp_path / "npm", npm_only), tmp_path / "db")
    assert not (tmp_path / "db" / DATABASE_FILE).exists()  # a failed import leaves nothing


def test_a_zip_or_folder_can_be_used_without_importing(tmp_path: Path) -> None:
    assert open_database(tmp_path / "absent") is None
    for source in (write_zip(tmp_path / "all.zip"), write_folder(tmp_path / "folder")):
        database = open_database(source)
        assert database is not None
        assert len(database.records_for(["listpkg"])) == 1
        assert database.status().records == len(RECORDS) - 1
        database.close()


def test_the_default_location_is_in_the_machine_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_CACHE", str(tmp_path / "cache"))
    assert default_location() == tmp_path / "cache" / "vulndb"
    assert database_path(VulnerabilityConfig(), tmp_path) == tmp_path / "cache" / "vulndb"
    relative = VulnerabilityConfig(database="security/osv")
    assert database_path(relative, tmp_path / "repo") == tmp_path / "repo" / "security" / "osv"
    absolute = VulnerabilityConfig(database=str(tmp_path / "x"))
    assert database_path(absolute, tmp_path / "repo") == tmp_path / "x"


# --- OSV's API -------------------------------------------------------------------------------


def osv_server(records: list[dict[str, Any]], seen: list[str]) -> httpx.MockTransport:
    """OSV's API as it answers: querybatch gives ids (one page at a time), vulns the records."""
    by_id = {r["id"]: r for r in records}

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/querybatch":
            results = []
            for query in json.loads(request.content)["queries"]:
                name, version = query["package"]["name"], query["version"]
                hits = [r["id"] for r in records if _affects(r, name, version)]
                if len(hits) > 1 and "page_token" not in query:
                    results.append({"vulns": [{"id": hits[0]}], "next_page_token": "p2"})
                else:
                    results.append({"vulns": [{"id": i} for i in hits[1:] or hits]})
            return httpx.Response(200, json={"results": results})
        if request.url.path.startswith("/v1/vulns/"):
            return httpx.Response(200, json=by_id[request.url.path.rsplit("/", 1)[1]])
        return httpx.Response(404)

    return httpx.MockTransport(handle)


def _affects(item: dict[str, Any], name: str, version: str) -> bool:
    from shipyard.analysis.osv import affects

    return affects(item, name, version)


def test_the_api_client_pages_and_fetches_each_record() -> None:
    seen: list[str] = []
    api = OsvApi("https://osv.test", transport=osv_server(RECORDS, seen))
    records = api.records_for(DISTS)
    assert sorted(r["id"] for r in records) == [
        "GHSA-aaaa-1111-0001",
        "PYSEC-2025-1",
        "PYSEC-2025-7",
    ]
    assert seen.count("POST /v1/querybatch") == 2  # the second page of foo-bar's results
    assert seen.count("GET /v1/vulns/PYSEC-2025-1") == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.ConnectError("no route"), "Could not reach OSV's API at https://osv.test"),
        (httpx.ReadTimeout("slow"), "Could not reach OSV's API at https://osv.test (ReadTimeout)"),
        (httpx.Response(503), "OSV's API answered 503 to POST /v1/querybatch"),
        (httpx.Response(200, text="<html>proxy login</html>"), "with invalid JSON"),
    ],
)
def test_api_failures_are_one_sentence(answer: Any, message: str) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    api = OsvApi("https://osv.test", transport=httpx.MockTransport(handle))
    with pytest.raises(OsvUnavailable, match=message.replace("(", r"\(").replace(")", r"\)")):
        api.records_for(DISTS)


# --- the scanner: sources and fallbacks ---------------------------------------------------


def scanner(database: Path, *, api: OsvApi | None = None, **settings: Any) -> VulnerabilityScanner:
    config = VulnerabilityConfig(**settings)
    now = IMPORTED + timedelta(days=2)
    return VulnerabilityScanner(config, database=database, api=api, now=now)


def test_offline_findings(tmp_path: Path) -> None:
    import_database(write_zip(tmp_path / "all.zip"), tmp_path / "db", now=IMPORTED)
    result = scanner(tmp_path / "db").scan(Target(tmp_path, distributions=DISTS))
    assert sorted(f.id for f in result.findings) == ["GHSA-aaaa-1111-0001", "PYSEC-2025-7"]
    assert result.unchecked is None and result.data["sources"] == ["offline"]
    assert result.notes == [
        "used the offline OSV database from 2026-01-10 (2 days old, 7 records for 5 packages)"
    ]
    assert result.scope == "3 installed distributions"


def test_an_old_database_is_reported(tmp_path: Path) -> None:
    import_database(write_zip(tmp_path / "all.zip"), tmp_path / "db", now=IMPORTED)
    result = scanner(tmp_path / "db", max_age="24h").scan(Target(tmp_path, distributions=DISTS))
    assert "the offline database is older than 1 day:" in result.notes[1]


def test_online_records_are_merged_with_offline_ones(tmp_path: Path) -> None:
    local = [record("INTERNAL-1", "ok", versions=["1"], severity="HIGH")]  # a team's own advisory
    import_database(write_folder(tmp_path / "own", local), tmp_path / "db", now=IMPORTED)
    api = OsvApi("https://osv.test", transport=osv_server(RECORDS, []))
    result = scanner(tmp_path / "db", api=api).scan(Target(tmp_path, distributions=DISTS))
    ids = sorted(f.id for f in result.findings)
    assert ids == ["GHSA-aaaa-1111-0001", "INTERNAL-1", "PYSEC-2025-7"]
    assert result.data["sources"] == ["offline", "osv-api"]
    assert "asked OSV's API at https://osv.test: 3 records" in result.notes


def test_an_unreachable_api_falls_back_to_the_offline_database_once(tmp_path: Path) -> None:
    import_database(write_zip(tmp_path / "all.zip"), tmp_path / "db", now=IMPORTED)
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("no route to host")

    api = OsvApi("https://osv.test", transport=httpx.MockTransport(refuse))
    result = scanner(tmp_path / "db", api=api).scan(Target(tmp_path, distributions=DISTS))
    assert len(calls) == 1
    said = [n for n in result.notes if n.startswith("Could not reach")]
    assert said == [
        "Could not reach OSV's API; used the offline database from 2026-01-10 "
        "(Could not reach OSV's API at https://osv.test (ConnectError).)"
    ]
    assert sorted(f.id for f in result.findings) == ["GHSA-aaaa-1111-0001", "PYSEC-2025-7"]


def test_no_data_at_all_is_unchecked_and_fails_only_when_required(tmp_path: Path) -> None:
    result = scanner(tmp_path / "none").scan(Target(tmp_path, distributions=DISTS))
    assert result.findings == [] and result.unchecked is not None
    assert result.notes[0].startswith("NOT CHECKED: no vulnerability data: no offline database")
    assert "shipyard vulndb import" in result.notes[0]
    today = date(2026, 1, 12)
    assert judge([result], AnalyzeConfig(), today).passed
    required = judge([result], AnalyzeConfig(), today, require=["vulnerability"])
    assert not required.passed
    assert required.failures[0].startswith("vulnerability check is required but did not run")


def test_no_environment_is_unchecked(tmp_path: Path) -> None:
    result = scanner(tmp_path).scan(Target(tmp_path))
    assert result.unchecked == "no build environment to inspect"
