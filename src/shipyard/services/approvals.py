"""Approvals: a person's decision at a gate (``release``: qa decides; ``canary``: releaser).

A stage whose config says ``approval: manual`` asks :meth:`Approvals.gate` first. With no
decision yet the gate opens a request (an ``approvals`` row, with a deadline when the stage has
an ``approval_timeout``) and the stage answers WAITING: the engine parks the run and frees its
worker. ``approve`` and ``reject`` record the decision and queue the run again from that stage,
whose gate then lets it through or fails it; so does the expiry of an overdue request. Each
decision is kept three times: in the row, in the audit log and in the artifact's build-info.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.adapters import Adapters
from shipyard.config.schema import GateConfig, ProjectConfig, duration_text
from shipyard.domain import ApprovalStatus, Gate, Status, TokenRole
from shipyard.errors import Conflict, Forbidden, InvalidInput, NotFound, ShipyardError
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.services.cache import ViewCache
from shipyard.services.runs import Runs
from shipyard.services.views import View
from shipyard.store import Store, current_actor
from shipyard.store.models import Approval, Artifact, Project, Run, utcnow

__all__ = ["ApprovalView", "Approvals"]

log = logging.getLogger("shipyard.approvals")


class ApprovalView(View):
    project: str
    run: int
    gate: Gate
    status: ApprovalStatus
    approver: TokenRole  # the least role that may decide
    requested_at: datetime
    deadline: datetime | None
    decided_at: datetime | None
    actor: str | None
    reason: str | None

    @classmethod
    def of(cls, row: Approval, project: str, number: int) -> ApprovalView:
        gate = Gate(row.gate)
        return cls(
            project=project,
            run=number,
            gate=gate,
            status=ApprovalStatus(row.status),
            approver=gate.approver,
            requested_at=row.requested_at,
            deadline=row.deadline,
            decided_at=row.decided_at,
            actor=row.actor,
            reason=row.reason,
        )

    @property
    def waiting_message(self) -> str:
        return f"waiting for approval of {self.gate} by {self.approver}"

    @property
    def timeout_text(self) -> str:
        return _timeout_text(self.requested_at, self.deadline)


class Approvals:
    def __init__(self, adapters: Adapters) -> None:
        self.adapters = adapters
        self.store: Store = adapters.store
        self.views = ViewCache(adapters.store)  # the inbox, until the store changes

    # -- the stage's side ----------------------------------------------------------------------

    def gate(self, ctx: RunContext, gate: Gate) -> StageOutcome | None:
        """None: go on. WAITING: park the run until a person decides. FAILED: rejected/expired."""
        settings = gate_settings(ctx.config, gate)
        if settings is None or settings.approval == "auto":
            return None
        with self.store.session() as s:
            run = _run(s, ctx.project, ctx.number)
            row = s.scalar(select(Approval).where(Approval.run_id == run.id, Approval.gate == gate))
            expiring = row is not None and row.status == ApprovalStatus.WAITING and _overdue(row)
            if row is None:
                row = self._request(s, run, ctx.project, gate, settings.approval_timeout)
            elif expiring:
                self._settle(s, row, run, ApprovalStatus.EXPIRED, None)
            view = ApprovalView.of(row, ctx.project, ctx.number)
        if expiring:
            self._record_in_build_info(ctx.project, ctx.number, view)
        return _outcome(ctx, view)

    def _request(
        self, s: Session, run: Run, project: str, gate: Gate, timeout: float | None
    ) -> Approval:
        now = utcnow()
        deadline = now + timedelta(seconds=timeout) if timeout is not None else None
        row = Approval(
            run_id=run.id,
            gate=gate.value,
            status=ApprovalStatus.WAITING.value,
            requested_at=now,
            deadline=deadline,
        )
        s.add(row)
        s.flush()
        self.store.record(
            s,
            "approval.requested",
            f"{project}#{run.number}",
            gate=gate.value,
            approver=gate.approver.value,
            deadline=deadline.isoformat() if deadline else None,
        )
        return row

    # -- people's side -------------------------------------------------------------------------

    def pending(self, project: str | None = None) -> list[ApprovalView]:
        """The inbox: requests whose run waits for them, oldest first."""
        return list(self.views.get(("pending", project), lambda: self._pending(project)))

    def _pending(self, project: str | None) -> list[ApprovalView]:
        with self.store.session() as s:
            query = (
                select(Approval, Project.name, Run.number)
                .join(Run, Approval.run_id == Run.id)
                .join(Project)
                .where(
                    Approval.status == ApprovalStatus.WAITING.value,
                    Run.status == Status.WAITING.value,
                )
                .order_by(Approval.requested_at, Approval.id)
            )
            if project:
                query = query.where(Project.name == project)
            return [ApprovalView.of(row, name, number) for row, name, number in s.execute(query)]

    def of_run(self, project: str, number: int) -> list[ApprovalView]:
        """Every request of one run and its decision, in the order they were asked (none for
        a run that does not exist)."""
        with self.store.reading() as s:
            query = (
                select(Approval)
                .join(Run, Approval.run_id == Run.id)
                .join(Project)
                .where(Project.name == project, Run.number == number)
                .order_by(Approval.requested_at, Approval.id)
            )
            return [ApprovalView.of(row, project, number) for row in s.scalars(query)]

    def decided(self, limit: int = 20) -> list[ApprovalView]:
        """The latest decisions (approved, rejected, expired), newest first."""
        with self.store.session() as s:
            query = (
                select(Approval, Project.name, Run.number)
                .join(Run, Approval.run_id == Run.id)
                .join(Project)
                .where(Approval.status != ApprovalStatus.WAITING.value)
                .order_by(Approval.decided_at.desc(), Approval.id.desc())
                .limit(limit)
            )
            return [ApprovalView.of(row, name, number) for row, name, number in s.execute(query)]

    def approve(
        self,
        project: str,
        number: int,
        reason: str | None = None,
        *,
        role: TokenRole | None = None,
        gate: Gate | None = None,
    ) -> ApprovalView:
        """Let the run through its gate. ``role`` is the API token's (None: the local user);
        ``gate``, when given, is the gate the caller saw the run wait at."""
        return self._decide(project, number, ApprovalStatus.APPROVED, _clean(reason), role, gate)

    def reject(
        self,
        project: str,
        number: int,
        reason: str,
        *,
        role: TokenRole | None = None,
        gate: Gate | None = None,
    ) -> ApprovalView:
        """Fail the run at its gate, saying why."""
        why = _clean(reason)
        if why is None:
            raise InvalidInput(
                "A rejection needs a reason.", hint="Say why it is rejected, e.g. 'drift on X'."
            )
        return self._decide(project, number, ApprovalStatus.REJECTED, why, role, gate)

    def expire_overdue(self) -> list[ApprovalView]:
        """Expire requests past their deadline and hand their runs back to a worker, whose gate
        fails them; also resume any parked run whose decision is made but which was not queued
        again (the process that decided died in between). The server calls this every few
        seconds."""
        with self.store.session() as s:
            expired, parked = [], []
            for row, run, name in self._past_deadline(s):
                self._settle(s, row, run, ApprovalStatus.EXPIRED, None)
                view = ApprovalView.of(row, name, run.number)
                expired.append(view)
                if run.status == Status.WAITING.value:  # not one cancelled while it waited
                    parked.append(view)
            parked += self._stranded(s)
        for view in expired:
            self._record_in_build_info(view.project, view.run, view)
        for view in parked:
            try:
                self._resume(view)
            except ShipyardError as exc:  # moved meanwhile (cancelled, resumed): nothing to do
                log.info("approvals: %s#%d not resumed: %s", view.project, view.run, exc)
        return expired

    def _decide(
        self,
        project: str,
        number: int,
        decision: ApprovalStatus,
        reason: str | None,
        role: TokenRole | None,
        seen: Gate | None,
    ) -> ApprovalView:
        with self.store.session() as s:
            run = _run(s, project, number)
            row = _waiting(s, run, project)
            gate = Gate(row.gate)
            if seen is not None and seen is not gate:  # a decision meant for another gate
                raise Conflict(
                    f"Run {project}#{number} waits at the {gate} gate, not at {seen}.",
                    hint="Reload the approvals to see what it waits for now.",
                )
            if role is not None and not role.allows(gate.approver):
                raise Forbidden(
                    f"Deciding at the {gate} gate needs the {gate.approver} role or above;"
                    f" this token's role is {role}."
                )
            if _overdue(row):  # a late decision does not count; the expiry does
                decision, reason = ApprovalStatus.EXPIRED, None
            self._settle(s, row, run, decision, reason)
            view = ApprovalView.of(row, project, number)
        self._record_in_build_info(project, number, view)
        self._resume(view)
        if view.status is ApprovalStatus.EXPIRED:
            raise Conflict(
                f"The approval of {project}#{number} at {gate} timed out after"
                f" {view.timeout_text}; the run fails.",
                hint="Run the commit again to ask anew.",
            )
        return view

    def _settle(
        self, s: Session, row: Approval, run: Run, decision: ApprovalStatus, reason: str | None
    ) -> None:
        """Write the decision and its audit event in one transaction."""
        row.status = decision.value
        row.decided_at = utcnow()
        if decision is ApprovalStatus.EXPIRED:
            row.reason = f"approval timed out after {_timeout_text(row.requested_at, row.deadline)}"
        else:
            row.actor, row.reason = current_actor(), reason
        subject = f"{run.project.name}#{run.number}"
        self.store.record(s, f"approval.{decision}", subject, gate=row.gate, reason=row.reason)

    def _record_in_build_info(self, project: str, number: int, view: ApprovalView) -> None:
        """The decision travels with the artifact: ``build_info.approvals``."""
        with self.store.session() as s:
            run = _run(s, project, number)
            artifact = s.scalar(select(Artifact).where(Artifact.run_id == run.id))
            if artifact is None:  # nothing was published (a gate before publish, or gc'd)
                return
            name, version = artifact.name, artifact.version
            earlier: list[Any] = list(artifact.build_info.get("approvals", []))
        entry = {
            "gate": view.gate.value,
            "decision": view.status.value,
            "actor": view.actor,
            "at": (view.decided_at or utcnow()).isoformat(),
            "reason": view.reason,
        }
        self.store.update_build_info(name, version, approvals=[*earlier, entry])

    def _resume(self, view: ApprovalView) -> None:
        """Queue the parked run again from its gate's stage, which now goes on or fails."""
        Runs(self.adapters).requeue(view.project, view.run, view.gate.value)

    @staticmethod
    def _past_deadline(s: Session) -> list[tuple[Approval, Run, str]]:
        query = (
            select(Approval, Run, Project.name)
            .join(Run, Approval.run_id == Run.id)
            .join(Project)
            .where(
                Approval.status == ApprovalStatus.WAITING.value,
                Approval.deadline.is_not(None),
                Approval.deadline <= utcnow(),
            )
        )
        return [(row, run, name) for row, run, name in s.execute(query)]

    @staticmethod
    def _stranded(s: Session) -> list[ApprovalView]:
        """Parked runs whose gate has a decision: they should have been queued again."""
        decided = [ApprovalStatus.APPROVED.value, ApprovalStatus.REJECTED.value]
        query = (
            select(Approval, Project.name, Run.number)
            .join(Run, Approval.run_id == Run.id)
            .join(Project)
            .where(
                Approval.status.in_(decided),
                Run.status == Status.WAITING.value,
                Run.resume_from == Approval.gate,
            )
        )
        return [ApprovalView.of(row, name, number) for row, name, number in s.execute(query)]


