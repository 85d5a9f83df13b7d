"""The built-in loaders, each served by a real model server process.

skops, pickle and joblib run under this test interpreter (it has scikit-learn). ONNX and MLflow
run in a uv environment built for this module (onnx, onnxruntime, mlflow-skinny, pandas,
scikit-learn and the serving requirements), as a deployment's own environment would be; it is
cached in the session's $SHIPYARD_CACHE.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.errors import RuntimeFailure
from shipyard.executor import LocalExecutor, PythonEnv
from shipyard.paths import StateDir
from shipyard.runtime.interface import SERVING_REQUIREMENTS, RunningServer, ServerSpec
from shipyard.runtime.local import LocalRuntime

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
SPLIT = {"dataframe_split": {"columns": FEATURES, "data": [SETOSA, VIRGINICA]}}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
LOADERS_REQUIREMENTS = "onnx\nonnxruntime\nmlflow-skinny\npandas\nscikit-learn\nskops\n"

# Two ONNX graphs made with onnx.helper: a linear classifier over one [n, 4] float tensor
# (label = argmax of scores; only petal_length matters), and a sum of two named [n, 1] inputs.
MAKE_ONNX = """
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

def model(graph):
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    made.ir_version = 8
    return made

weights = np.zeros((4, 3), dtype=np.float32)
weights[2] = [-1.0, 0.0, 1.0]
bias = np.array([3.0, 0.0, -4.5], dtype=np.float32)
classifier = helper.make_graph(
    [
        helper.make_node("MatMul", ["X", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["scores"]),
        helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0),
    ],
    "iris",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
    [helper.make_tensor_value_info("label", TensorProto.INT64, [None])],
    [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
)
save(model(classifier), sys.argv[1] + "/classifier.onnx")
adder = helper.make_graph(
    [helper.make_node("Add", ["a", "b"], ["sum"])],
    "adder",
    [
        helper.make_tensor_value_info("a", TensorProto.DOUBLE, [None, 1]),
        helper.make_tensor_value_info("b", TensorProto.DOUBLE, [None, 1]),
    ],
    [helper.make_tensor_value_info("sum", TensorProto.DOUBLE, [None, 1])],
)
save(model(adder), sys.argv[1] + "/adder.onnx")
"""

SAVE_MLFLOW = """
import sys
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

iris = load_iris(as_frame=True)
frame = iris.data
frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
labels = iris.target_names[iris.target]
model = LogisticRegression(max_iter=500).fit(frame, labels)
# Naming the requirements spares MLflow from inferring them (a slow subprocess).
options = {"signature": infer_signature(frame, model.predict(frame)), "pip_requirements": []}
mlflow.sklearn.save_model(model, sys.argv[1] + "/pyfunc", **options)  # skops: the default
mlflow.sklearn.save_model(
    model, sys.argv[1] + "/pickled", serialization_format="cloudpickle", **options
)
"""

TRAIN_WITH_OWN_FUNCTION = """
import sys
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from project_features import doubled

x, y = load_iris(return_X_y=True)
model = make_pipeline(FunctionTransformer(doubled), LogisticRegression(max_iter=500)).fit(x, y)
sio.dump(model, sys.argv[1] + "/model.skops")
"""


@pytest.fixture(scope="module")
def loaders_env(tmp_path_factory: pytest.TempPathFactory) -> PythonEnv:
    root = tmp_path_factory.mktemp("loaders-env")
    requirements = root / "requirements.txt"
    requirements.write_text(LOADERS_REQUIREMENTS)
    executor = LocalExecutor(StateDir(root, Path(os.environ["SHIPYARD_CACHE"])).ensure())
    return executor.python_env(requirements, PYTHON, SERVING_REQUIREMENTS)


def run_script(python: Path, script: str, out: Path, pythonpath: Path | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(pythonpath or "")}
    subprocess.run([str(python), "-c", script, str(out)], check=True, capture_output=True, env=env)


def spec_for(
    model_dir: Path, serve: str | dict[str, Any], *, python: Path | None = None, **options: Any
) -> ServerSpec:
    return ServerSpec(
        version="1",
        python=python or Path(sys.executable),
        code_dir=model_dir,
        model_dir=model_dir,
        serve=serve,
        model_name="iris",
        log=model_dir / "server.log",
        **options,
    )


@pytest.fixture
def serve(runtime: LocalRuntime) -> Iterator[Any]:
    """serve(spec) -> a running server, stopped after the test."""
    started: list[RunningServer] = []

    def start(spec: ServerSpec) -> RunningServer:
        server = runtime.start_server(spec, ready_timeout=90)
        started.append(server)
        return server

    yield start
    for server in started:
        runtime.stop_server(server.pid)


def predictions(server: RunningServer, body: Any = SPLIT) -> Any:
    response = httpx.post(f"{server.endpoint}/invocations", json=body)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


# --- pickle and joblib: only from a signed artifact ------------------------------------------------


@pytest.fixture
def pickled_dir(iris_model_dir: Path, tmp_path: Path) -> Path:
    import joblib  # type: ignore[import-untyped]
    import skops.io as sio  # type: ignore[import-untyped]

    estimator = sio.load(iris_model_dir / "model.skops")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(estimator))
    joblib.dump(estimator, tmp_path / "model.joblib")
    example = (iris_model_dir / "input_example.json").read_text()
    (tmp_path / "input_example.json").write_text(example)
    return tmp_path


@pytest.mark.parametrize(("fmt", "file"), [("pickle", "model.pkl"), ("joblib", "model.joblib")])
def test_pickle_formats_are_refused_without_a_signed_artifact(
    runtime: LocalRuntime, pickled_dir: Path, fmt: str, file: str
) -> None:
    with pytest.raises(RuntimeFailure) as failure:
        runtime.start_server(spec_for(pickled_dir, {"format": fmt, "path": file}), ready_timeout=60)
    message = failure.value.message
    assert f"refusing to load {file} ({fmt})" in message
    assert "only from a signed release artifact" in message


@pytest.mark.parametrize(("fmt", "file"), [("pickle", "model.pkl"), ("joblib", "model.joblib")])
def test_pickle_formats_load_when_allowed(
    serve: Any, pickled_dir: Path, fmt: str, file: str
) -> None:
    server = serve(spec_for(pickled_dir, {"format": fmt, "path": file}, allow_pickle=True))
    assert predictions(server) == ["setosa", "virginica"]


# --- skops: only trusted types ---------------------------------------------------------------------


@pytest.fixture
def own_function_dir(tmp_path: Path) -> Path:
    (tmp_path / "project_features.py").write_text("def doubled(x):\n    return x * 2\n")
    run_script(Path(sys.executable), TRAIN_WITH_OWN_FUNCTION, tmp_path, pythonpath=tmp_path)
    return tmp_path


def test_skops_refuses_types_it_does_not_trust(
    runtime: LocalRuntime, own_function_dir: Path
) -> None:
    spec = spec_for(own_function_dir, {"format": "skops", "path": "model.skops"})
    with pytest.raises(RuntimeFailure) as failure:
        runtime.start_server(spec, ready_timeout=60)
    assert "types skops does not trust: project_features.doubled" in failure.value.message
    assert "model.serve.trusted" in failure.value.message


def test_skops_loads_types_listed_as_trusted(serve: Any, own_function_dir: Path) -> None:
    loader = {"format": "skops", "path": "model.skops", "trusted": ["project_features.doubled"]}
    server = serve(spec_for(own_function_dir, loader))
    assert predictions(server, {"instances": [SETOSA, VIRGINICA]}) == [0, 2]


def test_a_missing_model_file_is_named(runtime: LocalRuntime, tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure) as failure:
        runtime.start_server(spec_for(tmp_path, {"format": "skops", "path": "gone.skops"}))
    assert "the model file gone.skops is not in the model directory" in failure.value.message


# --- ONNX through onnxruntime ------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_dir(loaders_env: PythonEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx-model")
    run_script(loaders_env.python, MAKE_ONNX, out)
    return out


@pytest.fixture(scope="module")
def onnx_classifier(
    runtime: LocalRuntime, loaders_env: PythonEnv, onnx_dir: Path
) -> Iterator[RunningServer]:
    loader = {"format": "onnx", "path": "classifier.onnx"}
    server = runtime.start_server(
        spec_for(onnx_dir, loader, python=loaders_env.python), ready_timeout=90
    )
    yield server
    runtime.stop_server(server.pid)


def matrix(rows: list[list[float]], datatype: str = "FP32") -> dict[str, Any]:
    flat = [value for row in rows for value in row]
    shape = [len(rows), len(rows[0])]
    return {"inputs": [{"name": "X", "shape": shape, "datatype": datatype, "data": flat}]}


def test_onnx_predicts_over_oip_and_mlflow_bodies(onnx_classifier: RunningServer) -> None:
    response = httpx.post(
        f"{onnx_classifier.endpoint}/v2/models/iris/infer", json=matrix([SETOSA, VIRGINICA])
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [0, 2]
    # MLflow bodies carry JSON numbers; the rows go to the graph as float32.
    assert predictions(onnx_classifier, {"instances": [SETOSA, VIRGINICA]}) == [0, 2]


def test_onnx_signature_comes_from_the_graph(onnx_classifier: RunningServer) -> None:
    metadata = httpx.get(f"{onnx_classifier.endpoint}/v2/models/iris").json()
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert "onnxruntime" in metadata["runtime"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (matrix([SETOSA], "FP64"), "inputs[0].datatype: expected FP32, got FP64"),
        (matrix([SETOSA[:3]]), "inputs[0].shape: expected [n, 4], got [1, 3]"),
        (
            {"instances": [[1.0, 2.0, "x", 4.0]]},
            "instances[0][2]: expected a number (FP32), got 'x'",
        ),
    ],
)
def test_onnx_input_that_does_not_fit_is_422(
    onnx_classifier: RunningServer, body: Any, message: str
) -> None:
    path = "/v2/models/iris/infer" if "inputs" in body else "/invocations"
    response = httpx.post(onnx_classifier.endpoint + path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == message


def test_onnx_with_one_input_per_feature_takes_named_columns(
    serve: Any, loaders_env: PythonEnv, onnx_dir: Path
) -> None:
    server = serve(
        spec_for(onnx_dir, {"format": "onnx", "path": "adder.onnx"}, python=loaders_env.python)
    )
    body = {"dataframe_records": [{"b": 2.0, "a": 1.0}, {"a": 0.5, "b": 0.25}]}
    assert predictions(server, body) == [[3.0], [0.75]]
    columns = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 0.5]},
            {"name": "b", "shape": [2], "datatype": "FP64", "data": [2.0, 0.25]},
        ]
    }
    assert metadata_then_infer(server, columns) == [  # the graph's [None, 1] output
        {"name": "predict", "datatype": "FP64", "shape": [-1, 1]}
    ]
    response = httpx.post(f"{server.endpoint}/invocations", json={"dataframe_records": [{"a": 1}]})
    assert response.status_code == 422
    assert response.json()["error"] == "dataframe_records[0]: missing feature b"


# --- MLflow pyfunc -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_dir(loaders_env: PythonEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlflow-model")
    run_script(loaders_env.python, SAVE_MLFLOW, out)
    return out


def test_mlflow_pyfunc_serves_with_its_signature(
    serve: Any, loaders_env: PythonEnv, mlflow_dir: Path
) -> None:
    # Saved with skops (MLflow's default for scikit-learn): no pickle, no signature needed.
    server = serve(
        spec_for(mlflow_dir, {"format": "mlflow", "path": "pyfunc"}, python=loaders_env.python)
    )
    assert predictions(server) == ["setosa", "virginica"]
    assert metadata_then_infer(server, ROWS) == [  # the signature's outputs: strings
        {"name": "predict", "datatype": "BYTES", "shape": [-1]}
    ]
    metadata = httpx.get(f"{server.endpoint}/v2/models/iris").json()
    assert metadata["platform"] == "mlflow_python_function_sklearn"
    assert [column["name"] for column in metadata["inputs"]] == FEATURES
    assert {column["datatype"] for column in metadata["inputs"]} == {"FP64"}
    short = {"dataframe_split": {"columns": FEATURES[1:], "data": [SETOSA[1:]]}}
    response = httpx.post(f"{server.endpoint}/invocations", json=short)
    assert response.status_code == 422
    assert response.json()["error"] == "dataframe_split.columns: missing feature sepal_length"


def test_mlflow_model_saved_with_pickle_needs_a_signed_artifact(
    runtime: LocalRuntime, loaders_env: PythonEnv, mlflow_dir: Path
) -> None:
    spec = spec_for(mlflow_dir, {"format": "mlflow", "path": "pickled"}, python=loaders_env.python)
    with pytest.raises(RuntimeFailure) as failure:
        runtime.start_server(spec, ready_timeout=60)
    assert "refusing to load pickled (an MLflow model saved with pickle" in failure.value.message
    # With --allow-pickle it takes the loader path of the test above (not started again here:
    # importing mlflow is most of a minute's test time on a busy machine).


def test_warm_up_example_that_does_not_fit_stops_the_start(
    runtime: LocalRuntime, iris_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "model.skops").write_bytes((iris_model_dir / "model.skops").read_bytes())
    (tmp_path / "input_example.json").write_text(json.dumps([[1.0, 2.0]]))
    with pytest.raises(RuntimeFailure) as failure:
        runtime.start_server(spec_for(tmp_path, {"format": "skops", "path": "model.skops"}))
    message = failure.value.message
    assert "exited with code 3" in message
    assert "input_example.json does not fit the model: input_example.json[0]: expected 4" in message


# --- OIP metadata: the outputs /infer really returns, for every loader -----------------------------


def metadata_then_infer(server: RunningServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The metadata's outputs, checked against an /infer response's: name, datatype, rank."""
    declared = httpx.get(f"{server.endpoint}/v2/models/iris").json()["outputs"]
    response = httpx.post(f"{server.endpoint}/v2/models/iris/infer", json=body)
    assert response.status_code == 200, response.text
    returned = response.json()["outputs"]
    assert [(o["name"], o["datatype"], len(o["shape"])) for o in declared] == [
        (o["name"], o["datatype"], len(o["shape"])) for o in returned
    ]
    return declared


ROWS = matrix([SETOSA, VIRGINICA], "FP64")


def test_skops_and_class_metadata_say_bytes_for_string_labels(
    skops_server: RunningServer, iris_server: RunningServer
) -> None:
    for server in (skops_server, iris_server):
        assert metadata_then_infer(server, ROWS) == [
            {"name": "predict", "datatype": "BYTES", "shape": [-1]}
        ]


@pytest.mark.parametrize(("fmt", "file"), [("pickle", "model.pkl"), ("joblib", "model.joblib")])
def test_pickle_formats_metadata_is_what_infer_returns(
    serve: Any, pickled_dir: Path, fmt: str, file: str
) -> None:
    server = serve(spec_for(pickled_dir, {"format": fmt, "path": file}, allow_pickle=True))
    assert metadata_then_infer(server, ROWS)[0]["datatype"] == "BYTES"


def test_a_classifier_with_int_labels_says_int64_without_an_example(
    serve: Any, own_function_dir: Path
) -> None:
    loader = {"format": "skops", "path": "model.skops", "trusted": ["project_features.doubled"]}
    server = serve(spec_for(own_function_dir, loader))
    assert not (own_function_dir / "input_example.json").exists()  # declared by classes_
    assert metadata_then_infer(server, ROWS) == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]}
    ]


