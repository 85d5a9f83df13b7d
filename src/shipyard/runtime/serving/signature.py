"""The model's input schema, and requests checked against it.

A signature is derived from the model itself (scikit-learn's ``feature_names_in_`` and
``n_features_in_``, ONNX graph inputs, an MLflow signature), from a project class's
``input_schema``, or from the ``input_example.json`` the model server warms up on. A request
that does not fit gets a 422 naming the field: ``dataframe_split.columns: missing feature
petal_width``, ``inputs[0].datatype: expected FP32, got FP64``. A model with no signature gets
its records as they came, and its own errors are the 422.

Conforming a table also puts it in the model's feature order, so a client may send columns in
any order and extra columns are ignored (as MLflow does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .errors import HTTPError
from .protocol import FLOATS, INTEGERS, OIP_DATATYPES, Columns, Records, Rows, Table

Locate = Callable[[int], str]  # column j of one row -> where it is in the request

ANY = "ANY"  # the model does not say; any JSON value passes
DATATYPES = OIP_DATATYPES | {ANY}

Wants = Literal["rows", "records"]  # lists in feature order, or one mapping per row


@dataclass(frozen=True)
class Column:
    name: str
    datatype: str  # an OIP datatype, or ANY


@dataclass(frozen=True)
class Signature:
    columns: tuple[Column, ...]
    named: bool  # False: the model takes positional values, and names are only for display
    exact: bool = False  # True (ONNX): an OIP tensor must declare exactly the column's datatype

    @classmethod
    def positional(cls, width: int, datatype: str, *, exact: bool = False) -> Signature:
        return cls(tuple(Column(f"x{i}", datatype) for i in range(width)), False, exact)

    @classmethod
    def of_names(
        cls, names: Iterable[str], datatypes: Mapping[str, str] | None = None
    ) -> Signature:
        types = datatypes or {}
        return cls(tuple(Column(str(name), types.get(str(name), ANY)) for name in names), True)

    @property
    def width(self) -> int:
        return len(self.columns)

    def metadata(self) -> list[dict[str, Any]]:
        """The ``inputs`` of OIP model metadata."""
        if self.named:
            return [{"name": c.name, "datatype": c.datatype, "shape": [-1]} for c in self.columns]
        datatypes = {column.datatype for column in self.columns}
        datatype = datatypes.pop() if len(datatypes) == 1 else ANY
        return [{"name": "input", "datatype": datatype, "shape": [-1, self.width]}]


def signature_from_example(records: Any) -> Signature | None:
    """Names and datatypes from the first input of ``input_example.json``."""
    if not isinstance(records, list) or not records:
        return None
    first = records[0]
    if isinstance(first, Mapping):
        return Signature(
            tuple(Column(str(k), datatype_of_value(v)) for k, v in first.items()), True
        )
    if isinstance(first, list):
        return Signature(
            tuple(Column(f"x{i}", datatype_of_value(v)) for i, v in enumerate(first)), False
        )
    return None


def completed(signature: Signature | None, schema: Signature | None) -> Signature | None:
    """The model's own input signature, with ``schema`` (``input_schema.json``, written at
    build from the training data's profile) where the model says nothing: the whole signature
    when the model names no inputs, else the datatypes of the named inputs it leaves ``ANY``."""
    if schema is None or (signature is not None and not signature.named):
        return signature
    if signature is None:
        return schema
    types = {column.name: column.datatype for column in schema.columns}
    columns = tuple(
        Column(c.name, types.get(c.name, ANY) if c.datatype == ANY else c.datatype)
        for c in signature.columns
    )
    return replace(signature, columns=columns)


def datatype_of_value(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int | float):
        return "FP64"
    if isinstance(value, str):
        return "BYTES"
    return ANY


# --- conforming a request ---------------------------------------------------------------------


def conform(table: Table, signature: Signature | None, wants: Wants) -> list[Any]:
    """The rows the model gets; HTTPError 422 naming the first field that does not fit."""
    if not len(table):
        raise HTTPError(400, "the request holds no records to predict")
    if signature is None:
        return as_given(table)
    if isinstance(table, Records):
        rows = records_rows(table, signature)
    elif isinstance(table, Columns):
        rows = columns_rows(table, signature)
    else:
        rows = positional_rows(table, signature)
    if wants == "rows" or not signature.named:  # positional names (x0, x1...) are not the model's
        return rows
    names = [column.name for column in signature.columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


def as_given(table: Table) -> list[Any]:
    if isinstance(table, Columns):
        return [dict(zip(table.names, row, strict=True)) for row in table.rows]
    return list(table.rows)


def records_rows(table: Records, signature: Signature) -> list[list[Any]]:
    rows = []
    wanted = [column.name for column in signature.columns]
    for i, record in enumerate(table.rows):
        where = f"{table.where}[{i}]"
        if signature.named:
            keys = wanted
            for key in keys:
                if key not in record:
                    raise HTTPError(422, f"{where}: missing feature {key}")
        else:  # a positional model takes a record's values in the record's own order
            keys = [str(key) for key in record]
            check_width(len(keys), signature, where)
        values = [record[key] for key in keys]
        rows.append(checked_row(values, signature, field_at(where, keys)))
    return rows


def columns_rows(table: Columns, signature: Signature) -> list[list[Any]]:
    if signature.named:
        index = {name: j for j, name in enumerate(table.names)}
        missing = [c.name for c in signature.columns if c.name not in index]
        if missing:
            raise HTTPError(422, f"{table.names_at}: missing feature {', '.join(missing)}")
        order = [index[column.name] for column in signature.columns]
    else:
        check_width(len(table.names), signature, table.names_at, unit="columns")
        order = list(range(signature.width))
    if table.datatypes is not None and table.datatype_at is not None:
        for column, j in zip(signature.columns, order, strict=True):
            check_datatype(table.datatypes[j], column.datatype, signature, table.datatype_at(j))
    return [
        checked_row([row[j] for j in order], signature, cell_at(table, i, order))
        for i, row in enumerate(table.rows)
    ]


def positional_rows(table: Rows, signature: Signature) -> list[list[Any]]:
    if table.datatype is not None:
        for column in signature.columns:
            check_datatype(table.datatype, column.datatype, signature, table.datatype_at)
    rows = []
    for i, row in enumerate(table.rows):
        where = f"{table.where}[{i}]"
        values = row if isinstance(row, list) else [row]
        if len(values) != signature.width:
            if table.width_at:
                got = f"[{len(table.rows)}, {len(values)}]"
                raise HTTPError(
                    422, f"{table.width_at}: expected [n, {signature.width}], got {got}"
                )
            check_width(len(values), signature, where)
        rows.append(checked_row(values, signature, index_at(where)))
    return rows


def field_at(where: str, keys: list[str]) -> Locate:
    return lambda j: f"{where}.{keys[j]}"


def cell_at(table: Columns, row: int, order: list[int]) -> Locate:
    return lambda j: table.cell_at(row, order[j])


def index_at(where: str) -> Locate:
    return lambda j: f"{where}[{j}]"


def check_width(count: int, signature: Signature, where: str, unit: str = "values") -> None:
    if count != signature.width:
        raise HTTPError(422, f"{where}: expected {signature.width} {unit}, got {count}")


def check_datatype(declared: str, expected: str, signature: Signature, where: str) -> None:
    if expected == ANY or declared == expected:
        return
    if not signature.exact and (
        (expected in FLOATS and declared in FLOATS | INTEGERS)
        or (expected in INTEGERS and declared in INTEGERS)
    ):
        return
    raise HTTPError(422, f"{where}: expected {expected}, got {declared}")


def checked_row(values: list[Any], signature: Signature, at: Locate) -> list[Any]:
    """``values`` with NaN for null floats; 422 at ``at(j)`` for a value of the wrong kind."""
    out = values
    for j, (value, column) in enumerate(zip(values, signature.columns, strict=True)):
        fixed = checked_value(value, column.datatype)
        if fixed is not value:
            if fixed is INVALID:
                raise HTTPError(
                    422, f"{at(j)}: expected {describe(column.datatype)}, got {short(value)}"
                )
            out = out if out is not values else list(values)
            out[j] = fixed
    return out


INVALID = object()


def checked_value(value: Any, datatype: str) -> Any:
    if datatype == ANY:
        return value
    if datatype in FLOATS:
        if isinstance(value, float | int) and not isinstance(value, bool):
            return value
        return math.nan if value is None else INVALID
    if datatype in INTEGERS:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return INVALID
    if datatype == "BOOL":
        return value if isinstance(value, bool) else INVALID
    return value if isinstance(value, str) else INVALID  # BYTES


def describe(datatype: str) -> str:
    if datatype in FLOATS:
        return f"a number ({datatype})"
    if datatype in INTEGERS:
        return f"an integer ({datatype})"
    return {"BOOL": "true or false (BOOL)", "BYTES": "a string (BYTES)"}.get(datatype, datatype)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
