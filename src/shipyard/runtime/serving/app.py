"""The ASGI app of one worker: routes, readiness, and the wrappers around them.

Routes (README.md, "Serving")::

    GET  /v2/health/live          GET  /v2/health/ready        GET /v2/models/{name}
    POST /v2/models/{name}/infer  POST /invocations            GET /ping
    GET  /metrics

The model loads on a background thread so ``/v2/health/live`` answers at once, while
``/v2/health/ready`` and ``/ping`` say 503 until *every* worker has loaded the model and passed
its warm-up prediction on ``input_example.json``. A model that cannot load ends the process:
the runtime sees the exit and reports the log tail, which helps more than a server that is
never ready.

Every response carries ``x-shipyard-version``. Errors are JSON ``{"error": "..."}`` naming the
field: 400 for a malformed body, 422 for an input that does not fit the model's signature or
that ``predict`` refuses (:data:`REFUSALS`), 408 for a body slower than its timeout, 413 above
the body limit (see :mod:`.decoding`), 503 while loading, 500 for a bug in the model or here.
"""

from __future__ import annotations

import gc
import logging
import mmap
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .batching import Batcher
from .decoding import read_body, read_json, utf8_text
from .errors import HTTPError, LoadError, OutputMismatch
from .loaders import Model, load_model, warm_up
from .metrics import CONTENT_TYPE, Metrics
from .outputs import Outputs, probe
from .protocol import Table, csv_table, mlflow_table, oip_table, to_json_values
from .signature import conform

# Same value as shipyard.runtime.interface.VERSION_HEADER: this package cannot import Shipyard.
VERSION_HEADER = "x-shipyard-version"
# What ``predict`` raises when it refuses the values of a well-formed request (scikit-learn's
# ValueError for NaN, a class's float() on a string, an index past a short row): the client's
# 422. Anything else is a bug in the model or here: 500, logged.
REFUSALS = (ValueError, TypeError, LookupError, ArithmeticError)
STATIC_ROUTES = frozenset(
    {"/v2/health/live", "/v2/health/ready", "/invocations", "/ping", "/metrics"}
)

log = logging.getLogger("shipyard.model_server")


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    serve: str
    model_name: str
    version: str
    max_batch_size: int = 32
    max_batch_wait: float = 0.0  # seconds
    allow_pickle: bool = False


class Readiness:
    """One byte per worker in memory shared across fork: ready when every byte is set."""

    def __init__(self, workers: int) -> None:
        self.flags = mmap.mmap(-1, workers)
        self.index = 0  # this worker's byte; set in the child after fork

    def mark(self, ready: bool = True) -> None:
        self.flags[self.index] = 1 if ready else 0

    def is_ready(self, index: int) -> bool:
        return self.flags[index] == 1

    def all_ready(self) -> bool:
        return self.flags.find(b"\0") == -1


class ModelState:
    """The loaded model, or None while it is loading; predicting, with errors translated."""

    def __init__(self, settings: Settings, readiness: Readiness, metrics: Metrics) -> None:
        self.settings = settings
        self.readiness = readiness
        self.metrics = metrics
        self.model: Model | None = None
        # What the metadata lists and every OIP response carries (outputs.py); settled by the
        # warm-up, or by the first prediction of a model that declares nothing and has no example.
        self.outputs: Outputs | None = None
        self.batcher = Batcher(
            self.predict_rows,
            settings.max_batch_size,
            settings.max_batch_wait,
            metrics.batch_rows.observe,
        )

    def load(self) -> None:
        started = time.perf_counter()
        settings = self.settings
        try:
            model = load_model(
                settings.serve, settings.model_dir, allow_pickle=settings.allow_pickle
            )
            warmed = warm_up(model, settings.model_dir)
        except LoadError as exc:
            log.error("cannot serve %s from %s: %s", settings.serve, settings.model_dir, exc)
            self.exit()
        except BaseException:
            log.exception("could not load model %s from %s", settings.serve, settings.model_dir)
            self.exit()
        # Everything loaded so far lives as long as the server: out of the collector's sight,
        # a full collection no longer walks the model library's objects (tens of ms of pause).
        gc.collect()
        gc.freeze()
        self.outputs = warmed.outputs
        self.model = model
        self.readiness.mark()
        done = f"warm-up on {warmed.rows} rows passed" if warmed.rows else "no input_example.json"
        log.info(
            "worker %d: model ready in %.2f s; %s",
            os.getpid(),
            time.perf_counter() - started,
            done,
        )

    def exit(self) -> NoReturn:
        logging.shutdown()
        os._exit(3)  # from a thread: a model that cannot load must not leave a server up

    def require_ready(self) -> Model:
        if self.model is None:
            raise HTTPError(503, "the model is still loading")
        return self.model

    def predict_rows(self, rows: list[Any]) -> list[Any]:
        outputs = self.require_ready().predict(rows)
        try:
            values = to_json_values(outputs)
        except TypeError:
            raise OutputMismatch(
                f"the model returned {type(outputs).__name__}, not a list"
            ) from None
        if len(values) != len(rows):
            raise OutputMismatch(f"the model returned {len(values)} outputs for {len(rows)} inputs")
        if self.outputs is None:  # nothing declared and no example: this prediction settles it
            self.outputs = probe(outputs, values)
        return values

    def encode(self, values: list[Any]) -> list[dict[str, Any]]:
        """The OIP ``outputs`` of ``values``: the tensors the metadata declares, or a 500."""
        if self.outputs is None:
            raise self.bad_output(OutputMismatch("the model's predictions make no OIP tensor"))
        try:
            return self.outputs.encode(values)
        except OutputMismatch as exc:
            raise self.bad_output(exc) from None

    def bad_output(self, exc: OutputMismatch) -> HTTPError:
        self.metrics.prediction_errors.inc()
        log.error("%s", exc)
        return HTTPError(500, str(exc))

    async def predict(self, table: Table) -> list[Any]:
        model = self.require_ready()
        rows = conform(table, model.signature, model.wants)
        try:
            return await self.batcher.submit(rows)
        except REFUSALS as exc:
            self.metrics.prediction_errors.inc()
            message = f"the model rejected the input: {type(exc).__name__}: {exc}"
            raise HTTPError(422, message) from exc
        except OutputMismatch as exc:
            self.metrics.prediction_errors.inc()
            log.error("%s", exc)
            raise HTTPError(500, str(exc)) from None
        except HTTPError:
            raise
        except Exception:
            self.metrics.prediction_errors.inc()
            log.exception("predict failed on %d rows", len(rows))
            raise HTTPError(
                500, "the model failed on this input; see the model server log"
            ) from None


