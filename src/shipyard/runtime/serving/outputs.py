"""What the model returns, declared once: the OIP metadata's ``outputs`` and every ``/infer``
response's tensors come from the same :class:`Outputs`, so the two cannot disagree.

Where the declaration comes from, most trusted first:

1. the model's own: an ONNX graph's first output (element type, rank), an MLflow signature's
   outputs, a scikit-learn classifier's ``classes_`` (what ``predict`` returns);
2. a probe: the warm-up prediction on ``input_example.json`` (numpy's dtype when the model
   returns an array, else the JSON values);
3. for a model with neither, its first prediction (until then the metadata lists no outputs).

A prediction that does not fit the declaration (a string where FP64 was declared, a row of 3
where [-1, 2] was) is the model's bug: a 500 that names the value, never a response that
contradicts the metadata. Predictions that are one mapping per input (an MLflow model returning
a DataFrame of several columns) are one tensor per key, as the protocol has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import OutputMismatch
from .protocol import FLOATS, INTEGERS

PREDICT = "predict"  # the tensor of a model that returns one value (or one row) per input
NUMPY_KINDS = {"f": "FP", "i": "INT", "u": "UINT"}


@dataclass(frozen=True)
class Output:
    name: str
    datatype: str  # an OIP datatype
    width: int | None = None  # None: one value per input, shape [-1]; k: k values, [-1, k]

    def metadata(self) -> dict[str, Any]:
        shape = [-1] if self.width is None else [-1, self.width]
        return {"name": self.name, "datatype": self.datatype, "shape": shape}

    def tensor(self, values: list[Any]) -> dict[str, Any]:
        """The response tensor of ``values`` (one per input); OutputMismatch if one does not fit."""
        shape = [len(values)] if self.width is None else [len(values), self.width]
        data = [self.checked(value, f"{self.name}[{i}]") for i, value in enumerate(values)]
        flat = data if self.width is None else [item for row in data for item in row]
        return {"name": self.name, "shape": shape, "datatype": self.datatype, "data": flat}

    def checked(self, value: Any, where: str) -> Any:
        if self.width is None:
            return self.scalar(value, where)
        if not isinstance(value, list) or len(value) != self.width:
            raise mismatch(where, value, f"a row of {self.width} {self.datatype} values")
        return [self.scalar(item, f"{where}[{j}]") for j, item in enumerate(value)]

    def scalar(self, value: Any, where: str) -> Any:
        if fits(value, self.datatype):
            return float(value) if self.datatype in FLOATS and value is not None else value
        raise mismatch(where, value, self.datatype)


@dataclass(frozen=True)
class Outputs:
    tensors: tuple[Output, ...]
    keyed: bool = False  # each prediction is a mapping; each key is one tensor

    def metadata(self) -> list[dict[str, Any]]:
        return [tensor.metadata() for tensor in self.tensors]

    def encode(self, values: list[Any]) -> list[dict[str, Any]]:
        """The ``outputs`` of an OIP response for ``values``, one prediction per input."""
        if not self.keyed:
            return [self.tensors[0].tensor(values)]
        for i, value in enumerate(values):
            missing = [
                t.name
                for t in self.tensors
                if not isinstance(value, Mapping) or t.name not in value
            ]
            if missing:
                raise mismatch(f"prediction {i}", value, f"a mapping with {', '.join(missing)}")
        return [tensor.tensor([value[tensor.name] for value in values]) for tensor in self.tensors]


def single(datatype: str, width: int | None = None) -> Outputs:
    return Outputs((Output(PREDICT, datatype, width),))


def keyed(datatypes: Mapping[str, str]) -> Outputs:
    return Outputs(tuple(Output(name, datatype) for name, datatype in datatypes.items()), True)


# --- the probe: outputs from a prediction ---------------------------------------------------------


def settle(declared: Outputs | None, raw: Any, values: list[Any]) -> Outputs | None:
    """The outputs after a prediction: the declared ones, which ``values`` must fit (else
    OutputMismatch), or those the prediction shows."""
    if declared is None:
        return probe(raw, values)
    declared.encode(values)
    return declared


def probe(raw: Any, values: list[Any]) -> Outputs | None:
    """What ``values`` (``raw`` as JSON values) declare; None when they make no tensor."""
    if not values:
        return None
    if all(isinstance(value, Mapping) for value in values):
        names = list(values[0])
        columns = {name: [value.get(name) for value in values] for name in names}
        tensors = [column_output(name, column) for name, column in columns.items()]
        found = [tensor for tensor in tensors if tensor is not None]
        return Outputs(tuple(found), True) if len(found) == len(tensors) else None
    dtype = getattr(raw, "dtype", None)
    declared = numpy_datatype(dtype) if dtype is not None else None
    output = column_output(PREDICT, values, declared)
    return Outputs((output,)) if output is not None else None


def column_output(name: str, values: list[Any], datatype: str | None = None) -> Output | None:
    width = row_width(values)
    if width is None and any(isinstance(value, list) for value in values):
        return None  # rows of different lengths, or lists mixed with scalars: not a tensor
    flat = values if width is None else [item for row in values for item in row]
    chosen = datatype or datatype_of(flat)
    return Output(name, chosen, width) if chosen is not None else None


def row_width(values: list[Any]) -> int | None:
    if not values or not all(isinstance(value, list) for value in values):
        return None
    widths = {len(value) for value in values}
    return widths.pop() if len(widths) == 1 else None


def datatype_of(values: Sequence[Any]) -> str | None:
    """The narrowest OIP datatype every value fits (nulls are missing numbers)."""
    for datatype in ("BOOL", "INT64", "FP64", "BYTES"):
        if all(fits(value, datatype) for value in values):
            return datatype if any(value is not None for value in values) else "FP64"
    return None


def fits(value: Any, datatype: str) -> bool:
    if datatype in FLOATS:  # JSON has no NaN: a missing number is null
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    if datatype in INTEGERS:
        return isinstance(value, int) and not isinstance(value, bool)
    if datatype == "BOOL":
        return isinstance(value, bool)
    return isinstance(value, str)  # BYTES


def numpy_datatype(dtype: Any) -> str | None:
    """A numpy dtype's OIP datatype; None for object arrays (their values decide)."""
    kind = getattr(dtype, "kind", "")
    if kind in NUMPY_KINDS:
        return f"{NUMPY_KINDS[kind]}{dtype.itemsize * 8}"
    return {"b": "BOOL", "U": "BYTES", "S": "BYTES"}.get(kind)


def mismatch(where: str, value: Any, expected: str) -> OutputMismatch:
    text = repr(value)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return OutputMismatch(
        f"the model returned {shown} at {where}, but its metadata declares {expected}"
    )
