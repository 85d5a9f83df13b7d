"""From a serve spec and a model directory to a :class:`Model`: predict, signature, platform.

``--serve`` is ``module:Class`` (the project's own class, constructed with the model directory)
or a JSON loader spec ``{"format": F, "path": P}``:

==========  ==================================  ===============================================
format      library (from the project's env)    signature from
==========  ==================================  ===============================================
skops       skops, scikit-learn                 ``feature_names_in_`` / ``n_features_in_``
onnx        onnxruntime                         the graph's inputs (names, element types)
mlflow      mlflow (``mlflow-skinny`` will do)  the MLmodel signature; see below
pickle      scikit-learn-like object            as skops; loads only with ``--allow-pickle``
joblib      joblib                              as skops; loads only with ``--allow-pickle``
==========  ==================================  ===============================================

Pickle runs code from the file while it loads, so pickle-based formats (pickle, joblib, and
MLflow models other than scikit-learn saved with skops, MLflow's default since 3.x) load only
when the runtime passes ``--allow-pickle``: it does so for artifacts from the signed
``release`` repository. skops loads only the types skops trusts plus those under ``trusted``.

Libraries are imported here, lazily, so a server only needs the one its format uses. A class
without a model-derived signature may declare ``input_schema`` (a list of names, or a mapping
of name to OIP datatype); otherwise ``input_example.json`` in the model directory defines it.
Last comes ``input_schema.json`` in the model directory (the same mapping, written by the build
from the training data's profile when shipyard.yaml has ``data:``): it is the signature of a
model that names no inputs, and gives the datatypes a model leaves open (see ``completed``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import pickle
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from .errors import HTTPError, LoadError
from .protocol import FLOATS, Table, instances_or_inputs, to_json_values
from .signature import (
    ANY,
    DATATYPES,
    Column,
    Signature,
    Wants,
    completed,
    conform,
    signature_from_example,
)

EXAMPLE_FILE = "input_example.json"
SCHEMA_FILE = "input_schema.json"
ONNX_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
NUMPY_TYPES = {"FP16": "float16", "FP32": "float32", "FP64": "float64", "BOOL": "bool"}
MLFLOW_TYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
}

Predict = Callable[[list[Any]], Any]


@dataclass(frozen=True)
class Model:
    predict: Predict
    signature: Signature | None
    wants: Wants  # what ``predict`` takes: rows in feature order, or records
    platform: str  # OIP metadata "platform"
    runtime: dict[str, str] = field(default_factory=dict)  # library versions, for metadata


def load_model(serve: str, model_dir: Path, *, allow_pickle: bool) -> Model:
    model = load_served(serve, model_dir, allow_pickle=allow_pickle)
    return replace(model, signature=completed(model.signature, schema_signature(model_dir)))


def load_served(serve: str, model_dir: Path, *, allow_pickle: bool) -> Model:
    if not serve.lstrip().startswith("{"):
        return load_class(serve, model_dir)
    spec = json.loads(serve)
    loaders: dict[str, Callable[[Path, Mapping[str, Any]], Model]] = {
        "skops": load_skops,
        "onnx": load_onnx,
        "mlflow": load_mlflow,
        "pickle": load_pickle,
        "joblib": load_joblib,
    }
    fmt = spec.get("format")
    if fmt not in loaders:
        raise LoadError(
            f"unknown model format {fmt!r}; this model server knows: {', '.join(loaders)}"
        )
    if not isinstance(spec.get("path"), str):
        raise LoadError(f'the {fmt} loader needs "path": the model file inside the model directory')
    path = model_dir / spec["path"]
    if not path.exists():
        raise LoadError(f"the model file {spec['path']} is not in the model directory {model_dir}")
    if fmt in ("pickle", "joblib") and not allow_pickle:
        refuse_pickle(spec["path"], fmt)
    if fmt == "mlflow" and not allow_pickle and mlflow_unpickles(path):
        refuse_pickle(spec["path"], "an MLflow model saved with pickle or cloudpickle")
    return loaders[fmt](path, spec)


def refuse_pickle(file: str, what: str) -> NoReturn:
    raise LoadError(
        f"refusing to load {file} ({what}): unpickling runs code from the file, so "
        "pickle-based models load only from a signed release artifact. Promote this version "
        "to the release repository, or save the model with skops or ONNX"
    )


def versions(*distributions: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in distributions:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


# --- the project's own class --------------------------------------------------------------------


def load_class(serve: str, model_dir: Path) -> Model:
    module_name, _, class_name = serve.partition(":")
    if not module_name or not class_name:
        raise LoadError(f"--serve {serve!r} is neither 'module:Class' nor a JSON loader spec")
    instance = getattr(importlib.import_module(module_name), class_name)(str(model_dir))
    declared = getattr(instance, "input_schema", None)
    signature = declared_signature(declared) if declared is not None else None
    return Model(
        instance.predict, signature or example_signature(model_dir), "records", "python", versions()
    )


def declared_signature(schema: Any) -> Signature:
    if isinstance(schema, Mapping):
        bad = {name: dt for name, dt in schema.items() if str(dt).upper() not in DATATYPES}
        if bad:
            raise LoadError(
                f"input_schema has unknown datatypes {bad}; use OIP names such as FP64, INT64, BYTES"
            )
        return Signature.of_names(schema, {str(k): str(v).upper() for k, v in schema.items()})
    if isinstance(schema, list | tuple) and all(isinstance(name, str) for name in schema):
        return Signature.of_names(schema)
    raise LoadError("input_schema must be a list of feature names or a mapping of name to datatype")


def read_example(model_dir: Path) -> Any:
    path = model_dir / EXAMPLE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise LoadError(f"{EXAMPLE_FILE} is not valid JSON: {exc}") from None


def example_signature(model_dir: Path) -> Signature | None:
    return signature_from_example(read_example(model_dir))


def schema_signature(model_dir: Path) -> Signature | None:
    """The signature in ``input_schema.json``: a mapping of feature name to OIP datatype."""
    path = model_dir / SCHEMA_FILE
    if not path.exists():
        return None
    try:
        schema = json.loads(path.read_text())
    except ValueError as exc:
        raise LoadError(f"{SCHEMA_FILE} is not valid JSON: {exc}") from None
    return declared_signature(schema)


# --- scikit-learn: skops, pickle, joblib --------------------------------------------------------


def load_skops(path: Path, spec: Mapping[str, Any]) -> Model:
    sio = importlib.import_module("skops.io")
    untrusted = [str(name) for name in sio.get_untrusted_types(file=path)]
    trusted = [str(name) for name in spec.get("trusted", [])]
    refused = [name for name in untrusted if name not in trusted]
    if refused:
        raise LoadError(
            f"{path.name} holds types skops does not trust: {', '.join(refused)}. If you trust "
            "them, list them under model.serve.trusted in shipyard.yaml"
        )
    estimator = sio.load(path, trusted=untrusted)
    return estimator_model(estimator, path.parent, "sklearn", versions("scikit-learn", "skops"))


def load_pickle(path: Path, spec: Mapping[str, Any]) -> Model:
    with path.open("rb") as file:
        estimator = pickle.load(file)  # only with --allow-pickle: a signed artifact
    return estimator_model(estimator, path.parent, "sklearn", versions("scikit-learn"))


def load_joblib(path: Path, spec: Mapping[str, Any]) -> Model:
    estimator = importlib.import_module("joblib").load(path)
    return estimator_model(estimator, path.parent, "sklearn", versions("scikit-learn", "joblib"))


def estimator_model(
    estimator: Any, model_dir: Path, platform_name: str, runtime: dict[str, str]
) -> Model:
    np = importlib.import_module("numpy")
    signature = estimator_signature(estimator, model_dir)
    frame = frame_maker(signature) if hasattr(estimator, "feature_names_in_") else None
    numeric = signature is None or all(c.datatype in FLOATS for c in signature.columns)

    def predict(rows: list[Any]) -> Any:
        if frame is not None:
            return estimator.predict(frame(rows))
        return estimator.predict(np.asarray(rows, dtype=np.float64 if numeric else object))

    return Model(predict, signature, "rows", platform_name, runtime)


def estimator_signature(estimator: Any, model_dir: Path) -> Signature | None:
    """Names from the estimator, datatypes from the example where it has them."""
    example = signature_from_example(read_example(model_dir))
    types = {c.name: c.datatype for c in example.columns} if example and example.named else {}
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return Signature.of_names([str(name) for name in names], types)
    width = getattr(estimator, "n_features_in_", None)
    if example is not None and (width is None or example.width == width):
        return example  # fitted on an array: the example, written in feature order, names it
    return Signature.positional(width, "FP64") if isinstance(width, int) else None


def frame_maker(signature: Signature | None) -> Callable[[list[Any]], Any] | None:
    """A pandas DataFrame builder for estimators fitted on one (column transformers need it)."""
    try:
        pandas = importlib.import_module("pandas")
    except ImportError:
        return None
    names = [column.name for column in signature.columns] if signature else None
    return lambda rows: pandas.DataFrame(rows, columns=names)


# --- ONNX ---------------------------------------------------------------------------------------


def load_onnx(path: Path, spec: Mapping[str, Any]) -> Model:
    ort = importlib.import_module("onnxruntime")
    np = importlib.import_module("numpy")
    options = ort.SessionOptions()
    # One thread per session: parallelism comes from workers and batching, and a thread pool
    # per worker would oversubscribe the cores.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    output = session.get_outputs()[0].name
    signature = onnx_signature(inputs, path.name)
    dtypes = [
        np.dtype(
            NUMPY_TYPES.get(c.datatype, c.datatype.lower()) if c.datatype != "BYTES" else object
        )
        for c in signature.columns
    ]

    if not signature.named:
        name, dtype = inputs[0].name, dtypes[0]

        def predict(rows: list[Any]) -> Any:
            return session.run([output], {name: np.asarray(rows, dtype=dtype)})[0]
    else:
        shapes = [(-1, 1) if len(i.shape) == 2 else (-1,) for i in inputs]

        def predict(rows: list[Any]) -> Any:
            feeds = {
                i.name: np.asarray([row[j] for row in rows], dtype=dtypes[j]).reshape(shapes[j])
                for j, i in enumerate(inputs)
            }
            return session.run([output], feeds)[0]

    return Model(predict, signature, "rows", "onnxruntime_onnx", versions("onnxruntime"))


def onnx_signature(inputs: list[Any], file: str) -> Signature:
    def datatype(node: Any) -> str:
        if node.type not in ONNX_TYPES:
            raise LoadError(
                f"{file}: input {node.name} has type {node.type}, which JSON cannot carry"
            )
        return ONNX_TYPES[node.type]

    first = inputs[0]
    if (
        len(inputs) == 1
        and len(first.shape) == 2
        and isinstance(first.shape[1], int)
        and first.shape[1] > 1
    ):
        return Signature.positional(first.shape[1], datatype(first), exact=True)
    for node in inputs:
        if len(node.shape) not in (1, 2) or (len(node.shape) == 2 and node.shape[1] != 1):
            raise LoadError(
                f"{file}: input {node.name} has shape {node.shape}; the model server serves one "
                "[n, k] input, or one [n] or [n, 1] input per feature"
            )
    return Signature(tuple(Column(node.name, datatype(node)) for node in inputs), True, exact=True)


# --- MLflow pyfunc ------------------------------------------------------------------------------


def load_mlflow(path: Path, spec: Mapping[str, Any]) -> Model:
    if not (path / "MLmodel").exists():
        raise LoadError(f"{spec['path']} is not an MLflow model directory: it has no MLmodel file")
    pyfunc = importlib.import_module("mlflow.pyfunc")
    pandas = importlib.import_module("pandas")
    model = pyfunc.load_model(str(path))
    signature = mlflow_signature(model.metadata.get_input_schema())
    names = [column.name for column in signature.columns] if signature else None

    def predict(batch: list[Any]) -> Any:
        return plain_outputs(model.predict(pandas.DataFrame(batch, columns=names)))

    wants: Wants = "rows" if signature else "records"
    flavors = list(model.metadata.flavors)
    runtime = versions("mlflow", "mlflow-skinny", "scikit-learn")
    return Model(predict, signature, wants, f"mlflow_{'_'.join(flavors)}", runtime)


def mlflow_unpickles(path: Path) -> bool:
    """Whether loading runs pickle: true unless it is a scikit-learn model saved with skops."""
    if not (path / "MLmodel").exists():
        return False  # load_mlflow says what is wrong
    # PyYAML comes with mlflow; reading the file is much faster than importing mlflow.
    mlmodel = importlib.import_module("yaml").safe_load((path / "MLmodel").read_text())
    flavors = mlmodel.get("flavors", {}) if isinstance(mlmodel, dict) else {}
    loader = flavors.get("python_function", {}).get("loader_module")
    fmt = flavors.get("sklearn", {}).get("serialization_format")
    return not (loader == "mlflow.sklearn" and fmt == "skops")


def mlflow_signature(schema: Any) -> Signature | None:
    if schema is None or not getattr(schema, "has_input_names", lambda: False)():
        return None
    columns = schema.inputs
    if any(not hasattr(column, "type") or not hasattr(column.type, "name") for column in columns):
        return None  # tensor-based signatures: the model gets the records as they came
    types = {str(c.name): MLFLOW_TYPES.get(str(c.type.name), ANY) for c in columns}
    return Signature.of_names(types, types)


def plain_outputs(outputs: Any) -> Any:
    """A pandas Series or DataFrame as one value (or one record) per input."""
    if hasattr(outputs, "columns"):
        if len(outputs.columns) == 1:
            return outputs.iloc[:, 0].to_numpy()
        return outputs.to_dict(orient="records")
    return outputs.to_numpy() if hasattr(outputs, "to_numpy") else outputs


# --- warm-up ------------------------------------------------------------------------------------


def warm_up(model: Model, model_dir: Path) -> list[Any]:
    """Predict ``input_example.json`` through the same checks as a request; the outputs."""
    records = read_example(model_dir)
    if records is None:
        return []
    try:
        table: Table = instances_or_inputs(records, EXAMPLE_FILE)
        rows = conform(table, model.signature, model.wants)
    except HTTPError as exc:
        raise LoadError(f"{EXAMPLE_FILE} does not fit the model: {exc.message}") from None
    outputs = to_json_values(model.predict(rows))
    if len(outputs) != len(rows):
        raise LoadError(
            f"warm-up: the model returned {len(outputs)} outputs for {len(rows)} inputs"
        )
    return outputs
