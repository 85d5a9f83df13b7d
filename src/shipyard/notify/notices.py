"""What a team hears about: four kinds of notice, read off the audit log.

The audit log already holds every state change, so a notice is a view of one event: a run
failed (``run.failed``), a gate opened (``approval.requested``), a version was rolled back (a
canary's ``run.rolled-back``, or ``deployment.rolled-back-to`` by `shipyard rollback`), a
version went live in production (``deployment.live``). Nothing in the pipeline calls this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain import NoticeKind, Status
from shipyard.store.models import Artifact, Event, Project, Run

__all__ = ["Notice", "NoticeKind", "notice_of"]

PRODUCTION = "production"  # only production going live is news; staging changes every run


_ICON = {
    NoticeKind.RUN_FAILED: ":x:",
    NoticeKind.APPROVAL_NEEDED: ":raised_hand:",
    NoticeKind.ROLLED_BACK: ":rewind:",
    NoticeKind.LIVE: ":rocket:",
}


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    project: str
    run: int | None
    version: str | None
    message: str
    event_id: int  # the audit event it was read from

    def payload(self, base_url: str | None = None) -> dict[str, Any]:
        """The JSON posted: the fields, plus ``text`` for Slack-compatible receivers."""
        body: dict[str, Any] = {
            "event": self.kind.value,
            "project": self.project,
            "run": self.run,
            "version": self.version,
            "message": self.message,
            "text": self.text,
        }
        if base_url and self.run is not None:
            body["url"] = f"{base_url.rstrip('/')}/api/v1/runs/{self.project}/{self.run}"
        return body

    @property
    def text(self) -> str:
        """One line a chat shows: ``:x: iris#4 (4-1a2b3c4) run failed: qa: accuracy 0.81``."""
        what = f"{self.project}#{self.run}" if self.run is not None else self.project
        version = f" ({self.version})" if self.version else ""
        words = self.kind.value.replace(".", " ").replace("-", " ")
        return f"{_ICON[self.kind]} {what}{version} {words}: {self.message}"


def notice_of(s: Session, event: Event) -> Notice | None:
    """The notice an audit event makes, None for the (many) events that are not news."""
    if event.action in ("run.failed", "run.rolled-back"):
        return _run_notice(s, event)
    if event.action == "approval.requested":
        return _approval_notice(s, event)
    if event.action in ("deployment.live", "deployment.rolled-back-to"):
        return _deployment_notice(s, event)
    return None


def _run_notice(s: Session, event: Event) -> Notice | None:
    found = _run(s, event.subject)
    if found is None:
        return None
    project, run = found
    kind = NoticeKind.RUN_FAILED if event.action == "run.failed" else NoticeKind.ROLLED_BACK
    stopped = next(
        (
            stage
            for stage in run.stages
            if stage.status in (Status.FAILED.value, Status.ROLLED_BACK.value)
        ),
        None,
    )
    message = f"{stopped.name}: {stopped.message}" if stopped else event.detail.get("message")
    return Notice(kind, project, run.number, _version(s, run), str(message or ""), event.id)


def _approval_notice(s: Session, event: Event) -> Notice | None:
    found = _run(s, event.subject)
    if found is None:
        return None
    project, run = found
    gate, approver = event.detail.get("gate"), event.detail.get("approver")
    message = f"{gate} waits for {approver}: `shipyard approve {run.number} --project {project}`"
    return Notice(
        NoticeKind.APPROVAL_NEEDED, project, run.number, _version(s, run), message, event.id
    )


def _deployment_notice(s: Session, event: Event) -> Notice | None:
    """``deployment.*`` subjects are ``project/environment/version``."""
    project, _, rest = event.subject.partition("/")
    environment, _, version = rest.partition("/")
    if environment != PRODUCTION or not version:
        return None
    if event.action == "deployment.live":
        kind, message = NoticeKind.LIVE, f"{version} serves all traffic in {environment}"
    else:
        kind, message = NoticeKind.ROLLED_BACK, f"{environment} rolled back to {version}"
    built_by = s.scalar(
        select(Run.number)
        .join(Artifact, Artifact.run_id == Run.id)
        .where(Artifact.name == project, Artifact.version == version)
    )
    return Notice(kind, project, built_by, version, message, event.id)


def _run(s: Session, subject: str) -> tuple[str, Run] | None:
    """The run a ``project#number`` subject names."""
    project, _, number = subject.partition("#")
    if not number.isdigit():
        return None
    run = s.scalar(
        select(Run).join(Project).where(Project.name == project, Run.number == int(number))
    )
    return (project, run) if run is not None else None


def _version(s: Session, run: Run) -> str:
    """The artifact version the run built (``<number>-<short sha>`` unless published otherwise)."""
    published = s.scalar(select(Artifact.version).where(Artifact.run_id == run.id))
    return published or f"{run.number}-{run.sha[:7]}"