def test_a_regressor_says_fp64(serve: Any, tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LinearRegression

    rows = [SETOSA, VIRGINICA, [5.9, 3.0, 4.2, 1.5]]
    model = LinearRegression().fit(rows, [0, 2, 1])  # integer targets, float predictions
    sio.dump(model, tmp_path / "model.skops")
    (tmp_path / "input_example.json").write_text(json.dumps([SETOSA]))
    server = serve(spec_for(tmp_path, {"format": "skops", "path": "model.skops"}))
    assert metadata_then_infer(server, ROWS) == [
        {"name": "predict", "datatype": "FP64", "shape": [-1]}
    ]


PROBABILITIES = """
class Probabilities:
    def __init__(self, model_dir):
        pass

    def predict(self, records):
        return [[0.7, 0.2, 0.1] for _ in records]
"""


def test_a_class_without_an_example_declares_its_outputs_at_its_first_prediction(
    serve: Any, tmp_path: Path
) -> None:
    (tmp_path / "probabilities.py").write_text(PROBABILITIES)
    server = serve(spec_for(tmp_path, "probabilities:Probabilities"))
    before = httpx.get(f"{server.endpoint}/v2/models/iris").json()["outputs"]
    assert before == []  # nothing known yet: no declaration, no example, no prediction
    response = httpx.post(f"{server.endpoint}/invocations", json={"instances": [SETOSA]})
    assert response.status_code == 200
    assert metadata_then_infer(server, ROWS) == [
        {"name": "predict", "datatype": "FP64", "shape": [-1, 3]}
    ]


def test_onnx_metadata_comes_from_the_graphs_output(onnx_classifier: RunningServer) -> None:
    assert metadata_then_infer(onnx_classifier, matrix([SETOSA, VIRGINICA])) == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]}
    ]
