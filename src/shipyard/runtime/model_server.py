"""The model server: one model version behind the Open Inference Protocol and MLflow scoring.

This file runs as a script under the *artifact's* interpreter
(``<env>/bin/python model_server.py --model-dir D --serve SPEC ...``), not Shipyard's, so it
imports only the standard library, Starlette and uvicorn at module level: those are what the
pipeline installs into every artifact environment. The served class brings its own
dependencies; the built-in skops loader imports numpy and skops lazily for the same reason.

The model loads on a background thread so ``/v2/health/live`` answers at once while
``/v2/health/ready`` says 503 until the model is loaded *and* a warm-up prediction on
``input_example.json`` has passed. A model that cannot load ends the process: the runtime
sees the exit and reports the log tail, which is more useful than a server that is never ready.

``predict`` runs on the event loop, not in a thread pool: for the small batches of online
serving a hop to a worker thread costs more than the prediction, and the GIL would serialize
the predictions anyway. Needs Python >= 3.10 in the artifact environment.

Routes (DESIGN.md 3.4)::

    GET  /v2/health/live          GET  /v2/health/ready        GET /v2/models/{name}
    POST /v2/models/{name}/infer  POST /invocations            GET /ping
    GET  /metrics

Every response carries ``x-shipyard-version``. Errors are JSON ``{"error": "..."}``: 400 for a
malformed body (naming the field), 413 above 10 MiB, 422 when the model's ``predict`` raises
KeyError/ValueError/TypeError (the input does not fit the model), 500 for anything else.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import logging
import math
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Same value as shipyard.runtime.interface.VERSION_HEADER: this script cannot import Shipyard.
VERSION_HEADER = "x-shipyard-version"
MAX_BODY_BYTES = 10 * 1024 * 1024
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
STATIC_ROUTES = frozenset(
    {"/v2/health/live", "/v2/health/ready", "/invocations", "/ping", "/metrics"}
)

Records = list[Any]
Predict = Callable[[Records], Any]

log = logging.getLogger("shipyard.model_server")


class HTTPError(Exception):
    """An answer other than 200, rendered as ``{"error": message}``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


# --- loading ------------------------------------------------------------------------------


def load_predictor(serve: str, model_dir: Path) -> Predict:
    """``module:Class`` from PYTHONPATH, or a built-in loader named by a JSON object."""
    if serve.lstrip().startswith("{"):
        return load_builtin(json.loads(serve), model_dir)
    module_name, _, class_name = serve.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--serve {serve!r} is neither 'module:Class' nor a JSON loader spec")
    model_class = getattr(importlib.import_module(module_name), class_name)
    predict: Predict = model_class(str(model_dir)).predict
    return predict


def load_builtin(spec: Mapping[str, Any], model_dir: Path) -> Predict:
    loaders = {"skops": load_skops}
    fmt = spec.get("format")
    if fmt not in loaders:
        raise ValueError(f"unknown model format {fmt!r}; this model server knows: skops")
    if not isinstance(spec.get("path"), str):
        raise ValueError(f'the {fmt} loader needs "path": the model file inside the model dir')
    return loaders[fmt](model_dir / spec["path"])


def load_skops(path: Path) -> Predict:
    import numpy as np
    import skops.io as sio  # type: ignore[import-untyped]

    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    features = [str(name) for name in getattr(model, "feature_names_in_", [])]

    def predict(records: Records) -> Any:
        rows = records_to_rows(records, features)
        try:
            matrix = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):  # categorical columns: let the model's pipeline decide
            matrix = np.asarray(rows, dtype=object)
        return model.predict(matrix)

    return predict


def records_to_rows(records: Records, features: list[str]) -> list[list[Any]]:
    """Rows in the model's feature order, else in the first record's key order."""
    if not isinstance(records[0], Mapping):
        return [list(row) for row in records]
    order = features or list(records[0])
    return [[record[name] for name in order] for record in records]


def warm_up(predict: Predict, model_dir: Path) -> None:
    example = model_dir / "input_example.json"
    if not example.exists():
        return
    records = json.loads(example.read_text())
    outputs = to_json_values(predict(records))
    if len(outputs) != len(records):
        raise ValueError(f"warm-up: {len(outputs)} outputs for {len(records)} inputs")


