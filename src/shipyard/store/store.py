"""The metadata store: one facade over SQLAlchemy sessions, with the audit log built in.

Every method that changes state writes an :class:`Event` in the same transaction, so the audit
log can never disagree with the state it describes.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker
from sqlalchemy.pool import StaticPool

from shipyard.domain import STAGES, Status
from shipyard.errors import Conflict, NotFound
from shipyard.store.catalog import CatalogRows
from shipyard.store.models import (
    Artifact,
    ArtifactRef,
    Deployment,
    Event,
    Project,
    Promotion,
    Rollout,
    Run,
    StageRun,
    utcnow,
)
from shipyard.store.records import RunRecord, no_such_run, read_run_records
from shipyard.store.revisions import MIGRATIONS, head_revision
from shipyard.store.rollouts import RolloutRows

# A run is read with its project and stages: one query each, not one per run (the API lists
# runs on every dashboard refresh).
WITH_STAGES = (joinedload(Run.project), selectinload(Run.stages))

READ_ONLY = "shipyard_read_only"


_ACTOR: ContextVar[str | None] = ContextVar("shipyard_actor", default=None)


def current_actor() -> str:
    """Who is acting: the API token's name within ``acting_as``, else ``$SHIPYARD_ACTOR``
    (CI, webhooks), else the OS user."""
    acting = _ACTOR.get()
    if acting:
        return acting
    try:
        return os.environ.get("SHIPYARD_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Every event recorded inside (in this thread or task) names ``actor``."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by _sqlite_begin, not by the driver (SQLAlchemy's recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock at the start, so read-then-write sequences (the next run
    # number) cannot interleave between processes. A session that only reads (Store.reading)
    # begins DEFERRED: in WAL mode it then waits for no writer and no writer waits for it.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def in_memory(url: str) -> bool:
    """``sqlite://`` (or ``sqlite:///:memory:``): the store's twin for fast tests."""
    return url in ("sqlite://", "sqlite:///:memory:")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # In memory, every thread must share the one connection that holds the database.
        pooling: dict[str, Any] = {"poolclass": StaticPool} if in_memory(url) else {}
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **pooling
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def schema_revision(engine: Engine) -> str | None:
    """The revision Alembic recorded in the database; None for a new database."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        )
        if cursor.fetchone() is None:
            return None
        cursor.execute("SELECT version_num FROM alembic_version")
        row = cursor.fetchone()
        connection.rollback()
        return str(row[0]) if row else None
    finally:
        connection.close()


def migrate(url: str, connection: Connection | None = None) -> None:
    """Bring the schema to the newest Alembic revision (over ``connection`` when given)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    command.upgrade(config, "head")


