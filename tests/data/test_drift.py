"""Profiles keep fixed bins, and drift is the judge's PSI over the live profile's bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.canary.judge import population_stability_index
from shipyard.data import feature_drift, profile_frame
from shipyard.data.profile import NUMERIC_BINS


def frame(shift: float = 0.0, size: int = 500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "width": rng.normal(5.0 + shift, 1.0, size),
            "colour": rng.choice(["red", "green", "blue"], size, p=[0.5, 0.3, 0.2]),
            "label": rng.choice(["a", "b"], size),
        }
    )


def test_a_numeric_profile_has_deciles_and_counts_in_them() -> None:
    profile = profile_frame(frame(), "data/train.csv")
    width = profile["columns"]["width"]
    histogram = width["histogram"]
    assert width["kind"] == "float" and width["missing"] == 0
    assert len(histogram["edges"]) == NUMERIC_BINS - 1
    assert len(histogram["counts"]) == NUMERIC_BINS
    assert sum(histogram["counts"]) == 500
    assert all(40 <= count <= 60 for count in histogram["counts"])  # deciles: ~50 each
    assert width["min"] < histogram["edges"][0] < histogram["edges"][-1] < width["max"]


def test_the_same_distribution_does_not_drift() -> None:
    live = profile_frame(frame(seed=1), "data/train.csv")
    drift = {d.feature: d for d in feature_drift(frame(seed=2), live, label="label")}
    assert set(drift) == {"width", "colour"}  # the label is left out
    assert all(d.psi is not None and d.psi < 0.1 for d in drift.values())
    assert not any(d.drifted(0.2) for d in drift.values())


def test_a_shifted_feature_drifts_and_the_sentence_names_it() -> None:
    live = profile_frame(frame(), "data/train.csv")
    (width, colour) = feature_drift(frame(shift=1.5, seed=2), live, label="label")
    assert width.psi is not None and width.psi > 0.5
    assert width.drifted(0.2) and not colour.drifted(0.2)
    assert width.sentence(0.2) == (
        f"width: PSI {width.psi:.3f} > max 0.2 over 10 bins of the live release's values"
    )


def test_numeric_drift_is_the_judges_psi_over_the_live_bins() -> None:
    live = profile_frame(frame(), "data/train.csv")
    now = frame(shift=0.5, seed=3)
    edges = live["columns"]["width"]["histogram"]["edges"]
    counts = np.bincount(np.searchsorted(edges, now["width"], side="right"), minlength=10)
    expected = population_stability_index(
        {str(i): c for i, c in enumerate(live["columns"]["width"]["histogram"]["counts"])},
        {str(i): int(c) for i, c in enumerate(counts)},
    )
    (width, _colour) = feature_drift(now, live, label="label")
    assert width.psi == pytest.approx(expected)


def test_a_new_category_and_a_new_feature_are_reported() -> None:
    live = profile_frame(frame().drop(columns="label"), "data/train.csv")
    now = frame(seed=2).assign(colour="purple", extra=1.0)
    drift = {d.feature: d for d in feature_drift(now, live, label="label")}
    assert drift["colour"].psi is not None and drift["colour"].psi > 1.0
    assert drift["extra"].psi is None
    assert drift["extra"].sentence(0.2) == "extra: new, not in the live release's training data"


def test_missing_values_count_as_their_own_bin() -> None:
    live = profile_frame(frame(), "data/train.csv")
    now = frame(seed=2)
    now.loc[: len(now) // 2, "width"] = np.nan
    (width, _colour) = feature_drift(now, live, label="label")
    assert width.psi is not None and width.psi > 1.0
