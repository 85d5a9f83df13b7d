"""The model server's output declaration: what metadata lists is what /infer encodes.

In process, on the functions the loaders and the app share (``serving/outputs.py``) and on
real estimators; the loaders' servers are driven for real in test_loaders.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.runtime.serving.errors import OutputMismatch
from shipyard.runtime.serving.loaders import estimator_outputs, mlflow_outputs, onnx_outputs
from shipyard.runtime.serving.outputs import Outputs, probe, settle, single
from shipyard.runtime.serving.protocol import to_json_values


def ranks(outputs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(o["name"], o["datatype"], len(o["shape"])) for o in outputs]


def declared_and_encoded(raw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    values = to_json_values(raw)
    found = probe(raw, values)
    assert found is not None
    return found.metadata(), found.encode(values)


@pytest.mark.parametrize(
    ("raw", "datatype", "shape"),
    [
        (np.array(["setosa", "virginica"], dtype=object), "BYTES", [-1]),
        (np.array([1.5, 2.0]), "FP64", [-1]),
        (np.array([1.5, 2.0], dtype=np.float32), "FP32", [-1]),
        (np.array([0, 2]), "INT64", [-1]),
        (np.array([[0.1, 0.9], [0.8, 0.2]]), "FP64", [-1, 2]),
        (np.array([True, False]), "BOOL", [-1]),
        ([3, 4.5, None], "FP64", [-1]),  # a class's plain list; null is a missing number
        (["a", "b"], "BYTES", [-1]),
    ],
)
def test_a_probe_declares_what_the_encoder_then_carries(
    raw: Any, datatype: str, shape: list[int]
) -> None:
    metadata, encoded = declared_and_encoded(raw)
    assert metadata == [{"name": "predict", "datatype": datatype, "shape": shape}]
    assert ranks(metadata) == ranks(encoded)
    assert encoded[0]["shape"][0] == len(raw)


def test_records_are_one_tensor_per_key() -> None:
    values = [{"label": "a", "score": 0.9}, {"label": "b", "score": 0.4}]
    metadata, encoded = declared_and_encoded(values)
    assert metadata == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "score", "datatype": "FP64", "shape": [-1]},
    ]
    assert [tensor["data"] for tensor in encoded] == [["a", "b"], [0.9, 0.4]]


def test_an_int_where_fp64_is_declared_is_sent_as_a_float() -> None:
    assert single("FP64").encode([1, 2.5])[0]["data"] == [1.0, 2.5]


@pytest.mark.parametrize(
    ("outputs", "values", "message"),
    [
        (
            single("FP64"),
            [1.0, "x"],
            "the model returned 'x' at predict[1], but its metadata declares FP64",
        ),
        (single("INT64"), [1, 2.5], "2.5 at predict[1], but its metadata declares INT64"),
        (single("FP64", 2), [[1.0, 2.0], [1.0]], "a row of 2 FP64 values"),
        (single("BYTES"), [{"a": 1}], "at predict[0], but its metadata declares BYTES"),
    ],
)
def test_a_prediction_that_does_not_fit_the_declaration_is_refused(
    outputs: Outputs, values: list[Any], message: str
) -> None:
    with pytest.raises(OutputMismatch, match=message.replace("[", r"\[").replace("]", r"\]")):
        outputs.encode(values)


def test_a_declaration_the_warm_up_contradicts_is_an_error_not_a_guess() -> None:
    with pytest.raises(OutputMismatch):
        settle(single("INT64"), None, ["setosa"])
    assert settle(None, None, ["setosa"]) == single("BYTES")


# -- declared by the model --------------------------------------------------------------------


X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])


@pytest.mark.parametrize(
    ("labels", "datatype"),
    [
        (np.array(["no", "yes", "no", "yes"], dtype=object), "BYTES"),
        (np.array(["no", "yes", "no", "yes"]), "BYTES"),
        (np.array([0, 1, 0, 1]), "INT64"),
        (np.array([False, True, False, True]), "BOOL"),
    ],
)
def test_a_classifier_declares_the_dtype_of_its_classes(labels: Any, datatype: str) -> None:
    model = LogisticRegression().fit(X, labels)
    declared = estimator_outputs(model)
    assert declared == single(datatype)
    raw = model.predict(X)
    declared.encode(to_json_values(raw))  # what predict returns fits
    assert probe(raw, to_json_values(raw)) == declared


def test_a_regressor_declares_nothing_and_is_probed() -> None:
    model = LinearRegression().fit(X, [0.5, 1.0, 2.0, 3.5])
    assert estimator_outputs(model) is None
    raw = model.predict(X)
    assert settle(None, raw, to_json_values(raw)) == single("FP64")


def onnx_node(type_: str, shape: list[Any]) -> SimpleNamespace:
    return SimpleNamespace(name="out", type=type_, shape=shape)


@pytest.mark.parametrize(
    ("node", "declared"),
    [
        (onnx_node("tensor(int64)", [None]), single("INT64")),
        (onnx_node("tensor(double)", [None, 1]), single("FP64", 1)),
        (onnx_node("tensor(float)", ["N", 3]), single("FP32", 3)),
        (onnx_node("tensor(string)", ["N"]), single("BYTES")),
        (onnx_node("tensor(float)", ["N", "K"]), None),  # width unknown: probed
        (onnx_node("seq(map(int64,tensor(float)))", []), None),
    ],
)
def test_onnx_outputs_come_from_the_graph(node: SimpleNamespace, declared: Outputs | None) -> None:
    assert onnx_outputs(node) == declared


def colspec(type_name: str, name: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, type=SimpleNamespace(name=type_name))


def test_mlflow_outputs_come_from_the_signature() -> None:
    assert mlflow_outputs(None) is None
    assert mlflow_outputs(SimpleNamespace(inputs=[colspec("string")])) == single("BYTES")
    assert mlflow_outputs(SimpleNamespace(inputs=[colspec("long")])) == single("INT64")
    two = SimpleNamespace(inputs=[colspec("string", "label"), colspec("double", "score")])
    declared = mlflow_outputs(two)
    assert declared is not None and declared.keyed
    assert declared.metadata() == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "score", "datatype": "FP64", "shape": [-1]},
    ]
    tensor_based = SimpleNamespace(inputs=[SimpleNamespace(name=None, type=np.dtype("float64"))])
    assert mlflow_outputs(tensor_based) is None
