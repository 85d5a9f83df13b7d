"""Request bodies to tables, and predictions back to JSON.

Every accepted body becomes one of three tables, each able to name its own fields, so a 400
(malformed) or 422 (does not fit the model) says exactly where the problem is:

* :class:`Records`: one mapping per row (``dataframe_records``; ``instances``/``inputs`` as a
  list of objects).
* :class:`Columns`: named columns of equal length (``dataframe_split``, ``inputs`` as an
  object of columns, CSV, OIP with one tensor per column).
* :class:`Rows`: positional rows (``instances`` as lists, OIP with one ``[n, k]`` tensor).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from .errors import HTTPError

# No tensor holds more values than a body within the size limit; the bound keeps math.prod small.
MAX_DIMENSION = 10 * 1024 * 1024
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
FLOATS = frozenset({"FP16", "FP32", "FP64"})
INTEGERS = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
OIP_DATATYPES = FLOATS | INTEGERS | {"BOOL", "BYTES"}


@dataclass(frozen=True)
class Records:
    rows: list[Mapping[str, Any]]
    where: str  # "dataframe_records": row i is "dataframe_records[i]"

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Columns:
    names: list[str]
    rows: list[list[Any]]  # values in ``names`` order
    names_at: str  # where the names are: "dataframe_split.columns"
    cell_at: Callable[[int, int], str]  # row i, column j: "dataframe_split.data[i][j]"
    datatypes: list[str] | None = None  # OIP only: the datatype each tensor declares
    datatype_at: Callable[[int], str] | None = None

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Rows:
    rows: list[Any]  # a list of values per row, or one scalar per row
    where: str  # row i is f"{where}[{i}]"
    datatype: str | None = None  # OIP only: the tensor's declared datatype
    datatype_at: str = ""
    width_at: str = ""  # where the row width is declared (an OIP shape), if anywhere

    def __len__(self) -> int:
        return len(self.rows)


Table = Records | Columns | Rows


# --- MLflow scoring ----------------------------------------------------------------------------


def mlflow_table(body: Any) -> Table:
    present = [key for key in MLFLOW_FORMATS if isinstance(body, Mapping) and key in body]
    if len(present) != 1:
        expected = ", ".join(MLFLOW_FORMATS)
        raise HTTPError(400, f"the body must be a JSON object with exactly one of: {expected}")
    key = present[0]
    if key == "dataframe_split":
        return dataframe_split(body[key])
    if key == "dataframe_records":
        return dataframe_records(body[key])
    return instances_or_inputs(body[key], key)


def dataframe_split(value: Any) -> Table:
    if not isinstance(value, Mapping):
        raise HTTPError(400, 'dataframe_split must be an object {"columns": [...], "data": [...]}')
    rows = value.get("data")
    if not isinstance(rows, list):
        raise HTTPError(400, "dataframe_split.data must be a list of rows")
    columns = value.get("columns")
    if columns is None:
        return Rows(rows, "dataframe_split.data")
    return split_columns(columns, rows, "dataframe_split")


def split_columns(columns: Any, rows: list[Any], where: str) -> Columns:
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
    return Columns(columns, rows, f"{where}.columns", lambda i, j: f"{where}.data[{i}][{j}]")


def dataframe_records(value: Any) -> Records:
    if not isinstance(value, list):
        raise HTTPError(400, "dataframe_records must be a list of objects")
    for index, record in enumerate(value):
        if not isinstance(record, Mapping):
            raise HTTPError(400, f"dataframe_records[{index}] is not an object")
    return Records(value, "dataframe_records")


def instances_or_inputs(value: Any, where: str) -> Table:
    if isinstance(value, Mapping):
        return columns_object(value, where)
    if not isinstance(value, list):
        raise HTTPError(400, f"{where} must be a list of records or an object of columns")
    if value and all(isinstance(item, Mapping) for item in value):
        return Records(value, where)
    if any(isinstance(item, Mapping) for item in value):
        raise HTTPError(400, f"{where} mixes objects with other values; use one kind of row")
    return Rows(value, where)


def columns_object(columns: Mapping[str, Any], where: str) -> Columns:
    if not columns:
        raise HTTPError(400, f"{where} must be a non-empty object of columns")
    lengths: dict[str, int] = {}
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
    rows = [list(row) for row in zip(*columns.values(), strict=True)]
    return Columns(names, rows, where, lambda i, j: f"{where}.{names[j]}[{i}]")


def csv_table(text: str) -> Columns:
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # a field over csv's limit (128 KiB), a NUL byte...
        raise HTTPError(400, f"the CSV body cannot be read: {exc}") from None
    if not lines:
        raise HTTPError(400, "the CSV body is empty; it needs a header row")
    header = lines[0]
    rows = [[number_or_text(cell) for cell in line] for line in lines[1:]]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise HTTPError(400, f"csv row {i + 1} has {len(row)} values, not {len(header)}")
        for j, value in enumerate(row):
            if value is INFINITE:
                cell = lines[i + 1][j]
                raise HTTPError(
                    422, f"csv row {i + 1}, {header[j]}: {cell!r} is not a finite number"
                )
    return Columns(header, rows, "csv header", lambda i, j: f"csv row {i + 1}, {header[j]}")


INFINITE = object()  # a cell float() reads as infinity: "inf", "1e400"


def number_or_text(cell: str) -> Any:
    """A number when the cell is one ("nan" is a missing value, as in pandas), else the text."""
    try:
        number = float(cell)
    except ValueError:
        return cell
    return INFINITE if math.isinf(number) else number


# --- Open Inference Protocol ------------------------------------------------------------------


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]  # row-major, flattened


def parse_tensor(tensor: Any, index: int) -> Tensor:
    """One OIP input tensor, its data checked against its shape."""
    if not isinstance(tensor, Mapping):
        raise HTTPError(400, f"inputs[{index}] must be an object with name, shape, datatype, data")
    name, shape, data = tensor.get("name"), tensor.get("shape"), tensor.get("data")
    datatype = tensor.get("datatype")
    if not isinstance(name, str):
        raise HTTPError(400, f"inputs[{index}].name must be a string")
    if not isinstance(datatype, str) or datatype.upper() not in OIP_DATATYPES:
        known = ", ".join(sorted(OIP_DATATYPES))
        raise HTTPError(422, f"inputs[{index}].datatype: expected one of {known}, got {datatype!r}")
    if not is_shape(shape):
        raise HTTPError(400, f"inputs[{index}].shape must be [n] or [n, k] (non-negative integers)")
    if not isinstance(data, list):
        raise HTTPError(400, f"inputs[{index}].data must be a list")
    flat = flatten(data)
    if len(flat) != math.prod(shape):
        raise HTTPError(400, f"inputs[{index}] ({name}) has {len(flat)} values but shape {shape}")
    return Tensor(name, shape, datatype.upper(), flat)


def is_shape(shape: Any) -> TypeGuard[list[int]]:
    return (
        isinstance(shape, list)
        and len(shape) in (1, 2)
        and all(type(n) is int and 0 <= n <= MAX_DIMENSION for n in shape)
    )


def flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(item, list) for item in data):
        return data
    return [leaf for item in data for leaf in (flatten(item) if isinstance(item, list) else [item])]


def oip_table(body: Any) -> Table:
    """A single ``[n, k]`` tensor gives n positional rows; otherwise each tensor is a column."""
    inputs = body.get("inputs") if isinstance(body, Mapping) else None
    if not isinstance(inputs, list) or not inputs:
        raise HTTPError(400, "inputs must be a non-empty list of tensors")
    tensors = [parse_tensor(tensor, index) for index, tensor in enumerate(inputs)]
    first = tensors[0]
    if len(tensors) == 1 and len(first.shape) == 2 and first.shape[1] > 1:
        (count, width), flat = first.shape, first.data
        rows = [flat[row * width : (row + 1) * width] for row in range(count)]
        return Rows(rows, "inputs[0].data", first.datatype, "inputs[0].datatype", "inputs[0].shape")
    count = first.shape[0]
    for index, tensor in enumerate(tensors):
        if tensor.shape not in ([count], [count, 1]):
            raise HTTPError(
                400, f"inputs[{index}] ({tensor.name}) has shape {tensor.shape}, not [{count}]"
            )
    names = [tensor.name for tensor in tensors]
    rows = [list(row) for row in zip(*(tensor.data for tensor in tensors), strict=True)]
    return Columns(
        names,
        rows,
        "inputs",
        lambda i, j: f"inputs[{j}].data[{i}]",
        [tensor.datatype for tensor in tensors],
        lambda j: f"inputs[{j}].datatype",
    )


# --- predictions --------------------------------------------------------------------------------


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