def gate_settings(config: ProjectConfig, gate: Gate) -> GateConfig | None:
    return config.release if gate is Gate.RELEASE else config.canary


def _outcome(ctx: RunContext, view: ApprovalView) -> StageOutcome | None:
    stage = view.gate.value
    if view.status is ApprovalStatus.WAITING:
        ctx.say(
            stage,
            f"{view.waiting_message}: `shipyard approve {ctx.number} --project {ctx.project}`"
            f" or `shipyard reject {ctx.number} --project {ctx.project} --reason ...`",
        )
        return StageOutcome(Status.WAITING, view.waiting_message)
    if view.status is ApprovalStatus.APPROVED:
        why = f": {view.reason}" if view.reason else ""
        ctx.say(stage, f"approved by {view.actor} at {view.decided_at:%Y-%m-%d %H:%M} UTC{why}")
        return None
    if view.status is ApprovalStatus.REJECTED:
        return StageOutcome(Status.FAILED, f"rejected by {view.actor}: {view.reason}")
    return StageOutcome(Status.FAILED, f"approval timed out after {view.timeout_text}")


def _run(s: Session, project: str, number: int) -> Run:
    run = s.scalar(select(Run).join(Project).where(Project.name == project, Run.number == number))
    if run is None:
        raise NotFound(f"There is no run {project}#{number}.", hint="`shipyard status` lists them.")
    return run


def _waiting(s: Session, run: Run, project: str) -> Approval:
    """The request the run waits on; Conflict, naming what the run does, when there is none."""
    row = None
    if run.status == Status.WAITING.value:
        row = s.scalar(
            select(Approval).where(
                Approval.run_id == run.id, Approval.status == ApprovalStatus.WAITING.value
            )
        )
    if row is None:
        doing = f"{run.status} ({run.message})" if run.message else run.status
        raise Conflict(
            f"Run {project}#{run.number} is not waiting for an approval: it is {doing}.",
            hint="`shipyard approvals` lists the runs that wait for one.",
        )
    return row


def _overdue(row: Approval) -> bool:
    return row.deadline is not None and row.deadline <= utcnow()


def _timeout_text(requested_at: datetime, deadline: datetime | None) -> str:
    return duration_text(((deadline or requested_at) - requested_at).total_seconds())


def _clean(reason: str | None) -> str | None:
    text = (reason or "").strip()
    return text or None
