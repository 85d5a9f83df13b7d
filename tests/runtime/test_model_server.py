"""The model server as a real process serving the trained iris example."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.errors import RuntimeFailure
from shipyard.pipeline.context import free_port
from shipyard.processes import is_zombie
from shipyard.runtime.interface import VERSION_HEADER, RunningServer
from shipyard.runtime.local import MODEL_SERVER, LocalRuntime

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
ROWS = [SETOSA, VIRGINICA]
RECORDS = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
MLFLOW_BODIES: dict[str, Any] = {
    "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": ROWS}},
    "dataframe_records": {"dataframe_records": RECORDS},
    "instances": {"instances": RECORDS},
    "inputs-columns": {
        "inputs": {name: [row[i] for row in ROWS] for i, name in enumerate(FEATURES)}
    },
    "inputs-records": {"inputs": RECORDS},
}


@pytest.fixture(params=["class", "skops"])
def server(request: pytest.FixtureRequest) -> RunningServer:
    name = "iris_server" if request.param == "class" else "skops_server"
    server: RunningServer = request.getfixturevalue(name)
    return server


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition, 0 when absent."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


def test_health_endpoints_answer_once_ready(server: RunningServer) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/ping"):
        response = httpx.get(server.endpoint + path)
        assert response.status_code == 200, path
        assert response.headers[VERSION_HEADER] == server.version


@pytest.mark.parametrize("fmt", sorted(MLFLOW_BODIES))
def test_every_mlflow_format_predicts_the_species(server: RunningServer, fmt: str) -> None:
    response = httpx.post(f"{server.endpoint}/invocations", json=MLFLOW_BODIES[fmt])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "virginica"]}
    assert response.headers[VERSION_HEADER] == server.version


def test_csv_body_is_read_as_a_dataframe(iris_server: RunningServer) -> None:
    body = ",".join(FEATURES) + "\n" + "\n".join(",".join(map(str, row)) for row in ROWS)
    response = httpx.post(
        f"{iris_server.endpoint}/invocations", content=body, headers={"content-type": "text/csv"}
    )
    assert response.json() == {"predictions": ["setosa", "virginica"]}


def test_oip_infer_with_one_tensor_per_column(iris_server: RunningServer) -> None:
    inputs = [
        {"name": name, "shape": [2], "datatype": "FP64", "data": [row[i] for row in ROWS]}
        for i, name in enumerate(FEATURES)
    ]
    response = httpx.post(
        f"{iris_server.endpoint}/v2/models/iris/infer", json={"id": "r-1", "inputs": inputs}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_name": "iris",
        "model_version": "1",
        "id": "r-1",
        "outputs": [
            {"name": "predict", "shape": [2], "datatype": "BYTES", "data": ["setosa", "virginica"]}
        ],
    }


def test_oip_infer_with_one_matrix_gives_rows(skops_server: RunningServer) -> None:
    tensor = {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [*SETOSA, *VIRGINICA]}
    response = httpx.post(
        f"{skops_server.endpoint}/v2/models/iris/infer", json={"inputs": [tensor]}
    )
    assert response.json()["outputs"][0]["data"] == ["setosa", "virginica"]


def test_model_metadata_and_unknown_model(iris_server: RunningServer) -> None:
    metadata = httpx.get(f"{iris_server.endpoint}/v2/models/iris").json()
    assert (metadata["name"], metadata["versions"], metadata["platform"]) == (
        "iris",
        ["1"],
        "python",
    )
    # The class declares no schema: input_example.json defines it.
    assert metadata["inputs"] == [
        {"name": name, "datatype": "FP64", "shape": [-1]} for name in FEATURES
    ]
    assert metadata["runtime"]["python"].count(".") == 2
    # The warm-up showed what the model returns: strings.
    assert metadata["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [-1]}]
    for response in (
        httpx.get(f"{iris_server.endpoint}/v2/models/tulip"),
        httpx.post(f"{iris_server.endpoint}/v2/models/tulip/infer", json={"inputs": []}),
    ):
        assert response.status_code == 404
        assert "tulip" in response.json()["error"]
        assert response.headers[VERSION_HEADER] == "1"


def test_skops_metadata_names_the_library_versions(skops_server: RunningServer) -> None:
    metadata = httpx.get(f"{skops_server.endpoint}/v2/models/iris").json()
    assert metadata["platform"] == "sklearn"
    assert set(metadata["runtime"]) >= {"python", "scikit-learn", "skops"}
    assert [tensor["name"] for tensor in metadata["inputs"]] == FEATURES


def test_unknown_paths_and_methods_answer_json(iris_server: RunningServer) -> None:
    missing = httpx.get(f"{iris_server.endpoint}/nowhere")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = httpx.get(f"{iris_server.endpoint}/invocations")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.headers[VERSION_HEADER] == "1"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {"dataframe_split": {"columns": FEATURES, "data": [SETOSA, [1.0, 2.0]]}},
            "dataframe_split.data[1] has 2 values but there are 4 columns",
        ),
        ({"dataframe_records": [RECORDS[0], 7]}, "dataframe_records[1]"),
        ({"inputs": {"sepal_length": [1.0, 2.0], "sepal_width": [1.0]}}, "inputs.sepal_width"),
        ({"records": RECORDS}, "exactly one of"),
        ({"instances": RECORDS, "inputs": RECORDS}, "exactly one of"),
        ({"instances": []}, "no records"),
    ],
)
def test_malformed_bodies_are_refused_naming_the_field(
    iris_server: RunningServer, body: Any, named: str
) -> None:
    response = httpx.post(f"{iris_server.endpoint}/invocations", json=body)
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_invalid_json_and_bad_tensors_are_400(iris_server: RunningServer) -> None:
    response = httpx.post(f"{iris_server.endpoint}/invocations", content=b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    tensor = {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1.0, 2.0]}
    response = httpx.post(f"{iris_server.endpoint}/v2/models/iris/infer", json={"inputs": [tensor]})
    assert response.status_code == 400
    assert "inputs[0] (x) has 2 values" in response.json()["error"]


def test_missing_feature_is_422_naming_it(server: RunningServer) -> None:
    records = [{k: v for k, v in RECORDS[0].items() if k != "petal_width"}]
    response = httpx.post(f"{server.endpoint}/invocations", json={"dataframe_records": records})
    assert response.status_code == 422
    assert response.json()["error"] == "dataframe_records[0]: missing feature petal_width"
    assert response.headers[VERSION_HEADER] == server.version


def column(name: str, values: list[Any], datatype: str = "FP64") -> dict[str, Any]:
    return {"name": name, "shape": [len(values)], "datatype": datatype, "data": values}


OIP_COLUMNS = [column(name, [SETOSA[i]]) for i, name in enumerate(FEATURES)]
SIGNATURE_MISFITS: dict[str, tuple[str, Any, str]] = {
    "split-missing-column": (
        "/invocations",
        {"dataframe_split": {"columns": FEATURES[:3], "data": [SETOSA[:3]]}},
        "dataframe_split.columns: missing feature petal_width",
    ),
    "records-wrong-type": (
        "/invocations",
        {"dataframe_records": [{**RECORDS[0], "petal_width": "wide"}]},
        "dataframe_records[0].petal_width: expected a number (FP64), got 'wide'",
    ),
    "instances-short-row": (
        "/invocations",
        {"instances": [SETOSA[:3]]},
        "instances[0]: expected 4 values, got 3",
    ),
    "columns-missing": (
        "/invocations",
        {"inputs": {name: [SETOSA[i]] for i, name in enumerate(FEATURES[1:])}},
        "inputs: missing feature sepal_length",
    ),
    "split-cell-wrong-type": (
        "/invocations",
        {"dataframe_split": {"columns": FEATURES, "data": [SETOSA, [1.0, 2.0, True, 4.0]]}},
        "dataframe_split.data[1][2]: expected a number (FP64), got True",
    ),
    "oip-datatype": (
        "/v2/models/iris/infer",
        {"inputs": [*OIP_COLUMNS[:3], column("petal_width", ["0.2"], "BYTES")]},
        "inputs[3].datatype: expected FP64, got BYTES",
    ),
    "oip-matrix-width": (
        "/v2/models/iris/infer",
        {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": SETOSA[:3]}]},
        "inputs[0].shape: expected [n, 4], got [1, 3]",
    ),
    "oip-missing-tensor": (
        "/v2/models/iris/infer",
        {"inputs": OIP_COLUMNS[1:]},
        "inputs: missing feature sepal_length",
    ),
}


@pytest.mark.parametrize("case", sorted(SIGNATURE_MISFITS))
def test_input_that_does_not_fit_the_signature_is_422_naming_the_field(
    server: RunningServer, case: str
) -> None:
    path, body, message = SIGNATURE_MISFITS[case]
    response = httpx.post(server.endpoint + path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == message


def test_csv_missing_column_is_422(iris_server: RunningServer) -> None:
    body = ",".join(FEATURES[:3]) + "\n" + ",".join(map(str, SETOSA[:3]))
    response = httpx.post(
        f"{iris_server.endpoint}/invocations", content=body, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "csv header: missing feature petal_width"


def test_columns_in_any_order_and_extra_columns_are_accepted(server: RunningServer) -> None:
    columns = ["extra", *reversed(FEATURES)]
    data = [["x", *reversed(row)] for row in ROWS]
    body = {"dataframe_split": {"columns": columns, "data": data}}
    response = httpx.post(f"{server.endpoint}/invocations", json=body)
    assert response.json() == {"predictions": ["setosa", "virginica"]}


def test_null_feature_reaches_the_model_as_nan(skops_server: RunningServer) -> None:
    body = {"dataframe_records": [{**RECORDS[0], "petal_width": None}]}
    response = httpx.post(f"{skops_server.endpoint}/invocations", json=body)
    # LogisticRegression refuses NaN: the model's own ValueError is the 422.
    assert response.status_code == 422
    assert "NaN" in response.json()["error"]


def test_body_over_10_mib_is_413(iris_server: RunningServer) -> None:
    response = httpx.post(
        f"{iris_server.endpoint}/invocations",
        content=b"x" * (10 * 1024 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "limit" in response.json()["error"]


def test_predict_crash_is_500_and_logged(
    setosa_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    response = httpx.post(
        f"{setosa_server.endpoint}/invocations", json={"instances": [{"explode": True}]}
    )
    assert response.status_code == 500
    assert "see the model server log" in response.json()["error"]
    log = next(tmp_path_factory.getbasetemp().glob("logs*/2.log")).read_text()
    assert "RuntimeError: exploded on purpose" in log


def test_metrics_count_requests_and_prediction_errors(
    iris_server: RunningServer, setosa_server: RunningServer
) -> None:
    def scrape(server: RunningServer) -> str:
        response = httpx.get(f"{server.endpoint}/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        return response.text

    before = scrape(iris_server)
    ok = {"route": "/invocations", "status": "200"}
    for _ in range(3):
        httpx.post(f"{iris_server.endpoint}/invocations", json=MLFLOW_BODIES["instances"])
    httpx.post(f"{iris_server.endpoint}/invocations", json={"instances": [{"x": 1}]})
    after = scrape(iris_server)
    assert (
        metric(after, "shipyard_requests_total", **ok)
        == metric(before, "shipyard_requests_total", **ok) + 3
    )
    rejected = {"route": "/invocations", "status": "422"}
    assert metric(after, "shipyard_requests_total", **rejected) >= 1
    count = metric(after, "shipyard_request_duration_seconds_count", route="/invocations")
    assert count >= 4
    assert metric(after, "shipyard_request_duration_seconds_sum", route="/invocations") > 0
    rows = metric(after, "shipyard_batch_rows_sum", version="1")
    assert rows - metric(before, "shipyard_batch_rows_sum", version="1") == 6  # 3 x 2 rows
    # A 422 from the signature never reached predict; a crash in predict is an error.
    errors_before = metric(scrape(setosa_server), "shipyard_prediction_errors_total", version="2")
    httpx.post(f"{setosa_server.endpoint}/invocations", json={"instances": [{"explode": 1}]})
    errors_after = metric(scrape(setosa_server), "shipyard_prediction_errors_total", version="2")
    assert errors_after == errors_before + 1


def test_a_model_that_cannot_load_fails_start_with_the_log_tail(
    runtime: LocalRuntime, fake_code_dir: Path, tmp_path: Path, make_spec: Any
) -> None:
    broken = make_spec("9", tmp_path, fake_code_dir, "fake_models:Broken", tmp_path / "9.log")
    with pytest.raises(RuntimeFailure) as failure:
        runtime.start_server(broken, ready_timeout=30)
    assert "exited" in failure.value.message
    assert "broken on purpose" in failure.value.message


def test_a_missing_interpreter_is_refused_before_starting(
    runtime: LocalRuntime, fake_code_dir: Path, tmp_path: Path, make_spec: Any
) -> None:
    bad = make_spec("9", tmp_path, fake_code_dir, "fake_models:AlwaysSetosa", tmp_path / "9.log")
    bad = dataclasses.replace(bad, python=tmp_path / "no-python")
    with pytest.raises(RuntimeFailure, match=r"interpreter .* does not exist"):
        runtime.start_server(bad)


def test_stop_server_kills_the_process(
    runtime: LocalRuntime, fake_code_dir: Path, tmp_path: Path, make_spec: Any
) -> None:
    server = runtime.start_server(
        make_spec("3", tmp_path, fake_code_dir, "fake_models:AlwaysSetosa", tmp_path / "3.log")
    )
    try:
        assert runtime.is_alive(server.pid)
        assert httpx.get(f"{server.endpoint}/ping").status_code == 200
    finally:
        runtime.stop_server(server.pid)
    assert not runtime.is_alive(server.pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.endpoint}/ping")
    runtime.stop_server(server.pid)  # already gone: silent


# --- loading, readiness and workers ---------------------------------------------------------------

WORKER_MODELS = '''
import os
import time
from pathlib import Path


def wait_for(path):
    while not path.exists():
        time.sleep(0.02)


class Gated:
    """Loads once the file "go" exists; with "first-free" in the model dir, one worker needs none."""

    def __init__(self, model_dir):
        folder = Path(model_dir)
        if (folder / "first-free").exists():
            try:
                os.close(os.open(folder / "first", os.O_CREAT | os.O_EXCL))
                return
            except FileExistsError:
                pass
        wait_for(folder / "go")

    def predict(self, records):
        return [os.getpid() for _ in records]


class Mortal:
    """Answers its pid; a record {"die": true} kills the worker that gets it."""

    def __init__(self, model_dir):
        pass

    def predict(self, records):
        if any(isinstance(r, dict) and r.get("die") for r in records):
            os._exit(1)
        return [os.getpid() for _ in records]
'''


@pytest.fixture(scope="module")
def worker_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code = tmp_path_factory.mktemp("worker-code")
    (code / "worker_models.py").write_text(WORKER_MODELS)
    return code


@contextlib.contextmanager
def server_process(code: Path, model_dir: Path, serve: str, workers: int) -> Iterator[str]:
    """The model server started by hand on a free port, so a test can watch it load."""
    port = free_port()
    command = [sys.executable, str(MODEL_SERVER), "--model-dir", str(model_dir), "--serve", serve]
    command += ["--model-name", "iris", "--version", "7", "--port", str(port)]
    command += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    log = (model_dir / "server.log").open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: status(f"{endpoint}/v2/health/live") == 200, process)
        yield endpoint
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()


def status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


def wait(condition: Callable[[], bool], process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process is None or process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "gave up waiting (60 s)"
        time.sleep(0.05)


def test_live_at_once_ready_only_after_the_model_loaded(worker_code: Path, tmp_path: Path) -> None:
    with server_process(worker_code, tmp_path, "worker_models:Gated", 1) as endpoint:
        assert status(f"{endpoint}/v2/health/ready") == 503
        assert status(f"{endpoint}/ping") == 503
        response = httpx.post(f"{endpoint}/invocations", json={"instances": [[1]]})
        assert response.status_code == 503
        assert response.json() == {"error": "the model is still loading"}
        (tmp_path / "go").touch()
        wait(lambda: status(f"{endpoint}/v2/health/ready") == 200)
        assert httpx.post(f"{endpoint}/invocations", json={"instances": [[1]]}).status_code == 200


def test_ready_only_when_every_worker_is(worker_code: Path, tmp_path: Path) -> None:
    (tmp_path / "first-free").touch()
    with server_process(worker_code, tmp_path, "worker_models:Gated", 2) as endpoint:
        # One worker has loaded once the metadata answers; the other still waits for "go".
        wait(lambda: status(f"{endpoint}/v2/models/iris") == 200)
        assert {status(f"{endpoint}/v2/health/ready") for _ in range(20)} == {503}
        (tmp_path / "go").touch()
        wait(lambda: status(f"{endpoint}/v2/health/ready") == 200)


def pids_answering(endpoint: str, wanted: int) -> set[int]:
    """The worker pids seen over new connections, until ``wanted`` appear (or 400 tries)."""
    seen: set[int] = set()
    for _ in range(400):
        response = httpx.post(f"{endpoint}/invocations", json={"instances": [[1]]})
        seen.add(response.json()["predictions"][0])
        if len(seen) >= wanted:
            break
    return seen


def test_workers_share_the_socket_and_one_that_dies_is_replaced(
    runtime: LocalRuntime, worker_code: Path, tmp_path: Path, make_spec: Any
) -> None:
    spec = make_spec("5", tmp_path, worker_code, "worker_models:Mortal", tmp_path / "5.log")
    server = runtime.start_server(dataclasses.replace(spec, workers=2), ready_timeout=60)
    try:
        first = pids_answering(server.endpoint, 2)
        assert len(first) == 2
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{server.endpoint}/invocations", json={"instances": [{"die": True}]})
        wait(lambda: status(f"{server.endpoint}/v2/health/ready") == 200)
        after = pids_answering(server.endpoint, 2)
        assert len(after) == 2 and len(after & first) == 1  # one replaced, one kept
        metrics = httpx.get(f"{server.endpoint}/metrics").text
        # Every worker's requests, whichever worker answers the scrape (multiprocess mode).
        ok = metric(metrics, "shipyard_requests_total", route="/invocations", status="200")
        assert ok >= len(first) + len(after)
        assert (
            "worker 0 exited" in (tmp_path / "5.log").read_text()
            or "worker 1 exited" in (tmp_path / "5.log").read_text()
        )
    finally:
        runtime.stop_server(server.pid)
    for pid in first | after:
        assert not Path(f"/proc/{pid}").exists() or is_zombie(pid)


def test_a_model_whose_warm_up_fails_never_gets_ready(
    runtime: LocalRuntime, fake_code_dir: Path, tmp_path: Path, make_spec: Any
) -> None:
    (tmp_path / "input_example.json").write_text('[{"explode": true}]')
    spec = make_spec("8", tmp_path, fake_code_dir, "fake_models:AlwaysSetosa", tmp_path / "8.log")
    with pytest.raises(RuntimeFailure) as failure:
        runtime.start_server(dataclasses.replace(spec, workers=2), ready_timeout=60)
    assert "exited with code 3" in failure.value.message
    assert "exploded on purpose" in failure.value.message
