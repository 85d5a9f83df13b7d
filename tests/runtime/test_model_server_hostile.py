"""Client mistakes are 4xx naming the field, never 5xx: examples of each kind, then 10,000
generated bodies against one real model server (the iris example, served from skops).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.runtime.interface import RunningServer
from shipyard.runtime.local import LocalRuntime

from .conftest import started

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETOSA = [5.1, 3.5, 1.4, 0.2]
RECORD = dict(zip(FEATURES, SETOSA, strict=True))
INFER = "/v2/models/iris/infer"
HUGE_DIGITS = "1" + "0" * 400  # 10**400 written out: no float64 holds it


@pytest.fixture(scope="module")
def server(
    runtime: LocalRuntime,
    iris_model_dir: Path,
    make_spec: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """Started once for this module, so its last test can see it survived all the others."""
    serve = {"format": "skops", "path": "model.skops"}
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    yield from started(runtime, make_spec("h1", iris_model_dir, iris_model_dir, serve, log))


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.endpoint, timeout=30) as keep_alive:
        yield keep_alive


def post(client: httpx.Client, path: str, body: bytes, content_type: str) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": content_type})


def tensor(name: str, shape: list[Any], data: Any, datatype: str = "FP64") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def columns(*values: Any) -> dict[str, Any]:
    """One OIP tensor per feature, one row: ``values`` in place of the setosa values."""
    cells = [*values, *SETOSA[len(values) :]]
    return {
        "inputs": [tensor(name, [1], [cell]) for name, cell in zip(FEATURES, cells, strict=True)]
    }


def raw(text: str) -> bytes:
    return text.encode()


# (path, body, expected status, the field or reason the message must name)
EXAMPLES: dict[str, tuple[str, bytes | Any, int, str]] = {
    # too large for float64
    "huge-integer-digits": (
        "/invocations",
        raw(f'{{"instances": [[{HUGE_DIGITS}, 3.5, 1.4, 0.2]]}}'),
        422,
        "instances[0][0]: an integer out of float64's range",
    ),
    "huge-float-exponent": (
        "/invocations",
        raw(
            '{"dataframe_records": [{"sepal_length": 1e400, "sepal_width": 3.5, '
            '"petal_length": 1.4, "petal_width": 0.2}]}'
        ),
        422,
        "dataframe_records[0].sepal_length: inf is not a finite number",
    ),
    "huge-integer-past-python-limit": (
        "/invocations",
        raw('{"instances": [[' + "9" * 5000 + "]]}"),
        422,
        "an integer out of float64's range",
    ),
    "oip-huge-integer": (
        INFER,
        raw(
            '{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", '
            f'"data": [1, 2, 3, {HUGE_DIGITS}]}}]}}'
        ),
        422,
        "inputs[0].data[3]: an integer out of float64's range",
    ),
    # nesting
    "deep-array": ("/invocations", raw("[" * 100_000 + "]" * 100_000), 400, "nested deeper"),
    "deep-unclosed": (INFER, raw('{"inputs": ' + "[" * 100_000), 400, "nested deeper"),
    "deep-objects": (
        "/invocations",
        raw('{"a": ' * 50_000 + "1" + "}" * 50_000),
        400,
        "nested deeper",
    ),
    "deep-inside-a-cell": (
        "/invocations",
        raw('{"instances": [[' + "[" * 40 + "]" * 40 + "]]}"),
        400,
        "instances[0][0][0][0]",
    ),
    # non-finite numbers
    "nan": (
        "/invocations",
        raw(
            json.dumps(
                {"dataframe_split": {"columns": FEATURES, "data": [[math.nan, 3.5, 1.4, 0.2]]}}
            )
        ),
        422,
        "dataframe_split.data[0][0]: NaN is not a number JSON allows; send null",
    ),
    "infinity": (INFER, raw(json.dumps(columns(math.inf))), 422, "inputs[0].data[0]: inf"),
    "minus-infinity": (
        "/invocations",
        raw('{"instances": [[5.1, -Infinity, 1.4, 0.2]]}'),
        422,
        "instances[0][1]: -inf is not a finite number",
    ),
    # wrong shapes
    "ragged-rows": (
        "/invocations",
        {"dataframe_split": {"columns": FEATURES, "data": [SETOSA, SETOSA[:3]]}},
        400,
        "dataframe_split.data[1] has 3 values but there are 4 columns",
    ),
    "too-few-features": ("/invocations", {"instances": [SETOSA[:3]]}, 422, "instances[0]"),
    "too-many-features": (
        "/invocations",
        {"instances": [[*SETOSA, 1.0]]},
        422,
        "instances[0]: expected 4 values, got 5",
    ),
    "scalar-for-a-row": (
        "/invocations",
        {"instances": [5.1]},
        422,
        "instances[0]: expected 4 values, got 1",
    ),
    "object-for-a-number": (
        "/invocations",
        {"dataframe_records": [{**RECORD, "petal_width": {"cm": 0.2}}]},
        422,
        "dataframe_records[0].petal_width: expected a number (FP64), got {'cm': 0.2}",
    ),
    "string-in-a-numeric-column": (
        INFER,
        columns(5.1, 3.5, 1.4, "wide"),
        422,
        "inputs[3].data[0]: expected a number (FP64), got 'wide'",
    ),
    "empty-batch": ("/invocations", {"dataframe_records": []}, 400, "no records"),
    "oip-empty-batch": (INFER, {"inputs": [tensor("x", [0, 4], [])]}, 400, "no records"),
    "oip-huge-batch-count": (
        INFER,
        {"inputs": [tensor("x", [10**12, 4], SETOSA)]},
        400,
        "inputs[0].shape must be",
    ),
    "oip-shape-product": (
        INFER,
        {"inputs": [tensor("x", [3, 4], SETOSA)]},
        400,
        "inputs[0] (x) has 4 values but shape [3, 4]",
    ),
    "oip-shape-of-three-dimensions": (
        INFER,
        {"inputs": [tensor("x", [1, 2, 2], SETOSA)]},
        400,
        "inputs[0].shape must be [n] or [n, k]",
    ),
    "oip-negative-shape": (INFER, {"inputs": [tensor("x", [-1, 4], SETOSA)]}, 400, "shape"),
    "oip-unknown-datatype": (
        INFER,
        {"inputs": [tensor("x", [1, 4], SETOSA, "FP128")]},
        422,
        "inputs[0].datatype: expected one of BOOL, BYTES",
    ),
    "oip-data-not-a-list": (INFER, {"inputs": [tensor("x", [1], 5.1)]}, 400, "inputs[0].data"),
    # encodings and syntax
    "invalid-utf8": ("/invocations", b'{"instances": [["\xff\xfe"]]}', 400, "not UTF-8"),
    "lone-surrogate": (
        "/invocations",
        raw(json.dumps({"dataframe_records": [{**RECORD, "sepal_length": "\ud800"}]})),
        400,
        "dataframe_records[0].sepal_length: the string holds an unpaired UTF-16 surrogate",
    ),
    "surrogate-oip-id": (
        INFER,
        raw(json.dumps({"id": "\udfff", **columns()})),
        400,
        "id: the string holds an unpaired UTF-16 surrogate",
    ),
    "duplicated-key": (
        "/invocations",
        raw(json.dumps({"dataframe_records": [RECORD]}).replace("}", ', "sepal_length": 2}', 1)),
        400,
        "dataframe_records[0]: the key 'sepal_length' appears twice",
    ),
    "duplicated-format": (
        "/invocations",
        raw('{"instances": [[1, 2, 3, 4]], "instances": [[5, 6, 7, 8]]}'),
        400,
        "the body: the key 'instances' appears twice",
    ),
    "bom": ("/invocations", b'\xef\xbb\xbf{"instances": []}', 400, "not valid JSON"),
    "not-json": ("/invocations", b"<xml/>", 400, "not valid JSON"),
    # the model refuses a well-formed value: its ValueError is the client's 422
    "null-feature": (
        "/invocations",
        {"dataframe_records": [{**RECORD, "petal_width": None}]},
        422,
        "the model rejected the input: ValueError",
    ),
}


@pytest.mark.parametrize("case", sorted(EXAMPLES))
def test_client_mistake_is_4xx_naming_the_field(client: httpx.Client, case: str) -> None:
    path, body, status, named = EXAMPLES[case]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = post(client, path, content, "application/json")
    assert (response.status_code, named in response.json()["error"]) == (status, True), (
        response.text[:300]
    )


@pytest.mark.parametrize(
    ("content_type", "body", "status", "named"),
    [
        ("text/csv", b"sepal_length,sepal_width\n\xff,1\n", 400, "the CSV body is not UTF-8"),
        ("text/csv", ("a\n" + "x" * 200_000).encode(), 400, "the CSV body cannot be read"),
        (
            "text/csv",
            b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1e400,0.2\n",
            422,
            "csv row 1, petal_length: '1e400' is not a finite number",
        ),
        ("text/plain", b"5.1,3.5,1.4,0.2", 400, "not valid JSON"),
        ("application/xml", b"<instances/>", 400, "not valid JSON"),
        ("multipart/form-data; boundary=x", b"--x--", 400, "not valid JSON"),
    ],
)
def test_wrong_content_is_4xx(
    client: httpx.Client, content_type: str, body: bytes, status: int, named: str
) -> None:
    response = post(client, "/invocations", body, content_type)
    assert response.status_code == status, response.text[:300]
    assert named in response.json()["error"]


def test_a_10_mib_body_of_rows_is_decoded_in_linear_time(client: httpx.Client) -> None:
    """Just under the limit: answered (the model refuses nothing), well within a client timeout."""
    rows = [SETOSA] * 250_000
    body = json.dumps({"instances": rows}).encode()
    assert len(body) < 10 * 1024 * 1024
    began = time.monotonic()
    response = post(client, "/invocations", body, "application/json")
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == len(rows)
    assert time.monotonic() - began < 20


# --- generated bodies ---------------------------------------------------------------------------

huge_integers = st.integers(10**309, 10**600).map(lambda n: n * (-1) ** (n % 2))
bad_cells = st.one_of(
    st.text(max_size=4),
    st.booleans(),
    st.none(),
    st.sampled_from([math.nan, math.inf, -math.inf, [], [1.0, 2.0], {"cm": 1.0}]),
    huge_integers,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers()
    | huge_integers
    | st.text(st.characters(codec=None), max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
FORMATS = ["instances", "inputs", "dataframe_records", "dataframe_split", "oip-matrix", "oip"]


def body_of(fmt: str, rows: list[list[Any]], order: list[str]) -> tuple[str, dict[str, Any]]:
    """Rows of iris features in one of the formats; ``order`` is the order of the columns."""
    records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    by_name = {name: [record[name] for record in records] for name in order}
    if fmt == "instances":
        return "/invocations", {"instances": rows}
    if fmt == "inputs":
        return "/invocations", {"inputs": by_name}
    if fmt == "dataframe_records":
        return "/invocations", {"dataframe_records": records}
    if fmt == "dataframe_split":
        data = [[record[name] for name in order] for record in records]
        return "/invocations", {"dataframe_split": {"columns": order, "data": data}}
    if fmt == "oip-matrix":
        flat = [value for row in rows for value in row]
        return INFER, {"inputs": [tensor("x", [len(rows), 4], flat)]}
    return INFER, {"inputs": [tensor(name, [len(rows)], by_name[name]) for name in order]}


def finite_rows(raw: bytes) -> list[list[Any]]:
    """Rows of four float64s read from random bytes (any bit pattern but NaN and infinity),
    the odd one an integer: one draw per body instead of one per value, four times faster."""
    values: list[Any] = [
        v for (v,) in struct.iter_unpack("<d", raw[: len(raw) // 8 * 8]) if math.isfinite(v)
    ]
    values = [*values, *SETOSA][: max(4, len(values) - len(values) % 4)]
    values[-1] = int(values[-1]) if abs(values[-1]) < 2**63 else values[-1]
    return [values[i : i + 4] for i in range(0, len(values), 4)]


@st.composite
def valid_bodies(draw: st.DrawFn) -> tuple[str, Any]:
    """A body the iris model must answer 200: any format, rows of finite numbers."""
    rows = finite_rows(draw(st.binary(min_size=32, max_size=96)))
    return body_of(draw(st.sampled_from(FORMATS)), rows, draw(st.permutations(FEATURES)))


@st.composite
def spoiled_bodies(draw: st.DrawFn) -> tuple[str, Any]:
    """A valid body with one value the model cannot take, or one value missing."""
    rows: list[list[Any]] = [list(SETOSA) for _ in range(draw(st.integers(1, 3)))]
    spoiled = draw(st.integers(0, 3))
    if draw(st.booleans()):
        rows[0][spoiled] = draw(bad_cells)
        return body_of(draw(st.sampled_from(FORMATS)), rows, FEATURES)
    path, body = body_of(draw(st.sampled_from(FORMATS)), rows, FEATURES)
    first_values(body).pop()  # a short row, a missing feature, or a tensor short of its shape
    return path, body


def first_values(body: Any) -> Any:
    """The body's first row, record, column or tensor data: where one value can go missing."""
    key = next(iter(body))
    value = body[key]
    if key == "dataframe_split":
        return value["data"][0]
    if key == "dataframe_records":
        return RecordRow(value[0])
    if isinstance(value, dict):
        return next(iter(value.values()))
    return value[0]["data"] if key == "inputs" else value[0]