class ModelState:
    """The loaded model, or None while it is loading."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.predict: Predict | None = None
        self.prediction_errors = 0

    def load(self) -> None:
        started = time.perf_counter()
        try:
            predict = load_predictor(self.args.serve, self.args.model_dir)
            warm_up(predict, self.args.model_dir)
        except BaseException:
            log.exception("could not load model %s from %s", self.args.serve, self.args.model_dir)
            logging.shutdown()
            os._exit(3)  # from a thread: a model that cannot load must not leave a server up
        self.predict = predict
        log.info("model ready in %.2f s", time.perf_counter() - started)

    def require_ready(self) -> Predict:
        if self.predict is None:
            raise HTTPError(503, "the model is still loading")
        return self.predict

    def run(self, records: Records) -> list[Any]:
        predict = self.require_ready()
        if not records:
            raise HTTPError(400, "the request holds no records to predict")
        try:
            outputs = predict(records)
        except (KeyError, ValueError, TypeError) as exc:
            self.prediction_errors += 1
            message = f"the model rejected the input: {type(exc).__name__}: {exc}"
            raise HTTPError(422, message) from exc
        except Exception:
            self.prediction_errors += 1
            log.exception("predict failed on %d records", len(records))
            message = "the model failed on this input; see the model server log"
            raise HTTPError(500, message) from None
        return self.one_per_input(outputs, len(records))

    def one_per_input(self, outputs: Any, inputs: int) -> list[Any]:
        try:
            values = to_json_values(outputs)
        except TypeError:
            values = None
        if values is None or len(values) != inputs:
            self.prediction_errors += 1
            got = f"{len(values)} outputs" if values is not None else repr(type(outputs))
            log.error("predict returned %s for %d inputs", got, inputs)
            raise HTTPError(500, f"the model returned {got} for {inputs} inputs")
        return values


def to_json_values(outputs: Any) -> list[Any]:
    """numpy arrays and scalars to plain Python; NaN and infinity to null (JSON has neither)."""
    values = outputs.tolist() if hasattr(outputs, "tolist") else list(outputs)
    return [plain(value) for value in values]


def plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


# --- request bodies -----------------------------------------------------------------------


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPError(413, f"the body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPError(413, f"the body is over the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    try:
        return json.loads(await read_body(request))
    except ValueError as exc:
        raise HTTPError(400, f"the body is not valid JSON: {exc}") from None


def columns_to_records(columns: Any, where: str) -> Records:
    if not isinstance(columns, Mapping) or not columns:
        raise HTTPError(400, f"{where} must be a non-empty object of columns")
    lengths = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise HTTPError(400, f"{where}.{name} must be a list of values")
        lengths[name] = len(values)
    first = next(iter(lengths))
    for name, length in lengths.items():
        if length != lengths[first]:
            raise HTTPError(
                400, f"{where}.{name} has {length} values but {where}.{first} has {lengths[first]}"
            )
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def rows_to_records(columns: Any, rows: Any, where: str) -> Records:
    if not isinstance(rows, list):
        raise HTTPError(400, f"{where}.data must be a list of rows")
    if columns is None:
        return list(rows)
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise HTTPError(400, f"{where}.columns must be a list of column names")
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise HTTPError(400, f"{where}.data[{index}] is not a list of values")
        if len(row) != len(columns):
            raise HTTPError(
                400,
                f"{where}.data[{index}] has {len(row)} values but there are {len(columns)} columns",
            )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def parse_dataframe_split(value: Any) -> Records:
    if not isinstance(value, Mapping):
        raise HTTPError(400, 'dataframe_split must be an object {"columns": [...], "data": [...]}')
    return rows_to_records(value.get("columns"), value.get("data"), "dataframe_split")


def parse_dataframe_records(value: Any) -> Records:
    if not isinstance(value, list):
        raise HTTPError(400, "dataframe_records must be a list of objects")
    for index, record in enumerate(value):
        if not isinstance(record, Mapping):
            raise HTTPError(400, f"dataframe_records[{index}] is not an object")
    return value


def parse_instances_or_inputs(value: Any, where: str) -> Records:
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return columns_to_records(value, where)
    raise HTTPError(400, f"{where} must be a list of records or an object of columns")


def mlflow_records(body: Any) -> Records:
    present = [key for key in MLFLOW_FORMATS if isinstance(body, Mapping) and key in body]
    if len(present) != 1:
        expected = ", ".join(MLFLOW_FORMATS)
        raise HTTPError(400, f"the body must be a JSON object with exactly one of: {expected}")
    key = present[0]
    if key == "dataframe_split":
        return parse_dataframe_split(body[key])
    if key == "dataframe_records":
        return parse_dataframe_records(body[key])
    return parse_instances_or_inputs(body[key], key)


def csv_records(text: str) -> Records:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise HTTPError(400, "the CSV body is empty; it needs a header row")
    return rows_to_records(
        rows[0], [[number_or_text(cell) for cell in row] for row in rows[1:]], "csv"
    )


def number_or_text(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: list[int]
    data: list[Any]  # row-major, flattened


def parse_tensor(tensor: Any, index: int) -> Tensor:
    """One OIP input tensor, its data checked against its shape."""
    if not isinstance(tensor, Mapping):
        raise HTTPError(400, f"inputs[{index}] must be an object with name, shape, datatype, data")
    name, shape, data = tensor.get("name"), tensor.get("shape"), tensor.get("data")
    if not isinstance(name, str):
        raise HTTPError(400, f"inputs[{index}].name must be a string")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise HTTPError(400, f"inputs[{index}].shape must be a list of non-negative integers")
    if not isinstance(data, list):
        raise HTTPError(400, f"inputs[{index}].data must be a list")
    flat = flatten(data)
    if not shape or len(flat) != math.prod(shape):
        raise HTTPError(400, f"inputs[{index}] ({name}) has {len(flat)} values but shape {shape}")
    return Tensor(name, shape, flat)


def flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(item, list) for item in data):
        return data
    return [leaf for item in data for leaf in (flatten(item) if isinstance(item, list) else [item])]


def oip_records(body: Any) -> Records:
    """A single [n, k] tensor gives n rows as lists; otherwise each tensor is a named column."""
    inputs = body.get("inputs") if isinstance(body, Mapping) else None
    if not isinstance(inputs, list) or not inputs:
        raise HTTPError(400, "inputs must be a non-empty list of tensors")
    tensors = [parse_tensor(tensor, index) for index, tensor in enumerate(inputs)]
    if len(tensors) == 1 and len(tensors[0].shape) == 2 and tensors[0].shape[1] > 1:
        (rows, width), flat = tensors[0].shape, tensors[0].data
        return [flat[row * width : (row + 1) * width] for row in range(rows)]
    rows = tensors[0].shape[0]
    for index, tensor in enumerate(tensors):
        if tensor.shape not in ([rows], [rows, 1]):
            raise HTTPError(
                400, f"inputs[{index}] ({tensor.name}) has shape {tensor.shape}, not [{rows}]"
            )
    names = [tensor.name for tensor in tensors]
    columns = [tensor.data for tensor in tensors]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def oip_output(values: list[Any]) -> dict[str, Any]:
    """The ``predict`` output tensor; a list per input becomes a second dimension."""
    shape = [len(values)]
    data = values
    if values and all(isinstance(value, list) for value in values):
        widths = {len(value) for value in values}
        if len(widths) == 1:
            shape.append(widths.pop())
            data = flatten(values)
    return {"name": "predict", "shape": shape, "datatype": datatype(data), "data": data}


def datatype(data: list[Any]) -> str:
    if data and all(isinstance(value, bool) for value in data):
        return "BOOL"
    if all(isinstance(value, int) and not isinstance(value, bool) for value in data):
        return "INT64"
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in data):
        return "FP64"
    return "BYTES"


# --- endpoints ----------------------------------------------------------------------------


class Endpoints:
    def __init__(self, state: ModelState, metrics: Metrics) -> None:
        self.state = state
        self.metrics = metrics
        self.name: str = state.args.model_name
        self.version: str = state.args.version

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

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        ready = self.state.predict is not None
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def ping(self, request: Request) -> Response:
        return Response("\n", status_code=200 if self.state.predict is not None else 503)

    def check_name(self, request: Request) -> None:
        name = request.path_params["name"]
        if name != self.name:
            raise HTTPError(404, f"no model named {name!r} here; this server serves {self.name!r}")

    async def metadata(self, request: Request) -> Response:
        self.check_name(request)
        return JSONResponse(
            {
                "name": self.name,
                "versions": [self.version],
                "platform": "shipyard",
                "inputs": [],
                "outputs": [],
            }
        )

    async def infer(self, request: Request) -> Response:
        self.check_name(request)
        body = await read_json(request)
        outputs = self.state.run(oip_records(body))
        request_id = body.get("id") if isinstance(body.get("id"), str) else str(uuid.uuid4())
        return JSONResponse(
            {
                "model_name": self.name,
                "model_version": self.version,
                "id": request_id,
                "outputs": [oip_output(outputs)],
            }
        )

    async def invocations(self, request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("text/csv"):
            records = csv_records((await read_body(request)).decode("utf-8", "replace"))
        else:
            records = mlflow_records(await read_json(request))
        return JSONResponse({"predictions": self.state.run(records)})

    async def prometheus(self, request: Request) -> Response:
        text = self.metrics.render(self.name, self.version, self.state.prediction_errors)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def render_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPError):
        return JSONResponse({"error": exc.message}, status_code=exc.status_code)
    # Starlette's own: unknown path (404), wrong method (405).
    if isinstance(exc, HTTPException):
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)
    return JSONResponse({"error": str(exc)}, status_code=500)


# --- wrappers: metrics and the version header ---------------------------------------------


class Metrics:
    """Prometheus counters, kept by hand: the artifact env has no prometheus_client."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}  # (route, status) -> count
        self.seconds: dict[str, float] = {}  # route -> total time answering it
        self.answered: dict[str, int] = {}  # route -> count

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[route, status] = self.requests.get((route, status), 0) + 1
        self.seconds[route] = self.seconds.get(route, 0.0) + seconds
        self.answered[route] = self.answered.get(route, 0) + 1

    def render(self, model: str, version: str, prediction_errors: int) -> str:
        labels = f'model="{escape(model)}",version="{escape(version)}"'
        requests = [
            (f'{labels},route="{route}",status="{status}"', count)
            for (route, status), count in sorted(self.requests.items())
        ]
        durations = [
            (f'{labels},route="{route}"', self.seconds[route], self.answered[route])
            for route in sorted(self.answered)
        ]
        return "".join(
            [
                "# HELP shipyard_requests_total HTTP requests by route and status.\n",
                "# TYPE shipyard_requests_total counter\n",
                *(f"shipyard_requests_total{{{key}}} {count}\n" for key, count in requests),
                "# HELP shipyard_prediction_errors_total Calls to predict that failed.\n",
                "# TYPE shipyard_prediction_errors_total counter\n",
                f"shipyard_prediction_errors_total{{{labels}}} {prediction_errors}\n",
                "# HELP shipyard_request_duration_seconds Time to answer a request.\n",
                "# TYPE shipyard_request_duration_seconds summary\n",
                *(
                    f"shipyard_request_duration_seconds_sum{{{key}}} {total}\n"
                    f"shipyard_request_duration_seconds_count{{{key}}} {count}\n"
                    for key, total, count in durations
                ),
            ]
        )


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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


