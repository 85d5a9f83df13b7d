"""Drift of each feature: this build's training data against the live release's profile.

The PSI is the canary judge's (:func:`shipyard.canary.judge.population_stability_index`), over
the live profile's own bins: numbers are counted into its histogram's bins (plus a bin of
missing values), categories by value (values the live profile folded into ``other`` stay
there). The live release's data is not needed, only its profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.data.profile import (
    NUMERIC_KINDS,
    ColumnProfile,
    FileProfile,
    bin_counts,
    category_counts,
    finite_values,
    kind_of,
)

if TYPE_CHECKING:
    import pandas as pd

MISSING = "\0missing"  # bucket names no category can have
OTHER = "\0other"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float | None  # None: nothing to compare with (a new feature, or its kind changed)
    over: str  # what the PSI was computed over, or why there is none

    def drifted(self, limit: float) -> bool:
        return self.psi is not None and self.psi > limit

    def sentence(self, limit: float) -> str:
        if self.psi is None:
            return f"{self.feature}: {self.over}"
        relation = ">" if self.drifted(limit) else "<="
        return f"{self.feature}: PSI {self.psi:.3f} {relation} max {limit:g} over {self.over}"


def feature_drift(frame: pd.DataFrame, live: FileProfile, label: str | None) -> list[FeatureDrift]:
    """The drift of every column of ``frame`` but the label, in the frame's order."""
    return [
        _drift(str(column), frame[column], live["columns"].get(str(column)))
        for column in frame.columns
        if column != label
    ]


def _drift(feature: str, series: pd.Series, live: ColumnProfile | None) -> FeatureDrift:
    from shipyard.canary.judge import population_stability_index

    if live is None:
        return FeatureDrift(feature, None, "new, not in the live release's training data")
    kind, live_kind = kind_of(series), live.get("kind", "other")
    numeric = kind in NUMERIC_KINDS
    if numeric != (live_kind in NUMERIC_KINDS):
        return FeatureDrift(feature, None, f"was {live_kind} in the live release, now {kind}")
    if numeric and "histogram" in live:
        edges = live["histogram"]["edges"]
        expected = _numbered(live["histogram"]["counts"], live.get("missing", 0))
        actual = _numbered(bin_counts(finite_values(series), edges), int(series.isna().sum()))
        over = f"{len(edges) + 1} bins of the live release's values"
    else:
        expected = _categories(live)
        actual = _folded(series, live)
        over = f"{len(set(expected) | set(actual))} categories"
    return FeatureDrift(feature, population_stability_index(expected, actual), over)


def _numbered(counts: list[int], missing: int) -> dict[str, int]:
    buckets = {str(i): count for i, count in enumerate(counts)}
    return {**buckets, MISSING: missing} if missing else buckets


def _categories(live: ColumnProfile) -> dict[str, int]:
    counts = dict(live.get("categories", {}))
    if live.get("other"):
        counts[OTHER] = live.get("other", 0)
    if live.get("missing"):
        counts[MISSING] = live.get("missing", 0)
    return counts


def _folded(series: pd.Series, live: ColumnProfile) -> dict[str, int]:
    """This build's category counts, folding into ``other`` what the live profile folded."""
    known = live.get("categories", {})
    counts: dict[str, int] = {}
    for value, count in category_counts(series).items():
        key = OTHER if live.get("other") and value not in known else value
        counts[key] = counts.get(key, 0) + count
    missing = int(series.isna().sum())
    return {**counts, MISSING: missing} if missing else counts
