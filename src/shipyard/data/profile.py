"""What a data file holds, as JSON for the build-info: rows, and per column its kind, missing
values, range and histogram (numbers) or category counts (everything else).

Numeric histograms keep their bin edges (the deciles of the values), so that a later build can
count its own values into the same bins and compute the PSI against this profile without the
data it was made from (``drift.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["float", "int", "str", "bool", "other"]
NUMERIC_KINDS: tuple[Kind, ...] = ("float", "int")
NUMERIC_BINS = 10
MAX_CATEGORIES = 50  # the most frequent values kept; the rest are counted as ``other``


class Histogram(TypedDict):
    edges: list[float]  # inner edges: bin i holds edges[i-1] <= x < edges[i], open at both ends
    counts: list[int]  # len(edges) + 1


class ColumnProfile(TypedDict, total=False):
    kind: Kind
    missing: int
    missing_rate: float
    min: float
    max: float
    mean: float
    histogram: Histogram
    categories: dict[str, int]
    other: int  # values beyond the MAX_CATEGORIES most frequent
    distinct: int


class FileProfile(TypedDict):
    file: str
    rows: int
    columns: dict[str, ColumnProfile]


def profile_frame(frame: pd.DataFrame, name: str) -> FileProfile:
    return {
        "file": name,
        "rows": len(frame),
        "columns": {str(column): profile_column(frame[column]) for column in frame.columns},
    }


def profile_column(series: pd.Series) -> ColumnProfile:
    kind = kind_of(series)
    missing = int(series.isna().sum())
    profile: ColumnProfile = {
        "kind": kind,
        "missing": missing,
        "missing_rate": round(missing / len(series), 6) if len(series) else 0.0,
    }
    if kind in NUMERIC_KINDS:
        profile.update(_numeric(series))
    else:
        profile.update(_categorical(series))
    return profile


def kind_of(series: pd.Series) -> Kind:
    from pandas.api import types

    if types.is_bool_dtype(series):
        return "bool"
    if types.is_integer_dtype(series):
        return "int"
    if types.is_float_dtype(series):
        return "float"
    values = series.dropna()
    if len(values) and values.map(lambda v: isinstance(v, bool)).all():
        return "bool"  # a CSV column of true/false with gaps is read as objects
    if types.is_string_dtype(series):
        return "str"
    return "other"


def _numeric(series: pd.Series) -> ColumnProfile:
    import numpy as np

    values = finite_values(series)
    if not len(values):
        return {}
    edges = bin_edges(values)
    return {
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": round(float(values.mean()), 6),
        "histogram": {"edges": edges, "counts": bin_counts(values, edges)},
        "distinct": len(np.unique(values)),
    }


def finite_values(series: pd.Series) -> pd.Series:
    import numpy as np

    values = series.dropna().astype("float64")
    return values[np.isfinite(values)]


def bin_edges(values: pd.Series) -> list[float]:
    """The deciles of ``values``, once each: few distinct values make fewer bins."""
    import numpy as np

    quantiles = np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]
    edges = np.unique(np.quantile(values, quantiles))
    return sorted({float(f"{edge:.10g}") for edge in edges})  # 6.14, not 6.140000000000001


def bin_counts(values: pd.Series, edges: list[float]) -> list[int]:
    import numpy as np

    index = np.searchsorted(np.asarray(edges, dtype=float), values.to_numpy(), side="right")
    return [int(count) for count in np.bincount(index, minlength=len(edges) + 1)]


def _categorical(series: pd.Series) -> ColumnProfile:
    counts = category_counts(series)
    kept = dict(list(counts.items())[:MAX_CATEGORIES])
    profile: ColumnProfile = {"categories": kept, "distinct": len(counts)}
    if len(counts) > len(kept):
        profile["other"] = sum(counts.values()) - sum(kept.values())
    return profile


def category_counts(series: pd.Series) -> dict[str, int]:
    """Each value's count as text, most frequent first."""
    counts = series.dropna().map(str).value_counts()
    return {str(value): int(count) for value, count in counts.items()}