# --- assembly -----------------------------------------------------------------------------


def build_app(args: argparse.Namespace) -> ASGIApp:
    state = ModelState(args)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=state.load, name="load-model", daemon=True).start()
        yield

    app = Starlette(
        routes=Endpoints(state, metrics).routes(),
        exception_handlers={HTTPError: render_error, HTTPException: render_error},
        lifespan=lifespan,
    )
    return with_version_header(observed(app, metrics), args.version)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--serve", required=True, help='"module:Class" or a JSON loader spec')
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--version", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="serve on this already-bound socket")
    where.add_argument("--port", type=int, help="bind 127.0.0.1 on this port")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    log.info("serving %s version %s from %s", args.model_name, args.version, args.model_dir)
    serve(build_app(args), fd=args.fd, port=args.port)


def serve(app: ASGIApp, *, fd: int | None, port: int | None) -> None:
    options: dict[str, Any] = {"log_level": "warning", "access_log": False}
    if fd is None:
        uvicorn.run(app, host="127.0.0.1", port=port or 0, **options)
        return
    # Not uvicorn.run(fd=...): it wraps the fd as AF_UNIX, so asyncio never sets TCP_NODELAY
    # and every keep-alive response waits ~40 ms on Nagle + delayed ACK. Auto-detect instead.
    sock = socket.socket(fileno=fd)
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


if __name__ == "__main__":
    main()
