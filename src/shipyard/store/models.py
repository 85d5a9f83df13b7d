"""The metadata store's tables (ARCHITECTURE.md 2). Alembic migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    repository: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by `shipyard project add`: a server keeps a mirror of ``remote`` and starts runs for
    # pushes to ``branches`` (globs), by webhook (``webhook_secret``, encrypted) or by polling.
    registered: Mapped[bool] = mapped_column(default=False)
    remote: Mapped[str | None] = mapped_column(Text)
    branches: Mapped[list[Any] | None]
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    poll_interval: Mapped[float | None]


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("project_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    number: Mapped[int] = mapped_column(Integer)
    sha: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    trigger: Mapped[str] = mapped_column(String(32), default="cli")
    actor: Mapped[str] = mapped_column(String(128))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    pid: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The stage a re-queued run starts from (after an approval, a deploy turn or a restart).
    resume_from: Mapped[str | None] = mapped_column(String(32))
    worker: Mapped[str | None] = mapped_column(String(200))  # the lease owner driving it
    project: Mapped[Project] = relationship()
    stages: Mapped[list[StageRun]] = relationship(
        back_populates="run", order_by="StageRun.position"
    )


class StageRun(Base):
    __tablename__ = "stage_runs"
    __table_args__ = (UniqueConstraint("run_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    name: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    log_path: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    run: Mapped[Run] = relationship(back_populates="stages")


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(71))
    size: Mapped[int] = mapped_column(BigInteger)  # artifacts pass 2 GiB; INTEGER is 32-bit in PG
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    build_info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by garbage collection. The row stays (deployments, promotions and the audit log point
    # at it, and the version must never name other bytes later); the blob goes.
    deleted_at: Mapped[datetime | None]


class ArtifactRef(Base):
    """An artifact's membership of a repository (``dev``, ``release``): metadata only."""

    __tablename__ = "artifact_refs"
    __table_args__ = (UniqueConstraint("repository", "artifact_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    repository: Mapped[str] = mapped_column(String(64))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    artifact: Mapped[Artifact] = relationship()


class Repository(Base):
    """A named repository (``dev``, ``release``, ...) with its rules.

    ``immutable``: refs are never removed, retention does not apply, and promotion into it signs
    the artifact. ``require``/``allow_skipped``: the promotion policy (stages that must have
    passed, and those of them explicitly allowed to be skipped). ``keep_last``/``max_age``: the
    retention policy of a mutable repository (seconds for ``max_age``).
    """

    __tablename__ = "repositories"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    immutable: Mapped[bool] = mapped_column(default=False)
    require: Mapped[list[Any]] = mapped_column(default=list)
    allow_skipped: Mapped[list[Any]] = mapped_column(default=list)
    keep_last: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ArtifactProperty(Base):
    """A ``key=value`` on an artifact, set by a stage (``test.passed``) or a user."""

    __tablename__ = "artifact_properties"
    __table_args__ = (UniqueConstraint("artifact_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    key: Mapped[str] = mapped_column(String(128), index=True)
    value: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Signature(Base):
    """An Ed25519 signature over an artifact's (name, version, digest) statement."""

    __tablename__ = "artifact_signatures"
    __table_args__ = (UniqueConstraint("artifact_id", "key_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)  # base64 of the raw 32 bytes
    value: Mapped[str] = mapped_column(Text)  # base64 of the 64-byte signature
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attestation(Base):
    """A signed statement about an artifact: its build (``subject`` "build") or a stage's result.

    ``statement`` holds the exact signed bytes (canonical JSON naming the artifact's name,
    version and digest); ``imported`` marks one that arrived in a pushed manifest, signed by
    whichever instance made it.
    """

    __tablename__ = "artifact_attestations"
    __table_args__ = (UniqueConstraint("artifact_id", "subject", "key_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    subject: Mapped[str] = mapped_column(String(32))
    statement: Mapped[str] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    imported: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Promotion(Base):
    __tablename__ = "promotions"
    id: Mapped[int] = mapped_column(primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    source: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deployment(Base):
    """An artifact version running (or meant to run) in an environment, with its weight."""

    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(128))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    role: Mapped[str] = mapped_column(String(16))  # a shipyard.domain.Role
    weight: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(
        String(16), default="starting"
    )  # starting, ready, stopped, failed
    endpoint: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    artifact: Mapped[Artifact] = relationship()


class Rollout(Base):
    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    project: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(64))
    stable_version: Mapped[str | None] = mapped_column(String(128))
    canary_version: Mapped[str] = mapped_column(String(128))
    steps: Mapped[list[Any]] = mapped_column(default=list)
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    verdicts: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    """The audit log: who did what to what, when. Written for every state change."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Lease(Base):
    """A named lease (``run:iris#3``, ``deploy:iris``, ``rollout:7``): held while renewed.

    The holder renews it before ``expires_at``; once it has expired anyone may take it, so a
    dead holder's work is picked up by another (ARCHITECTURE.md 7).
    """

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    renewed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class OwnedProcess(Base):
    """A process Shipyard started (a stage command, a model server, a gateway) and its owner."""

    __tablename__ = "processes"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    # The process's start time on its host, so a reused pid is never taken for it.
    start_token: Mapped[str | None] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(64))
    environment: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(128))
    run_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]


class Token(Base):
    """An API token: only the sha256 of its secret is kept."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # a shipyard.domain.TokenRole
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class BrowserSession(Base):
    """A dashboard sign-in: a browser's cookie names it by the sha256 of its secret. It acts
    with its token's role, and ends when signed out, expired, or its token is revoked."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"))
    csrf: Mapped[str] = mapped_column(String(64))  # what every form and htmx request carries
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    token: Mapped[Token] = relationship()


class WebhookDelivery(Base):
    """A webhook delivery already acted on: a repeated delivery id queues nothing new."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("provider", "delivery"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    delivery: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_number: Mapped[int | None] = mapped_column(Integer)


class Approval(Base):
    """A person's decision at a gate (``release``, ``canary``) of a run."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("run_id", "gate"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    gate: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # waiting, approved, rejected, expired
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    actor: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)


class NotificationTarget(Base):
    """An outgoing webhook: where to post which events (all projects when ``project`` is None)."""

    __tablename__ = "notification_targets"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(default=list)
    project: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
