"""The ASGI application: the API under /api/v1 and the webhooks under /hooks."""

from __future__ import annotations

from fastapi import FastAPI

from shipyard.services import Services

__all__ = ["create_app"]


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Shipyard",
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.services = services
    return app
