"""/api/v1/tokens: API tokens (admin only). A new token's secret is in the answer once."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from shipyard.domain import TokenRole
from shipyard.server.auth import require
from shipyard.server.deps import services
from shipyard.services import Services
from shipyard.services.tokens import NewToken, TokenRequest, TokenView

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/tokens", tags=["tokens"], dependencies=[Depends(require(TokenRole.ADMIN))]
)


@router.get("")
def list_tokens(found: Services = Depends(services)) -> list[TokenView]:
    return found.tokens.list()


@router.post("", status_code=201)
def create_token(request: TokenRequest, found: Services = Depends(services)) -> NewToken:
    """A new token; its ``secret`` is shown in this answer and never again."""
    token, secret = found.tokens.create(request.name, request.role)
    return NewToken(token=token, secret=secret)


@router.delete("/{name}")
def revoke_token(name: str, found: Services = Depends(services)) -> TokenView:
    return found.tokens.revoke(name)