class Store:
    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # In memory all threads share one connection: one transaction at a time on it.
        self._serial: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if in_memory(url) else contextlib.nullcontext()
        )
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with self.engine.connect():
                pass  # the first connection switches the file to WAL before migrating
            if run_migrations and schema_revision(self.engine) != head_revision():
                # Two processes opening a new state directory at once must not both migrate.
                with FileLock(f"{path}.migrate.lock"):
                    migrate(url)
        elif in_memory(url):
            with self.engine.begin() as connection:  # a new engine would see another database
                migrate(url, connection)
        elif run_migrations:
            migrate(url)

    def close(self) -> None:
        self.engine.dispose()

    # Rows of one concept each, in their own modules: the store stays the one place of SQL.

    @cached_property
    def catalog(self) -> CatalogRows:
        return CatalogRows(self)

    @cached_property
    def rollouts(self) -> RolloutRows:
        return RolloutRows(self)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._serial, self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only: it neither waits for nor blocks the one writer (API
        reads under load)."""
        with self._serial, self._sessions.begin() as session:
            session.connection(execution_options={READ_ONLY: True})
            yield session

    @staticmethod
    def record(
        session: Session, action: str, subject: str, actor: str | None = None, **detail: Any
    ) -> None:
        session.add(
            Event(actor=actor or current_actor(), action=action, subject=subject, detail=detail)
        )

    def record_event(
        self, action: str, subject: str, actor: str | None = None, **detail: Any
    ) -> None:
        """An audit event that goes with no change of state (an override, a key rotation)."""
        with self.session() as s:
            self.record(s, action, subject, actor, **detail)

    # -- projects and runs ---------------------------------------------------------------------

    def ensure_project(self, name: str, repository: str) -> Project:
        with self.session() as s:
            project = s.scalar(select(Project).where(Project.name == name))
            if project is None:
                project = Project(name=name, repository=repository)
                s.add(project)
                self.record(s, "project.created", name, repository=repository)
            elif project.repository != repository:
                self.record(s, "project.moved", name, old=project.repository, new=repository)
                project.repository = repository
            return project

    def create_run(self, project: str, sha: str, ref: str | None, *, trigger: str = "cli") -> Run:
        """A new run, numbered per project, pinned to ``sha``, with every stage queued."""
        with self.session() as s:
            proj = self._project(s, project)
            number = (
                s.scalar(select(func.max(Run.number)).where(Run.project_id == proj.id)) or 0
            ) + 1
            run = Run(
                project_id=proj.id,
                number=number,
                sha=sha,
                ref=ref,
                trigger=trigger,
                actor=current_actor(),
                pid=os.getpid(),
            )
            s.add(run)
            s.flush()
            for position, name in enumerate(STAGES):
                s.add(StageRun(run_id=run.id, name=name, position=position))
            self.record(s, "run.created", f"{project}#{number}", sha=sha, ref=ref, trigger=trigger)
        return self.get_run(project, number)

    def get_run(self, project: str, number: int | None = None) -> Run:
        """A run with its stages; the newest when ``number`` is None."""
        with self.reading() as s:
            query = select(Run).join(Project).where(Project.name == project).options(*WITH_STAGES)
            if number is None:
                query = query.order_by(Run.number.desc())
            else:
                query = query.where(Run.number == number)
            run = s.scalars(query.limit(1)).first()
            if run is None:
                raise no_such_run(project, number)
            _ = run.stages, run.project
            return run

    def generation(self) -> int:
        """The id of the newest event. Every change writes one in its own transaction, so a
        view read at the same generation is still current (``services/cache.py``). Asked on
        every API read, so it skips the ORM: one statement on a pooled connection."""
        with self._serial:
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute("SELECT max(id) FROM events")
                newest = cursor.fetchone()
                cursor.close()
                connection.rollback()  # end the read (a no-op outside a transaction)
            finally:
                connection.close()
        return int(newest[0] or 0) if newest else 0

    def run_records(
        self, project: str | None = None, *, number: int | None = None, limit: int = 20
    ) -> list[RunRecord]:
        """Runs as plain rows with their stages' rows, newest first: the read path of the API
        and the CLI, without building ORM objects (ten times cheaper for a page of runs). The
        statements are ``store/records.py``'s, which ``shipyard status`` runs through sqlite3."""
        with self.reading() as s:

            def fetch(sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
                return [dict(row) for row in s.execute(text(sql), dict(params)).mappings()]

            return read_run_records(fetch, project, number=number, limit=limit)

    def list_projects(self) -> Sequence[Project]:
        with self.session() as s:
            return s.scalars(select(Project).order_by(Project.name)).all()

    def set_run_status(
        self, project: str, number: int, status: Status, message: str | None = None, **fields: Any
    ) -> None:
        with self.session() as s:
            run = self._run(s, project, number)
            run.status = status.value
            if message is not None:
                run.message = message
            for key, value in fields.items():
                setattr(run, key, value)
            if status is Status.RUNNING and run.started_at is None:
                run.started_at = utcnow()
            if status.finished:
                run.finished_at = utcnow()
            self.record(s, f"run.{status.value}", f"{project}#{number}", message=message)

    def set_stage_status(
        self,
        project: str,
        number: int,
        stage: str,
        status: Status,
        message: str | None = None,
        *,
        summary: dict[str, Any] | None = None,
        log_path: str | None = None,
    ) -> None:
        with self.session() as s:
            run = self._run(s, project, number)
            row = s.scalar(
                select(StageRun).where(StageRun.run_id == run.id, StageRun.name == stage)
            )
            if row is None:
                raise NotFound(f"Run {project}#{number} has no stage {stage!r}.")
            row.status = status.value
            row.message = message if message is not None else row.message
            if summary is not None:
                row.summary = {**row.summary, **summary}
            if log_path is not None:
                row.log_path = log_path
            if status is Status.RUNNING:
                row.started_at = utcnow()
            if status.finished:
                row.finished_at = utcnow()
            self.record(s, f"stage.{status.value}", f"{project}#{number}/{stage}", message=message)

    def request_cancel(self, project: str, number: int) -> Run:
        with self.session() as s:
            run = self._run(s, project, number)
            if Status(run.status).finished:
                raise Conflict(f"Run {project}#{number} has already finished ({run.status}).")
            run.cancel_requested = True
            self.record(s, "run.cancel-requested", f"{project}#{number}")
        return self.get_run(project, number)

    def cancel_requested(self, project: str, number: int) -> bool:
        with self.session() as s:
            return bool(self._run(s, project, number).cancel_requested)

    def active_runs(self, project: str) -> Sequence[Run]:
        with self.session() as s:
            active = [Status.QUEUED.value, Status.RUNNING.value, Status.WAITING.value]
            query = select(Run).join(Project).where(Project.name == project, Run.status.in_(active))
            runs = s.scalars(query.order_by(Run.number)).all()
            for run in runs:
                _ = run.stages
            return runs

    # -- artifacts and repositories ------------------------------------------------------------

    def add_artifact(
        self,
        name: str,
        version: str,
        digest: str,
        size: int,
        build_info: dict[str, Any],
        run_id: int | None,
    ) -> Artifact:
        with self.session() as s:
            existing = s.scalar(
                select(Artifact).where(Artifact.name == name, Artifact.version == version)
            )
            if existing is not None:
                if existing.digest != digest:
                    raise Conflict(
                        f"Artifact {name}:{version} already exists with digest {existing.digest}, not {digest}.",
                        hint="Versions are immutable; build a new version instead.",
                    )
                if existing.deleted_at is not None:  # the same bytes again: back from the gc
                    existing.deleted_at = None
                    self.record(s, "artifact.restored", f"{name}:{version}", digest=digest)
                return existing
            artifact = Artifact(
                name=name,
                version=version,
                digest=digest,
                size=size,
                build_info=build_info,
                run_id=run_id,
            )
            s.add(artifact)
            self.record(s, "artifact.created", f"{name}:{version}", digest=digest, size=size)
            return artifact

    def get_artifact(self, name: str, version: str) -> Artifact:
        with self.session() as s:
            artifact = s.scalar(
                select(Artifact).where(Artifact.name == name, Artifact.version == version)
            )
            if artifact is None:
                raise NotFound(
                    f"There is no artifact {name}:{version}.",
                    hint="`shipyard artifacts` lists them.",
                )
            if artifact.deleted_at is not None:
                raise NotFound(
                    f"Artifact {name}:{version} was removed by garbage collection"
                    f" on {artifact.deleted_at:%Y-%m-%d %H:%M}.",
                    hint="Push its archive again (`shipyard artifacts push FILE`) to restore it.",
                )
            return artifact

    def update_build_info(self, name: str, version: str, **fields: Any) -> None:
        with self.session() as s:
            artifact = s.scalar(
                select(Artifact).where(Artifact.name == name, Artifact.version == version)
            )
            if artifact is None:
                raise NotFound(f"There is no artifact {name}:{version}.")
            artifact.build_info = {**artifact.build_info, **fields}
            self.record(s, "artifact.build-info", f"{name}:{version}", keys=sorted(fields))

    def add_ref(self, repository: str, artifact: Artifact) -> bool:
        """Put ``artifact`` in ``repository``; False when it was already there."""
        with self.session() as s:
            query = select(ArtifactRef).where(
                ArtifactRef.repository == repository, ArtifactRef.artifact_id == artifact.id
            )
            if s.scalar(query) is not None:
                return False
            s.add(ArtifactRef(repository=repository, artifact_id=artifact.id))
            self.record(
                s,
                "artifact.published",
                f"{artifact.name}:{artifact.version}",
                repository=repository,
            )
            return True

    def in_repository(self, repository: str, name: str, version: str) -> bool:
        with self.session() as s:
            query = (
                select(ArtifactRef)
                .join(Artifact)
                .where(
                    ArtifactRef.repository == repository,
                    Artifact.name == name,
                    Artifact.version == version,
                )
            )
            return s.scalar(query) is not None

    def list_artifacts(
        self, repository: str | None = None, name: str | None = None
    ) -> list[tuple[Artifact, list[str]]]:
        """Artifacts, newest first, each with the repositories that hold it."""
        with self.session() as s:
            query = (
                select(Artifact)
                .where(Artifact.deleted_at.is_(None))
                .order_by(Artifact.created_at.desc(), Artifact.id.desc())
            )
            if name:
                query = query.where(Artifact.name == name)
            if repository:
                query = query.join(ArtifactRef).where(ArtifactRef.repository == repository)
            result = []
            for artifact in s.scalars(query).all():
                repos = s.scalars(
                    select(ArtifactRef.repository).where(ArtifactRef.artifact_id == artifact.id)
                ).all()
                result.append((artifact, sorted(repos)))
            return result

    def record_promotion(
        self, artifact: Artifact, source: str, target: str, reason: str | None
    ) -> None:
        with self.session() as s:
            actor = current_actor()
            s.add(
                Promotion(
                    artifact_id=artifact.id,
                    source=source,
                    target=target,
                    actor=actor,
                    reason=reason,
                )
            )
            self.record(
                s,
                "artifact.promoted",
                f"{artifact.name}:{artifact.version}",
                actor,
                source=source,
                target=target,
                reason=reason,
            )

    # -- deployments and rollouts --------------------------------------------------------------

    def deployments(
        self,
        project: str | None = None,
        environment: str | None = None,
        *,
        running_only: bool = True,
    ) -> Sequence[Deployment]:
        with self.session() as s:
            # Their artifacts in one more query, not one each: callers read them detached.
            query = (
                select(Deployment)
                .options(selectinload(Deployment.artifact))
                .order_by(Deployment.id)
            )
            if project:
                query = query.where(Deployment.project == project)
            if environment:
                query = query.where(Deployment.environment == environment)
            if running_only:
                query = query.where(Deployment.state.in_(["starting", "ready"]))
            return s.scalars(query).all()

    def save_deployment(self, deployment: Deployment, action: str) -> Deployment:
        with self.session() as s:
            merged = s.merge(deployment)
            s.flush()
            subject = f"{merged.project}/{merged.environment}/{merged.version}"
            self.record(
                s,
                f"deployment.{action}",
                subject,
                role=merged.role,
                weight=merged.weight,
                state=merged.state,
            )
            _ = merged.artifact
            return merged

    def save_rollout(self, rollout: Rollout, action: str, **detail: Any) -> Rollout:
        with self.session() as s:
            merged = s.merge(rollout)
            s.flush()
            subject = f"{merged.project}/{merged.environment}/{merged.canary_version}"
            self.record(
                s,
                f"rollout.{action}",
                subject,
                weight=merged.weight,
                status=merged.status,
                **detail,
            )
            return merged

    def events(self, subject_prefix: str | None = None, limit: int = 100) -> Sequence[Event]:
        with self.session() as s:
            query = select(Event).order_by(Event.id.desc()).limit(limit)
            if subject_prefix:
                query = query.where(Event.subject.startswith(subject_prefix))
            return s.scalars(query).all()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _project(s: Session, name: str) -> Project:
        project = s.scalar(select(Project).where(Project.name == name))
        if project is None:
            raise NotFound(
                f"There is no project {name!r}.",
                hint="Run `shipyard run` in the project's repository first.",
            )
        return project

    @staticmethod
    def _run(s: Session, project: str, number: int) -> Run:
        run = s.scalar(
            select(Run).join(Project).where(Project.name == project, Run.number == number)
        )
        if run is None:
            raise NotFound(
                f"There is no run {project}#{number}.", hint="`shipyard status` lists the runs."
            )
        return run
