"""Properties, repositories and search over a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.artifacts import LocalBlobStore
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.properties import parse_assignment, stage_properties, user_key
from shipyard.artifacts.search import parse_sha, parse_versions
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.store.store import Store

from .conftest import PASSING, Tree, publish_run

SHA = "ab12cd34" * 5


def test_properties_are_upserted_removed_and_audited(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    artifact = publish_run(tree, tmp_path / "out", store, blobs, PASSING)
    catalog = Catalog(store)
    signed = {"test.status": "passed", "analyze.status": "passed"}  # set and signed at publish
    catalog.set_properties(artifact, {"team": "vision", "qa.accuracy": "0.93"}, "alice")
    catalog.set_properties(artifact, {"team": "search"})
    assert catalog.properties(artifact) == {**signed, "qa.accuracy": "0.93", "team": "search"}
    assert catalog.unset_properties(artifact, ["team", "absent"]) == ["team"]
    assert catalog.properties(artifact) == {**signed, "qa.accuracy": "0.93"}
    actions = [e.action for e in store.events(f"iris:{artifact.version}")]
    assert actions.count("artifact.properties") == 5
    with pytest.raises(InvalidInput, match="Invalid property key 'Bad Key'"):
        catalog.set_properties(artifact, {"Bad Key": "x"})


@pytest.mark.parametrize(
    "text", ["noequals", "=x", "UPPER=x", "a/b=c", "k=" + "x" * 1025, "k=a\nb"]
)
def test_bad_assignments_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_assignment(text)


def test_users_cannot_write_the_stages_namespaces() -> None:
    assert user_key("team.owner") == "team.owner"
    for key in ("test.status", "qa.accuracy", "git.sha", "origin.signed-by"):
        with pytest.raises(InvalidInput, match="set by Shipyard's stages") as caught:
            user_key(key)
        assert "team.owner" in (caught.value.hint or "")


def test_stage_summaries_flatten_to_properties() -> None:
    found = stage_properties(
        "test", "passed", {"passed": 12, "failed": 0, "failures": [], "ok": True, "Odd Key!": 1}
    )
    assert found == {
        "test.status": "passed",
        "test.passed": "12",
        "test.failed": "0",
        "test.ok": "true",
    }


def test_search_by_name_range_sha_property_and_repository(
    tree: Tree, tmp_path: Path, store: Store, blobs: LocalBlobStore
) -> None:
    catalog = Catalog(store)
    made = []
    for number in range(1, 6):
        artifact = publish_run(tree, tmp_path / f"out{number}", store, blobs, PASSING, n=number)
        catalog.set_properties(
            artifact, {"git.sha": f"{number:x}" * 40, "qa.accuracy": f"0.9{number}"}
        )
        made.append(artifact)
    catalog.set_properties(made[2], {"team": "vision"})
    catalog.create_repository("candidates")
    store.add_ref("candidates", made[3])

    def versions(**filters: object) -> list[str]:
        return [item.artifact.version for item in catalog.search(**filters)]  # type: ignore[arg-type]

    assert versions(name="iris") == [a.version for a in reversed(made)]
    assert versions(versions=parse_versions(">=2,<4")) == ["3-ab12cd3", "2-ab12cd3"]
    assert versions(versions=parse_versions("!=1, <=2")) == ["2-ab12cd3"]
    assert versions(versions=parse_versions("5")) == ["5-ab12cd3"]
    assert versions(versions=parse_versions("4-ab12cd3")) == ["4-ab12cd3"]
    assert versions(sha=parse_sha("3333")) == ["3-ab12cd3"]
    assert versions(properties={"team": "vision"}) == ["3-ab12cd3"]
    assert versions(properties={"team": "vision", "qa.accuracy": "0.93"}) == ["3-ab12cd3"]
    assert versions(properties={"team": "vision", "qa.accuracy": "0.94"}) == []
    assert versions(repository="candidates") == ["4-ab12cd3"]
    assert versions(name="wine") == []
    described = catalog.describe("iris", "3-ab12cd3")
    assert described.repositories == ["dev"] and described.properties["team"] == "vision"


@pytest.mark.parametrize("text", ["", ">=x", ">=3,", "<<3", ">=3,<x"])
def test_bad_version_ranges_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"range|matches nothing"):
        parse_versions(text)


def test_a_version_without_a_run_number_never_falls_in_a_range() -> None:
    assert not parse_versions(">=1").matches("1.0.0-beta")
    assert parse_versions(">=1").matches("12-abcdef0")
    with pytest.raises(InvalidInput, match="not a git sha prefix"):
        parse_sha("xyz")


def test_repositories_are_seeded_created_and_their_retention_checked(store: Store) -> None:
    catalog = Catalog(store)
    rows = {r.name: r for r in catalog.repositories()}
    assert set(rows) == {"dev", "release"}
    assert rows["release"].immutable and rows["release"].require == ["test", "analyze", "qa"]
    assert not rows["dev"].immutable and rows["dev"].require == []
    with pytest.raises(Conflict, match="already exists"):
        catalog.create_repository("dev")
    with pytest.raises(InvalidInput, match="immutable: it keeps every version"):
        catalog.set_retention("release", 3, None)
    with pytest.raises(InvalidInput, match="--keep-last must be at least 1"):
        catalog.set_retention("dev", 0, None)
    assert catalog.set_retention("dev", 5, 86400).keep_last == 5
    with pytest.raises(NotFound, match="There is no repository 'prod'") as caught:
        catalog.repository("prod")
    assert "create-repo" in (caught.value.hint or "")
