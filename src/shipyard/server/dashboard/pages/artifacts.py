"""/artifacts: the `dev` and `release` repositories as a searchable table, one artifact's
build-info with its SBOM summarised (both downloadable), and promoting it into `release`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY, TokenRole
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.server.auth import require
from shipyard.server.dashboard.render import SECURITY_HEADERS, page
from shipyard.server.dashboard.session import Browser
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.artifacts import ArtifactDetail, ArtifactPage, PromotionView, SbomSummary
from shipyard.services.audit import EventView

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(require(TokenRole.VIEWER))])
Found = Annotated[Services, Depends(services)]
PER_PAGE = 50
REPOSITORIES = (DEV_REPOSITORY, RELEASE_REPOSITORY)


@dataclass(frozen=True)
class Filters:
    """The search form, as typed (so it can be shown again with an error beside it)."""

    name: str = ""
    version: str = ""
    property: str = ""  # key=value, several separated by commas
    repository: str = ""

    def properties(self) -> dict[str, str]:
        from shipyard.artifacts.properties import parse_assignment

        parts = [part for part in self.property.split(",") if part.strip()]
        return dict(parse_assignment(part.strip()) for part in parts)


@dataclass(frozen=True)
class Listing:
    found: ArtifactPage
    page: int
    pages: int


def human_size(size: int) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as file managers show sizes)."""
    if size < 1000:
        return f"{size} B"
    amount, unit = size / 1000, "kB"
    for bigger in ("MB", "GB"):
        if amount < 1000:
            break
        amount, unit = amount / 1000, bigger
    return f"{amount:.1f} {unit}"


def listing(found: Services, filters: Filters, number: int) -> Listing:
    def search(number: int) -> ArtifactPage:
        return found.artifacts.page(
            filters.name.strip() or None,
            filters.repository or None,
            filters.version if filters.version.strip() else None,
            filters.properties(),
            offset=(number - 1) * PER_PAGE,
            limit=PER_PAGE,
        )

    shown = search(number)
    pages = max(1, -(-shown.matched // PER_PAGE))
    if number > pages:  # past the end (the list shrank): show the last page
        number = pages
        shown = search(number)
    return Listing(shown, number, pages)


@router.get("/artifacts", response_class=HTMLResponse)
async def artifacts(
    request: Request,
    session: Browser,
    found: Found,
    name: Annotated[str, Query(max_length=200)] = "",
    version: Annotated[str, Query(max_length=200)] = "",
    prop: Annotated[list[str] | None, Query(alias="property", max_length=500)] = None,
    repository: Annotated[str, Query(max_length=100)] = "",
    number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    filters = Filters(name, version, ",".join(prop or []), repository)
    context: dict[str, Any] = {
        "filters": filters,
        "pages": {},
        "human_size": human_size,
        "repositories": REPOSITORIES,
        "active": "artifacts",
        "error": None,
    }
    try:
        context["listing"] = await run_in_threadpool(listing, found, filters, number)
    except InvalidInput as exc:  # a bad filter: say what to fix beside the form
        context |= {"listing": Listing(ArtifactPage(matched=0, artifacts=[]), 1, 1), "error": exc}
        return page(request, "artifacts.html", session, context, status_code=exc.status_code)
    shown = context["listing"].page
    context["pages"] = {n: _page_url(request, n) for n in (shown - 1, shown + 1)}
    return page(request, "artifacts.html", session, context)


def _page_url(request: Request, number: int) -> str:
    url = request.url.include_query_params(page=number)
    return f"{url.path}?{url.query}"


@dataclass(frozen=True)
class Detail:
    artifact: ArtifactDetail
    sbom: SbomSummary | None
    history: list[EventView]
    policy: PromotionView | None  # what promoting into `release` would do, while it may


def detail(found: Services, name: str, version: str) -> Detail:
    shown = found.artifacts.show(name, version)
    document = shown.build_info.get("sbom")
    promotable = (
        DEV_REPOSITORY in shown.repositories and RELEASE_REPOSITORY not in shown.repositories
    )
    return Detail(
        artifact=shown,
        sbom=SbomSummary.of(document) if isinstance(document, dict) else None,
        history=found.artifacts.history(name, version),
        policy=found.artifacts.promote(name, version, dry_run=True) if promotable else None,
    )


def _detail_page(
    request: Request,
    session: Browser,
    shown: Detail,
    *,
    error: ShipyardError | None = None,
    done: str = "",
) -> HTMLResponse:
    context = {
        "shown": shown,
        "size": human_size(shown.artifact.size),
        "active": "artifacts",
        "error": error,
        "done": done,
    }
    status = error.status_code if error is not None else 200
    return page(request, "artifact.html", session, context, status_code=status)


@router.get("/artifacts/{name}/{version}", response_class=HTMLResponse)
async def artifact(
    request: Request, session: Browser, found: Found, name: str, version: str, done: str = ""
) -> HTMLResponse:
    shown = await run_in_threadpool(detail, found, name, version)
    return _detail_page(request, session, shown, done="promoted" if done == "promoted" else "")


def _download(document: dict[str, Any], filename: str) -> Response:
    body = json.dumps(document, indent=2, sort_keys=True) + "\n"
    headers = {
        **SECURITY_HEADERS,
        "content-disposition": f'attachment; filename="{quote(filename, safe="")}"',
    }
    return Response(body, media_type="application/json", headers=headers)


@router.get("/artifacts/{name}/{version}/sbom.json")
async def sbom(name: str, version: str, found: Found) -> Response:
    document = await run_in_threadpool(found.artifacts.sbom, name, version)
    return _download(document, f"{name}-{version}.sbom.cdx.json")


@router.get("/artifacts/{name}/{version}/build-info.json")
async def build_info(name: str, version: str, found: Found) -> Response:
    shown = await run_in_threadpool(found.artifacts.show, name, version)
    return _download(shown.build_info, f"{name}-{version}.build-info.json")


@router.post(
    "/artifacts/{name}/{version}/promote",
    dependencies=[Depends(require(TokenRole.RELEASER))],
    response_class=HTMLResponse,
)
async def promote(
    request: Request, session: Browser, found: Found, name: str, version: str
) -> Response:
    """Into `release` if its policy allows it; a refusal is shown with the policy's checks."""
    role = session.token.role
    try:
        await run_in_threadpool(found.artifacts.promote, name, version, role=role)
    except ShipyardError as exc:
        shown = await run_in_threadpool(detail, found, name, version)
        return _detail_page(request, session, shown, error=exc)
    target = f"/artifacts/{quote(name, safe='')}/{quote(version, safe='')}?done=promoted"
    return RedirectResponse(target, status_code=303)