class RecordRow:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def pop(self) -> Any:
        return self.record.pop(next(iter(self.record)))


@st.composite
def hostile_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """Random bytes, random JSON, unicode, deep nesting, huge numbers, to either endpoint."""
    path = draw(st.sampled_from(["/invocations", INFER]))
    kind = draw(st.sampled_from(["bytes", "json", "deep", "digits", "unicode"]))
    if kind == "bytes":
        return path, draw(st.binary(max_size=32))
    if kind == "deep":
        depth = draw(st.integers(33, 20_000))  # 100,000 deep: the examples above
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return path, (opener * depth + "1" + closer * draw(st.sampled_from([0, depth]))).encode()
    if kind == "digits":
        digits = "7" * draw(st.integers(310, 6000))
        return path, f'{{"instances": [[{digits}, 1, 2, 3]], "inputs": [{digits}]}}'.encode()
    if kind == "unicode":
        return path, json.dumps(draw(st.text(st.characters(codec=None), max_size=8))).encode()
    return path, json.dumps(draw(json_values)).encode()


EXAMPLES_PER_RUN = 10_000  # one body per example


@pytest.fixture(scope="module")
def connection(server: RunningServer) -> Iterator[http.client.HTTPConnection]:
    """One keep-alive connection: http.client costs a third of httpx's time per request."""
    host, port = server.endpoint.removeprefix("http://").split(":")
    keep_alive = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        yield keep_alive
    finally:
        keep_alive.close()


