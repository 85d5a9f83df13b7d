"""/approvals: the inbox of runs waiting at a gate, the latest decisions, and the Approve and
Reject actions.

The routes let qa and above in, as the API does; the service then asks for the gate's own role
(qa for ``release``, releaser for ``canary``) with the caller's role, so the rule lives in one
place. The form names the gate it showed, so a decision never lands on another gate.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from shipyard.domain import Gate, TokenRole
from shipyard.errors import NotFound
from shipyard.server.auth import require
from shipyard.server.dashboard.render import page
from shipyard.server.dashboard.session import Browser
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.approvals import ApprovalView
from shipyard.services.tokens import TokenView

__all__ = ["router"]

# Each route requires its role once: viewers read the inbox, qa and above may decide.
router = APIRouter(include_in_schema=False)
Found = Annotated[Services, Depends(services)]
Decider = Annotated[TokenView, Depends(require(TokenRole.QA))]
RunNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
Reason = Annotated[str, Form(max_length=2000)]
RECENT = 20  # decisions shown below the inbox


def inbox(found: Services) -> tuple[list[ApprovalView], list[ApprovalView]]:
    return found.approvals.pending(), found.approvals.decided(RECENT)


@router.get(
    "/approvals",
    response_class=HTMLResponse,
    dependencies=[Depends(require(TokenRole.VIEWER))],
)
async def approvals(request: Request, session: Browser, found: Found) -> HTMLResponse:
    pending, decided = await run_in_threadpool(inbox, found)
    context = {"pending": pending, "decided": decided, "active": "approvals", "live": ""}
    return page(request, "approvals.html", session, context)


@router.post("/approvals/{project}/{number}/{gate}/approve")
async def approve(
    project: str, number: RunNumber, gate: str, caller: Decider, found: Found, reason: Reason = ""
) -> RedirectResponse:
    await run_in_threadpool(
        found.approvals.approve, project, number, reason, role=caller.role, gate=_gate(gate)
    )
    return RedirectResponse("/approvals", status_code=303)


@router.post("/approvals/{project}/{number}/{gate}/reject")
async def reject(
    project: str, number: RunNumber, gate: str, caller: Decider, found: Found, reason: Reason = ""
) -> RedirectResponse:
    await run_in_threadpool(
        found.approvals.reject, project, number, reason, role=caller.role, gate=_gate(gate)
    )
    return RedirectResponse("/approvals", status_code=303)


def _gate(name: str) -> Gate:
    try:
        return Gate(name)
    except ValueError:
        gates = ", ".join(Gate)
        raise NotFound(f"There is no gate {name!r}.", hint=f"The gates are {gates}.") from None