# --- endpoints ----------------------------------------------------------------------------------


class Endpoints:
    def __init__(self, state: ModelState, metrics: Metrics) -> None:
        self.state = state
        self.metrics = metrics
        self.name = state.settings.model_name
        self.version = state.settings.version

    def routes(self) -> list[Route]:
        return [
            Route("/v2/health/live", self.live),
            Route("/v2/health/ready", self.ready),
            Route("/v2/models/{name}", self.metadata),
            Route("/v2/models/{name}/infer", self.infer, methods=["POST"]),
            Route("/invocations", self.invocations, methods=["POST"]),
            Route("/ping", self.ping),
            Route("/metrics", self.prometheus),
        ]

    def is_ready(self) -> bool:
        return self.state.model is not None and self.state.readiness.all_ready()

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        ready = self.is_ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def ping(self, request: Request) -> Response:
        return Response("\n", status_code=200 if self.is_ready() else 503)

    def check_name(self, request: Request) -> None:
        name = request.path_params["name"]
        if name != self.name:
            raise HTTPError(404, f"no model named {name!r} here; this server serves {self.name!r}")

    async def metadata(self, request: Request) -> Response:
        self.check_name(request)
        model = self.state.require_ready()
        signature = model.signature
        return JSONResponse(
            {
                "name": self.name,
                "versions": [self.version],
                "platform": model.platform,
                "inputs": signature.metadata() if signature else [],
                "outputs": self.state.outputs.metadata() if self.state.outputs else [],
                "runtime": model.runtime,  # not OIP: the library versions this env serves with
            }
        )

    async def infer(self, request: Request) -> Response:
        self.check_name(request)
        body = await read_json(request)
        outputs = await self.state.predict(oip_table(body))
        request_id = body.get("id") if isinstance(body.get("id"), str) else str(uuid.uuid4())
        return JSONResponse(
            {
                "model_name": self.name,
                "model_version": self.version,
                "id": request_id,
                "outputs": self.state.encode(outputs),
            }
        )

    async def invocations(self, request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("text/csv"):
            table: Table = csv_table(utf8_text(await read_body(request), "the CSV body"))
        else:
            table = mlflow_table(await read_json(request))
        return JSONResponse({"predictions": await self.state.predict(table)})

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)


async def render_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPError):
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)
    # Starlette's own: unknown path (404), wrong method (405).
    if isinstance(exc, HTTPException):
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
    return JSONResponse({"error": str(exc)}, status_code=500)


# --- wrappers: metrics and the version header ---------------------------------------------------


def route_label(path: str) -> str:
    """A bounded label set: any unknown path is "other", so a scan cannot blow up /metrics."""
    if path in STATIC_ROUTES:
        return path
    if path.startswith("/v2/models/"):
        return "/v2/models/{name}/infer" if path.endswith("/infer") else "/v2/models/{name}"
    return "other"


def observed(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_recording)
        finally:
            metrics.observe(route_label(scope["path"]), status, time.perf_counter() - started)

    return wrapped


def with_version_header(app: ASGIApp, version: str) -> ASGIApp:
    header = (VERSION_HEADER.encode(), version.encode())

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await app(scope, receive, send_with_header)

    return wrapped


# --- assembly -----------------------------------------------------------------------------------


def build_app(settings: Settings, readiness: Readiness) -> ASGIApp:
    metrics = Metrics(settings.model_name, settings.version)
    state = ModelState(settings, readiness, metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=state.load, name="load-model", daemon=True).start()
        state.batcher.start()
        yield
        await state.batcher.stop()

    app = Starlette(
        routes=Endpoints(state, metrics).routes(),
        exception_handlers={HTTPError: render_error, HTTPException: render_error},
        lifespan=lifespan,
    )
    return with_version_header(observed(app, metrics), settings.version)
