"""Read answers kept as encoded JSON until the store changes: the API's hot GETs.

A read route's cost under load is not the query (``services/cache.py`` already keeps the read
models) but turning models into JSON and checking them against the response model, on every
request, in a worker thread. Here the encoded body is kept in a ``ViewCache`` of its own, under
the same change counter, and a current one is sent from the event loop without a thread hop;
only a miss reads and encodes, in the thread pool. The routes still declare their response
model, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from fastapi import Request, Response
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from shipyard.services.cache import ViewCache

__all__ = ["answer"]


def _cache(request: Request) -> ViewCache:
    cache: ViewCache | None = getattr(request.app.state, "answers", None)
    if cache is None:
        cache = request.app.state.answers = ViewCache(request.app.state.services.adapters.store)
    return cache


async def answer(
    request: Request, key: Hashable, read: Callable[[], Any], shape: TypeAdapter[Any]
) -> Response:
    """``read()`` encoded as ``shape``, from the cache while the store has not changed."""
    cache = _cache(request)
    body = cache.fresh(key)
    if body is None:
        body = await run_in_threadpool(cache.get, key, lambda: shape.dump_json(read()))
    return Response(body, media_type="application/json")
