"""What every route gets: the services of the server's state directory."""

from __future__ import annotations

from fastapi import Request

from shipyard.services import Services

__all__ = ["services"]


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
