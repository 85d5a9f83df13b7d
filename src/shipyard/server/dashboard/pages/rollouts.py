"""/rollouts/{id}: a canary rollout's steps on a timeline, each judgement with its numbers, and
charts over time of canary against stable; a releaser steers it from here.

The charts are drawn by static/rollout.js with uPlot from the JSON this module puts into the
page (``charts``): one point per judgement, since the judge keeps each side's numbers with its
verdict and nothing finer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.domain import RolloutAction, TokenRole
from shipyard.errors import Conflict, InvalidInput
from shipyard.server.auth import require
from shipyard.server.dashboard.render import page
from shipyard.server.dashboard.session import Browser
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.rollouts import (
    CheckView,
    ObservedView,
    RolloutView,
    StepTimeView,
    VerdictView,
)
from shipyard.services.tokens import SessionView

__all__ = ["router"]

# Each route declares its own least role: reading needs a viewer, steering a releaser.
router = APIRouter(include_in_schema=False)
VIEWER = [Depends(require(TokenRole.VIEWER))]
Found = Annotated[Services, Depends(services)]
RECENT = 50  # rollouts on the list
Lines = dict[str, list[float | None]]  # a chart's lines: label -> one value per judgement


@dataclass(frozen=True)
class Judgement:
    """A verdict as the page shows it: when, and each number in its unit."""

    verdict: VerdictView
    at: datetime | None
    # Each check with its canary value, stable's value where it has one, and its threshold.
    checks: list[tuple[CheckView, str, str, str]]


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    lines: Lines
    summary: str  # the chart's text alternative


@dataclass(frozen=True)
class Shown:
    rollout: RolloutView
    timeline: list[StepTimeView]
    judgements: list[Judgement]
    times: list[float]
    charts: list[Chart]


def rollout_id(raw: str) -> int:
    if not raw.isdigit():
        raise InvalidInput(
            f"{raw!r} is not a rollout id.",
            hint="A rollout's id is a number, as in /rollouts/3; /rollouts lists them.",
        )
    return int(raw)


def gather(found: Services, number: int) -> Shown:
    rollout = found.rollouts.by_id(number)
    judged = [v for v in rollout.verdicts if v.at is not None and v.stable and v.canary]
    return Shown(
        rollout=rollout,
        timeline=found.rollouts.timeline(number),
        judgements=[judgement(verdict) for verdict in reversed(rollout.verdicts)],
        times=[verdict.at for verdict in judged if verdict.at is not None],
        charts=charts(judged),
    )


def judgement(verdict: VerdictView) -> Judgement:
    at = datetime.fromtimestamp(verdict.at, UTC).replace(tzinfo=None) if verdict.at else None
    checks = [
        (
            check,
            figure(check.name, check.value),
            figure(check.name, baseline(check.name, verdict.stable)),
            figure(check.name, check.threshold),
        )
        for check in verdict.checks
    ]
    return Judgement(verdict, at, checks)


def baseline(check: str, stable: ObservedView | None) -> float | None:
    """Stable's number for the checks that compare with one."""
    if stable is None:
        return None
    return {"error_rate": stable.error_rate, "latency": stable.p95_ms}.get(check)


def figure(check: str, value: float | None) -> str:
    """A check's number in its unit: a rate as a percentage, a latency in ms."""
    if value is None:
        return "-"
    if check == "error_rate":
        return f"{value:.1%}"
    if check == "latency":
        return f"{value:.1f} ms"
    return f"{value:.3f}"


def charts(judged: list[VerdictView]) -> list[Chart]:
    sides: list[tuple[str, list[ObservedView]]] = [
        ("stable", [v.stable for v in judged if v.stable]),
        ("canary", [v.canary for v in judged if v.canary]),
    ]
    error_rate: Lines = {side: [o.error_rate * 100 for o in seen] for side, seen in sides}
    p95: Lines = {side: [o.p95_ms for o in seen] for side, seen in sides}
    keys = sorted({key for _, seen in sides for o in seen for key in o.predictions})
    shares: Lines = {
        f"{side} {key}": [o.predictions.get(key) for o in seen]
        for side, seen in sides
        for key in keys
    }
    return [
        Chart(
            "error-rate",
            "Error rate",
            "%",
            error_rate,
            summary("Error rate", "%", error_rate),
        ),
        Chart("latency", "p95 latency", "ms", p95, summary("p95 latency", "ms", p95)),
        Chart(
            "predictions",
            "Prediction distribution",
            "",
            shares,
            summary("Prediction distribution", "", shares),
        ),
    ]


def summary(title: str, unit: str, lines: Lines) -> str:
    count = max((len(values) for values in lines.values()), default=0)
    if count == 0:
        return f"{title}: no judgement with numbers yet."
    last = ", ".join(f"{label} {_number(values[-1])}{unit}" for label, values in lines.items())
    return f"{title} over {count} judgement(s); at the last: {last}."


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def chart_data(shown: Shown) -> dict[str, Any]:
    """What static/rollout.js draws: the judgement times and each chart's lines."""
    return {
        "times": shown.times,
        "charts": [
            {"key": c.key, "title": c.title, "unit": c.unit, "lines": c.lines} for c in shown.charts
        ],
    }


def render(
    request: Request, session: SessionView, shown: Shown, refused: Conflict | None = None
) -> HTMLResponse:
    context = {
        "rollout": shown.rollout,
        "timeline": shown.timeline,
        "judgements": shown.judgements,
        "charts": shown.charts,
        "chart_data": chart_data(shown),
        "refused": refused,
        "live": f"project={shown.rollout.project}",
        "active": "rollouts",
    }
    status = refused.status_code if refused else 200
    return page(request, "rollout.html", session, context, status_code=status)


@router.get("/rollouts", response_class=HTMLResponse, dependencies=VIEWER)
async def rollouts(request: Request, session: Browser, found: Found) -> HTMLResponse:
    recent = await run_in_threadpool(found.rollouts.recent, RECENT)
    context = {"rollouts": recent, "live": "", "active": "rollouts"}
    return page(request, "rollouts.html", session, context)


@router.get("/rollouts/{raw}", response_class=HTMLResponse, dependencies=VIEWER)
async def rollout(raw: str, request: Request, session: Browser, found: Found) -> HTMLResponse:
    shown = await run_in_threadpool(gather, found, rollout_id(raw))
    return render(request, session, shown)


@router.post(
    "/rollouts/{raw}/{action}",
    dependencies=[Depends(require(TokenRole.RELEASER))],
)
async def steer(
    raw: str, action: str, request: Request, session: Browser, found: Found
) -> Response:
    number = rollout_id(raw)
    if action not in set(RolloutAction):
        raise InvalidInput(
            f"{action!r} is not something a rollout can be asked to do.",
            hint=f"Use one of {', '.join(RolloutAction)}.",
        )

    def apply() -> None:
        view = found.rollouts.by_id(number)
        found.rollouts.steer(view.project, view.environment, RolloutAction(action), number)

    try:
        await run_in_threadpool(apply)
    except Conflict as refused:
        shown = await run_in_threadpool(gather, found, number)
        return render(request, session, shown, refused)
    return RedirectResponse(f"/rollouts/{number}", status_code=303)
