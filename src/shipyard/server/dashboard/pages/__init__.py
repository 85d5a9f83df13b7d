"""The dashboard's pages, one module each; every module holds a ``router``."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    from shipyard.server.dashboard.pages import (
        approvals,
        artifacts,
        audit,
        environments,
        projects,
        rollouts,
        runs,
    )

    modules = (projects, runs, artifacts, environments, rollouts, approvals, audit)
    return [module.router for module in modules]