def status_of(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, str]:
    """The answer to one POST. A keep-alive connection the server closed while idle (its
    keep-alive timeout passes when a loaded machine pauses this test) is opened again once,
    as any HTTP client does; a server that dies still fails the second try."""
    for attempt in (1, 2):
        try:
            connection.request("POST", path, body, {"content-type": "application/json"})
            response = connection.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        except (BrokenPipeError, ConnectionResetError, http.client.HTTPException):
            connection.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@settings(
    max_examples=EXAMPLES_PER_RUN,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    st.one_of(
        valid_bodies().map(lambda body: (True, body)),
        spoiled_bodies().map(lambda body: (False, body)),
        hostile_bodies().map(lambda body: (False, body)),
    )
)
def test_generated_bodies_never_get_a_5xx(
    connection: http.client.HTTPConnection, generated: tuple[bool, tuple[str, Any]]
) -> None:
    valid, (path, body) = generated
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, text = status_of(connection, path, content)
    assert status in ((200,) if valid else (400, 422)), (path, content[:200], text[:300])


def test_the_server_is_up_after_the_generated_bodies(
    client: httpx.Client, server: RunningServer
) -> None:
    # Runs after the property test in file order; on its own it checks a fresh server.
    os.kill(server.pid, 0)
    assert client.get("/v2/health/ready").status_code == 200
