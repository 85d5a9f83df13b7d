"""artifact repository: repositories, properties, signatures, tombstones, 64-bit sizes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RELEASE_GATES = ["test", "analyze", "qa"]


def upgrade() -> None:
    repositories = op.create_table(
        "repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("immutable", sa.Boolean(), nullable=False),
        sa.Column("require", sa.JSON(), nullable=False),
        sa.Column("allow_skipped", sa.JSON(), nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("max_age", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "artifact_properties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("artifact_id", "key"),
    )
    op.create_index("ix_artifact_properties_artifact_id", "artifact_properties", ["artifact_id"])
    op.create_index("ix_artifact_properties_key", "artifact_properties", ["key"])
    op.create_table(
        "artifact_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("artifact_id", "key_id"),
    )
    op.create_index("ix_artifact_signatures_artifact_id", "artifact_signatures", ["artifact_id"])
    with op.batch_alter_table("artifacts") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
        batch.alter_column("size", existing_type=sa.Integer(), type_=sa.BigInteger())
    _seed(repositories)
    _backfill_properties()


def _seed(repositories: sa.Table) -> None:
    """``dev`` and ``release``, plus any repository an earlier promotion named."""
    now = datetime.now(UTC).replace(tzinfo=None)
    named = {
        row[0] for row in op.get_bind().execute(sa.text("SELECT repository FROM artifact_refs"))
    }
    rows = [_repository("dev", False, [], now), _repository("release", True, RELEASE_GATES, now)]
    rows += [_repository(name, False, [], now) for name in sorted(named - {"dev", "release"})]
    op.bulk_insert(repositories, rows)


def _repository(name: str, immutable: bool, require: list[str], now: datetime) -> dict[str, object]:
    return {
        "name": name,
        "immutable": immutable,
        "require": require,
        "allow_skipped": [],
        "keep_last": None,
        "max_age": None,
        "created_at": now,
        "updated_at": now,
    }


def _backfill_properties() -> None:
    """Artifacts published before properties existed get git.sha and build.run from build-info."""
    bind = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None)
    table = sa.table(
        "artifact_properties",
        sa.column("artifact_id", sa.Integer()),
        sa.column("key", sa.String()),
        sa.column("value", sa.Text()),
        sa.column("actor", sa.String()),
        sa.column("updated_at", sa.DateTime()),
    )
    artifacts = sa.table(
        "artifacts", sa.column("id", sa.Integer()), sa.column("build_info", sa.JSON())
    )
    rows = []
    for artifact_id, info in bind.execute(sa.select(artifacts.c.id, artifacts.c.build_info)):
        info = info or {}
        sha = (info.get("git") or {}).get("sha")
        found = {"git.sha": sha, "build.run": info.get("run")}
        for key, value in found.items():
            if value is not None:
                rows.append(
                    {
                        "artifact_id": artifact_id,
                        "key": key,
                        "value": str(value),
                        "actor": "migration",
                        "updated_at": now,
                    }
                )
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("size", existing_type=sa.BigInteger(), type_=sa.Integer())
        batch.drop_column("deleted_at")
    op.drop_index("ix_artifact_signatures_artifact_id", "artifact_signatures")
    op.drop_table("artifact_signatures")
    op.drop_index("ix_artifact_properties_key", "artifact_properties")
    op.drop_index("ix_artifact_properties_artifact_id", "artifact_properties")
    op.drop_table("artifact_properties")
    op.drop_table("repositories")
