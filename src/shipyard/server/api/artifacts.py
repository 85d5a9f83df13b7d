"""/api/v1/artifacts: search and show (viewer); promote (releaser, an override admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY, TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.artifacts import ArtifactDetail, ArtifactView, PromotionView
from shipyard.services.tokens import TokenView

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"])

Viewer = Annotated[TokenView, Depends(require(TokenRole.VIEWER))]
Found = Annotated[Services, Depends(services)]


class PromoteRequest(BaseModel):
    override: bool = False  # accept claimed results that do not verify: admin, with a reason
    reason: str | None = None
    source: str = DEV_REPOSITORY
    target: str = RELEASE_REPOSITORY
    dry_run: bool = False


@router.get("")
def search_artifacts(
    _: Viewer,
    found: Found,
    name: str | None = None,
    repository: str | None = None,
    version: Annotated[
        str | None, Query(description="A version, or a run-number range such as >=3,<7.")
    ] = None,
    sha: Annotated[str | None, Query(description="A git commit sha prefix.")] = None,
    prop: Annotated[
        list[str] | None, Query(alias="property", description="key=value (repeatable).")
    ] = None,
) -> list[ArtifactView]:
    """Live artifacts matching every filter given, newest first."""
    from shipyard.artifacts.properties import parse_assignment

    properties = dict(parse_assignment(text) for text in prop or [])
    return found.artifacts.search(name, repository, version, properties, sha=sha)


@router.get("/{name}/{version}")
def show_artifact(name: str, version: str, _: Viewer, found: Found) -> ArtifactDetail:
    """Build-info, properties, repositories, and whether each signature verifies."""
    return found.artifacts.show(name, version)


@router.post("/{name}/{version}/promote")
def promote_artifact(
    name: str,
    version: str,
    body: PromoteRequest,
    caller: Annotated[TokenView, Depends(require(TokenRole.RELEASER))],
    found: Found,
) -> PromotionView:
    """Into the target repository if its policy allows it; 409 names what stops it."""
    return found.artifacts.promote(
        name,
        version,
        override=body.override,
        reason=body.reason,
        source=body.source,
        target=body.target,
        dry_run=body.dry_run,
        role=caller.role,
    )
