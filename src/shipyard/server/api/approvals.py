"""/api/v1/approvals and a run's approve/reject: people deciding at the release and canary gates.

A route lets qa tokens and above in; the service then asks for the gate's own role (qa for
``release``, releaser for ``canary``) with the caller's role, so the rule lives in one place.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from shipyard.domain import Gate, TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.approvals import ApprovalView
from shipyard.services.tokens import TokenView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["approvals"])
RunNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
REASON = "Why: recorded in the audit log and the artifact's build-info."


GATE = "The gate the caller saw the run wait at; a run waiting at another gate is a 409."


class Approve(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, description=REASON)
    gate: Gate | None = Field(default=None, description=GATE)


class Reject(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description=REASON)
    gate: Gate | None = Field(default=None, description=GATE)


@router.get("/approvals", dependencies=[Depends(require(TokenRole.VIEWER))])
def pending_approvals(
    project: str | None = None, found: Services = Depends(services)
) -> list[ApprovalView]:
    """The inbox: runs waiting at a gate, with who may approve them, oldest first."""
    return found.approvals.pending(project)


@router.post("/runs/{project}/{number}/approve")
def approve_run(
    project: str,
    number: RunNumber,
    body: Approve | None = None,
    caller: TokenView = Depends(require(TokenRole.QA)),
    found: Services = Depends(services),
) -> ApprovalView:
    """Let a waiting run through its gate; it is queued again from that stage."""
    body = body or Approve()
    return found.approvals.approve(project, number, body.reason, role=caller.role, gate=body.gate)


@router.post("/runs/{project}/{number}/reject")
def reject_run(
    project: str,
    number: RunNumber,
    body: Reject,
    caller: TokenView = Depends(require(TokenRole.QA)),
    found: Services = Depends(services),
) -> ApprovalView:
    """Fail a waiting run at its gate, saying why."""
    return found.approvals.reject(project, number, body.reason, role=caller.role, gate=body.gate)
