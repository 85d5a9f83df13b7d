"""Revision 0002 on a real SQLite file: upgrading a database with artifacts in it, tombstones."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from shipyard.errors import Conflict, NotFound
from shipyard.store import Store
from shipyard.store.models import utcnow
from shipyard.store.store import MIGRATIONS

DIGEST = "sha256:" + "c" * 64
BIG = 5 * 1024**3  # 5 GiB: past a 32-bit INTEGER


def at_revision(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, revision)


def test_upgrading_keeps_artifacts_seeds_repositories_and_backfills_properties(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    url = f"sqlite:///{db}"
    at_revision(url, "0001")
    info = {"run": 4, "git": {"sha": "ab" * 20}}
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO artifacts (id, name, version, digest, size, build_info, created_at)"
            " VALUES (1, 'iris', '4-ababab', ?, ?, ?, '2026-01-01 00:00:00')",
            (DIGEST, BIG, json.dumps(info)),
        )
        for repository in ("dev", "release", "staging"):
            conn.execute(
                "INSERT INTO artifact_refs (repository, artifact_id, created_at)"
                " VALUES (?, 1, '2026-01-01 00:00:00')",
                (repository,),
            )
    store = Store(url)  # migrates to head
    try:
        repos = {
            row[0]: row[1:]
            for row in sqlite3.connect(db).execute(
                'SELECT name, immutable, "require" FROM repositories'
            )
        }
        assert repos == {
            "dev": (0, "[]"),
            "release": (1, '["test", "analyze", "qa"]'),
            "staging": (0, "[]"),
        }
        artifact = store.get_artifact("iris", "4-ababab")
        assert artifact.size == BIG and artifact.deleted_at is None
        props = sqlite3.connect(db).execute(
            "SELECT key, value, actor FROM artifact_properties ORDER BY key"
        )
        assert props.fetchall() == [
            ("build.run", "4", "migration"),
            ("git.sha", "ab" * 20, "migration"),
        ]
    finally:
        store.close()


def test_a_deleted_artifact_is_gone_but_its_version_stays_bound_to_its_digest(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    try:
        artifact = store.add_artifact("iris", "1-abc", DIGEST, 10, {}, None)
        with store.session() as s:
            row = s.get(type(artifact), artifact.id)
            assert row is not None
            row.deleted_at = utcnow()
        with pytest.raises(NotFound, match="removed by garbage collection") as caught:
            store.get_artifact("iris", "1-abc")
        assert "push" in (caught.value.hint or "")
        assert store.list_artifacts() == []
        with pytest.raises(Conflict, match="already exists with digest"):
            store.add_artifact("iris", "1-abc", "sha256:" + "d" * 64, 10, {}, None)
        again = store.add_artifact("iris", "1-abc", DIGEST, 10, {}, None)  # same bytes: restored
        assert again.id == artifact.id
        assert store.get_artifact("iris", "1-abc").deleted_at is None
        assert store.events("iris:1-abc")[0].action == "artifact.restored"
    finally:
        store.close()
