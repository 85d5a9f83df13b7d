"""The ``data:`` rules of shipyard.yaml as a pandera schema, and its failures as sentences.

pandera finds the failures; this module only words them, one sentence per column and rule,
naming the file, the column, the rule and the first offending value with its row (rows count
from 1 after a CSV's header), e.g. ``data/train.csv: column petal_width: value 42.0 is above
max 10 (row 17)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shipyard.config.schema import ColumnRule, DataConfig

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

# The pandas dtype each declared dtype is coerced to: a CSV column of whole numbers is a valid
# float column, and "Int64" / "boolean" allow the gaps of a column that is not `not_null`.
PANDAS_DTYPES = {"float": "float64", "int": "Int64", "str": "str", "bool": "boolean"}
ROWS_RULE = "rows.min"
BOOL_TEXT = ("true", "false")  # how pandas writes booleans to CSV, in any case


def data_schema(config: DataConfig) -> pa.DataFrameSchema:
    import pandera.pandas as pa

    columns = {name: _column(rule) for name, rule in config.columns.items()}
    if config.label is not None and config.label not in columns:
        columns[config.label] = pa.Column(None, nullable=True)  # the label must exist
    rows = config.rows
    checks = [pa.Check(lambda frame: len(frame) >= rows.min, error=ROWS_RULE)] if rows else []
    return pa.DataFrameSchema(columns, checks=checks)


def _column(rule: ColumnRule) -> pa.Column:
    import pandera.pandas as pa

    dtype = rule.dtype or ("float" if rule.min is not None or rule.max is not None else None)
    checks = []
    if rule.min is not None:
        checks.append(pa.Check.ge(rule.min, error="min"))
    if rule.max is not None:
        checks.append(pa.Check.le(rule.max, error="max"))
    if rule.allowed is not None:
        checks.append(pa.Check.isin(rule.allowed, error="allowed"))
    return pa.Column(
        PANDAS_DTYPES[dtype] if dtype else None,
        checks=checks,
        nullable=not rule.not_null,
        coerce=dtype not in (None, "str"),
    )


def check_frame(frame: pd.DataFrame, config: DataConfig, name: str) -> list[str]:
    """One sentence per failed rule of ``config`` in ``frame`` (the file ``name``)."""
    import pandera.pandas as pa

    try:
        data_schema(config).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return list(_sentences(exc.failure_cases, frame, config, name))
    return []


def _sentences(
    failures: pd.DataFrame, frame: pd.DataFrame, config: DataConfig, name: str
) -> Iterator[str]:
    retyped: set[str] = set()
    for (column, check), cases in failures.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":
            for missing in cases["failure_case"]:
                yield f"{name}: column {missing} is missing"
        elif check == ROWS_RULE:
            yield f"{name}: {len(frame)} rows, fewer than rows.min {_rows_min(config)}"
        elif str(check).startswith(("dtype(", "coerce_dtype(")):
            if column not in retyped:
                retyped.add(str(column))
                yield _wrong_type(frame[column], _rule(config, column), name, str(column))
        elif column not in retyped:  # a column of the wrong type fails its other checks too
            yield f"{name}: column {column}: {_broken(str(check), cases, _rule(config, column))}"


def _rule(config: DataConfig, column: Any) -> ColumnRule:
    return config.columns.get(str(column)) or ColumnRule()


def _rows_min(config: DataConfig) -> int:
    return config.rows.min if config.rows else 0


def _broken(check: str, cases: pd.DataFrame, rule: ColumnRule) -> str:
    first = cases.iloc[0]
    where = _rows(cases)
    value = _shown(first["failure_case"])
    if check == "min":
        return f"value {value} is below min {_limit(rule.min)}{where}"
    if check == "max":
        return f"value {value} is above max {_limit(rule.max)}{where}"
    if check == "allowed":
        allowed = ", ".join(_shown(item) for item in rule.allowed or [])
        return f"value {value} is not one of the allowed values ({allowed}){where}"
    if check == "not_nullable":
        return f"a value is missing, and not_null is set{where}"
    return f"failed {check} with {value}{where}"


def _limit(number: float | None) -> str:
    """A limit as written: 10 for 10.0, 1000000 rather than 1e+06."""
    return str(int(number)) if number is not None and number.is_integer() else str(number)


def _wrong_type(series: pd.Series, rule: ColumnRule, name: str, column: str) -> str:
    expected = rule.dtype or "float"
    misfits = series[_misfits(series, expected)]
    if not len(misfits):  # the whole column has another type (Parquet keeps types)
        return f"{name}: column {column}: expected {expected}, found {series.dtype}"
    value = misfits.iloc[0]
    more = _more(len(misfits) - 1)
    row = _row_number(misfits.index[0])
    return (
        f"{name}: column {column}: expected {expected}, found {_type_word(value)} "
        f"({_shown(value)}, row {row}{more})"
    )


def _misfits(series: pd.Series, expected: str) -> pd.Series:
    """Where a value cannot be of the ``expected`` dtype (gaps are the `not_null` rule's)."""
    import pandas as pd

    present = series.notna()
    if expected == "str":
        return present & ~series.map(lambda v: isinstance(v, str))
    if expected == "bool":
        return present & ~series.map(lambda v: _type_word(v) == "bool")
    numbers = pd.to_numeric(series, errors="coerce")
    unreadable = present & numbers.isna()
    if expected == "int":
        return unreadable | (numbers.notna() & (numbers % 1 != 0))
    return unreadable


def _rows(cases: pd.DataFrame) -> str:
    index = cases["index"].dropna()
    if not len(index):
        return ""
    more = _more(len(index) - 1)
    return f" (row {_row_number(index.iloc[0])}{more})"


def _more(count: int) -> str:
    return "" if count < 1 else f"; {count} more row{'s' if count > 1 else ''}"


def _row_number(index: Any) -> int:
    return int(index) + 1


def _type_word(value: Any) -> str:
    """What a value is; for text (all of a CSV is text), what it reads as."""
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in BOOL_TEXT):
        return "bool"
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return "str"
        return "int" if number.is_integer() else "float"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return "float"
    if isinstance(value, int) or type(value).__name__.startswith("int"):
        return "int"
    return type(value).__name__


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return str(value)
