"""The model server as a real process serving the trained iris example."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.errors import RuntimeFailure
from shipyard.runtime.interface import VERSION_HEADER, RunningServer
from shipyard.runtime.local import LocalRuntime

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
        "shipyard",
    )
    for response in (
        httpx.get(f"{iris_server.endpoint}/v2/models/tulip"),
        httpx.post(f"{iris_server.endpoint}/v2/models/tulip/infer", json={"inputs": []}),
    ):
        assert response.status_code == 404
        assert "tulip" in response.json()["error"]
        assert response.headers[VERSION_HEADER] == "1"


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


def test_missing_feature_is_422(server: RunningServer) -> None:
    records = [{k: v for k, v in RECORDS[0].items() if k != "petal_width"}]
    response = httpx.post(f"{server.endpoint}/invocations", json={"dataframe_records": records})
    assert response.status_code == 422
    assert response.json()["error"].startswith("the model rejected the input")
    assert response.headers[VERSION_HEADER] == server.version


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


def test_metrics_count_requests_and_prediction_errors(iris_server: RunningServer) -> None:
    def scrape() -> str:
        return httpx.get(f"{iris_server.endpoint}/metrics").text

    before = scrape()
    ok = {"route": "/invocations", "status": "200"}
    for _ in range(3):
        httpx.post(f"{iris_server.endpoint}/invocations", json=MLFLOW_BODIES["instances"])
    httpx.post(f"{iris_server.endpoint}/invocations", json={"instances": [{"x": 1}]})
    after = scrape()
    assert (
        metric(after, "shipyard_requests_total", **ok)
        == metric(before, "shipyard_requests_total", **ok) + 3
    )
    rejected = {"route": "/invocations", "status": "422"}
    assert metric(after, "shipyard_requests_total", **rejected) >= 1
    errors_before = metric(before, "shipyard_prediction_errors_total", version="1")
    assert metric(after, "shipyard_prediction_errors_total", version="1") == errors_before + 1
    count = metric(after, "shipyard_request_duration_seconds_count", route="/invocations")
    assert count >= 4
    assert metric(after, "shipyard_request_duration_seconds_sum", route="/invocations") > 0


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
