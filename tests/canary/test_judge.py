"""The canary judge on synthetic windows whose right answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shipyard.canary import Verdict, judge_canary, percentile
from shipyard.canary.judge import binned_psi, numeric_predictions, population_stability_index
from shipyard.config.schema import AnalysisConfig, Threshold
from shipyard.errors import InvalidInput
from shipyard.runtime.interface import VersionStats

ANALYSIS = AnalysisConfig(
    error_rate=Threshold(max=0.02),
    latency={"max_increase": 0.2},
    prediction_drift={"psi_max": 0.2},
    min_requests=20,
)
BALANCED = {"setosa": 70, "versicolor": 65, "virginica": 65}


def stats(
    requests: int = 200,
    errors: int = 0,
    mean_ms: float = 10.0,
    sd_ms: float = 2.0,
    predictions: dict[str, int] | None = None,
    seed: int = 0,
) -> VersionStats:
    rng = np.random.default_rng(seed)
    latencies = rng.normal(mean_ms, sd_ms, size=requests).clip(min=0.1).tolist()
    return VersionStats(
        requests, errors, latencies, dict(BALANCED if predictions is None else predictions)
    )


def outcomes(verdict: Verdict) -> dict[str, str]:
    return {check.name: check.outcome for check in verdict.checks}


def test_equal_healthy_versions_pass() -> None:
    verdict = judge_canary(stats(seed=1), stats(seed=2), ANALYSIS)
    assert verdict.outcome == "pass", verdict.summary()
    assert outcomes(verdict) == {
        "error_rate": "pass",
        "latency": "pass",
        "prediction_drift": "pass",
    }
    assert (verdict.stable_requests, verdict.canary_requests) == (200, 200)


def test_twenty_percent_errors_fail() -> None:
    verdict = judge_canary(stats(seed=1), stats(errors=40, seed=2), ANALYSIS)
    assert verdict.outcome == "fail"
    check = verdict.checks[0]
    assert (check.name, check.outcome, check.value, check.threshold) == (
        "error_rate",
        "fail",
        0.2,
        0.02,
    )
    assert (
        verdict.summary()
        .splitlines()[0]
        .startswith("error_rate: fail: canary 20.0% vs stable 0.0% > max 2.0%, significant (p=")
    )


def test_significant_increase_below_the_max_fails_without_a_max() -> None:
    # 8% vs 0% over 1000 requests each is no accident; with no max, any significant rise fails.
    analysis = ANALYSIS.model_copy(update={"error_rate": Threshold(max=None)})
    verdict = judge_canary(stats(requests=1000), stats(requests=1000, errors=80), analysis)
    assert outcomes(verdict)["error_rate"] == "fail"
    assert "p=" in verdict.checks[0].detail


def test_significant_increase_by_more_than_half_the_max_fails_below_the_max() -> None:
    analysis = ANALYSIS.model_copy(update={"error_rate": Threshold(max=0.1)})
    verdict = judge_canary(stats(requests=1000), stats(requests=1000, errors=80), analysis)
    check = verdict.checks[0]
    assert check.outcome == "fail" and check.value == 0.08 and check.threshold == 0.1


def test_small_insignificant_error_difference_passes() -> None:
    verdict = judge_canary(stats(errors=1), stats(errors=3, seed=2), ANALYSIS)
    assert outcomes(verdict)["error_rate"] == "pass", verdict.summary()


def test_hundred_ms_slower_canary_fails() -> None:
    verdict = judge_canary(stats(seed=1), stats(mean_ms=110.0, seed=2), ANALYSIS)
    assert verdict.outcome == "fail"
    latency = verdict.checks[1]
    assert latency.outcome == "fail", latency.detail
    assert latency.value is not None and latency.threshold is not None
    assert latency.value > 100 > latency.threshold


def test_benign_latency_noise_passes() -> None:
    # Half a millisecond slower on average: significant perhaps, but far below +20%.
    verdict = judge_canary(stats(seed=1), stats(mean_ms=10.5, seed=2), ANALYSIS)
    assert outcomes(verdict)["latency"] == "pass", verdict.summary()
    assert verdict.outcome == "pass"


def test_slow_tail_without_significance_passes() -> None:
    # p95 above the limit, but a few outliers do not make the canary slower overall.
    canary = stats(requests=30, seed=2)
    canary.latencies_ms[:3] = [40.0, 41.0, 42.0]
    verdict = judge_canary(stats(seed=1), canary, ANALYSIS)
    latency = verdict.checks[1]
    assert latency.value is not None and latency.threshold is not None
    assert latency.value > latency.threshold
    assert latency.outcome == "pass", latency.detail


def test_predictions_collapsed_to_one_class_fail() -> None:
    verdict = judge_canary(stats(seed=1), stats(predictions={"setosa": 200}, seed=2), ANALYSIS)
    drift = verdict.checks[2]
    assert drift.outcome == "fail" and verdict.outcome == "fail"
    assert drift.value is not None and drift.value > 1.0


def test_a_class_shift_on_a_few_dozen_predictions_is_noise_but_on_hundreds_fails() -> None:
    # PSI 0.28 over 27 and 30 predictions: chi-square p = 0.15.
    few_stable = {"setosa": 12, "versicolor": 9, "virginica": 6}
    few_canary = {"setosa": 7, "versicolor": 10, "virginica": 13}
    small = judge_canary(
        stats(requests=27, predictions=few_stable, seed=1),
        stats(requests=30, predictions=few_canary, seed=2),
        ANALYSIS,
    )
    drift = small.checks[2]
    assert drift.value is not None and drift.value > 0.2  # the effect is there...
    assert drift.outcome == "pass" and "not significant" in drift.detail  # ...the evidence is not
    many_stable = {k: v * 20 for k, v in few_stable.items()}
    many_canary = {k: v * 20 for k, v in few_canary.items()}
    large = judge_canary(
        stats(requests=540, predictions=many_stable, seed=1),
        stats(requests=600, predictions=many_canary, seed=2),
        ANALYSIS,
    )
    assert large.checks[2].outcome == "fail"


def test_no_predictions_skip_the_drift_check() -> None:
    verdict = judge_canary(stats(seed=1), stats(predictions={}, seed=2), ANALYSIS)
    drift = verdict.checks[2]
    assert (drift.outcome, drift.value, drift.detail) == ("pass", None, "no predictions recorded")


def test_too_few_canary_requests_are_inconclusive() -> None:
    verdict = judge_canary(stats(seed=1), stats(requests=5, errors=1, seed=2), ANALYSIS)
    assert verdict.outcome == "inconclusive"
    assert set(outcomes(verdict).values()) == {"inconclusive"}
    assert "only 5 canary requests" in verdict.checks[0].detail


def test_empty_stable_leaves_only_the_absolute_error_check() -> None:
    empty = VersionStats()
    healthy = judge_canary(empty, stats(seed=2), ANALYSIS)
    assert healthy.outcome == "pass", healthy.summary()
    assert outcomes(healthy)["latency"] == "inconclusive"
    assert "not blocking" in healthy.checks[1].detail
    assert "stable has only 0 requests, so only the max applies" in healthy.checks[0].detail
    assert judge_canary(empty, stats(errors=10, seed=2), ANALYSIS).outcome == "fail"


def test_verdict_is_json_serialisable() -> None:
    verdict = judge_canary(stats(seed=1), stats(errors=40, mean_ms=110.0, seed=2), ANALYSIS)
    data = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert data["outcome"] == "fail"
    assert [c["name"] for c in data["checks"]] == ["error_rate", "latency", "prediction_drift"]
    assert all(isinstance(c["value"], float) for c in data["checks"])


def test_inconsistent_stats_are_refused() -> None:
    with pytest.raises(InvalidInput, match="3 errors in 2 requests"):
        judge_canary(stats(), VersionStats(requests=2, errors=3), ANALYSIS)


def test_psi_and_percentile() -> None:
    assert population_stability_index(BALANCED, BALANCED) == pytest.approx(0.0)
    shifted = population_stability_index({"a": 50, "b": 50}, {"a": 60, "b": 40})
    assert shifted == pytest.approx(0.1 * np.log(0.6 / 0.5) - 0.1 * np.log(0.4 / 0.5))
    # A class only one side predicted gets share 1e-4 on the other, not a division by zero.
    disjoint = population_stability_index({"a": 1}, {"b": 1})
    assert disjoint == pytest.approx(2 * (1 - 1e-4) * np.log(1 / 1e-4))
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([], 95) == 0.0
    with pytest.raises(InvalidInput):
        percentile([1.0], 101)


def numeric(values: np.ndarray) -> dict[str, int]:
    """Predicted numbers as the gateway counts them: str(value) -> count."""
    counts: dict[str, int] = {}
    for value in values.round(3).tolist():
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def regression(mean: float, sd: float, seed: int, size: int = 400) -> VersionStats:
    rng = np.random.default_rng(seed)
    base = stats(requests=size, seed=seed)
    base.predictions = numeric(rng.normal(mean, sd, size=size))
    return base


def test_numeric_predictions_from_the_same_distribution_pass() -> None:
    verdict = judge_canary(regression(5.0, 1.0, 1), regression(5.0, 1.0, 2), ANALYSIS)
    assert outcomes(verdict) == {
        "error_rate": "pass",
        "latency": "pass",
        "prediction_drift": "pass",
        "prediction_ks": "pass",
    }, verdict.summary()
    assert "10 bins" in verdict.checks[2].detail


def test_shifted_numeric_predictions_fail_ks_and_binned_psi() -> None:
    verdict = judge_canary(regression(5.0, 1.0, 1), regression(6.0, 1.0, 2), ANALYSIS)
    checks = {check.name: check for check in verdict.checks}
    assert verdict.outcome == "fail"
    ks = checks["prediction_ks"]
    assert ks.outcome == "fail" and ks.value is not None and 0.3 < ks.value < 0.5, ks.detail
    assert checks["prediction_drift"].outcome == "fail"


def test_a_small_numeric_shift_within_ks_max_passes() -> None:
    # 0.1 sd apart over 400 values each: perhaps significant, but far below ks_max 0.2.
    verdict = judge_canary(regression(5.0, 1.0, 1), regression(5.1, 1.0, 2), ANALYSIS)
    checks = {check.name: check for check in verdict.checks}
    assert checks["prediction_ks"].outcome == "pass", checks["prediction_ks"].detail


def test_integer_labels_are_classes_not_numbers() -> None:
    assert numeric_predictions({"0": 5, "1": 5, "2": 5}, {"0": 15}) is None
    assert numeric_predictions({"setosa": 5}, {"1.5": 3}) is None
    numbers = numeric_predictions({"0.5": 2, "1.5": 1}, {"2.5": 1})
    assert numbers is not None
    assert sorted(numbers[0].tolist()) == [0.5, 0.5, 1.5] and numbers[1].tolist() == [2.5]
    verdict = judge_canary(
        stats(predictions={"0": 70, "1": 65, "2": 65}, seed=1),
        stats(predictions={"0": 200}, seed=2),
        ANALYSIS,
    )
    assert [c.name for c in verdict.checks] == ["error_rate", "latency", "prediction_drift"]
    assert verdict.outcome == "fail" and "over the classes" in verdict.checks[2].detail


def test_binned_psi_is_zero_for_equal_samples_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(3)
    sample = rng.normal(0, 1, 1000)
    assert binned_psi(sample, sample) == pytest.approx(0.0)
    assert binned_psi(sample, sample + 0.5) > 0.2
    assert binned_psi(sample, sample + 2.0) > binned_psi(sample, sample + 0.5)


def test_a_verdict_keeps_what_each_side_showed_for_the_charts() -> None:
    stable = stats(errors=2, mean_ms=10.0, predictions={"setosa": 50, "virginica": 50}, seed=1)
    canary = stats(errors=40, mean_ms=30.0, predictions={"setosa": 150, "virginica": 50}, seed=2)
    verdict = judge_canary(stable, canary, ANALYSIS)
    assert verdict.stable is not None and verdict.canary is not None
    assert (verdict.stable.requests, verdict.stable.error_rate) == (200, 0.01)
    assert (verdict.canary.requests, verdict.canary.error_rate) == (200, 0.2)
    assert verdict.stable.p95_ms == percentile(stable.latencies_ms, 95)
    assert verdict.canary.p95_ms == percentile(canary.latencies_ms, 95)
    assert verdict.stable.predictions == {"setosa": 0.5, "virginica": 0.5}
    assert verdict.canary.predictions == {"setosa": 0.75, "virginica": 0.25}
    stored = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert stored["canary"] == {
        "requests": 200,
        "error_rate": 0.2,
        "p95_ms": verdict.canary.p95_ms,
        "predictions": {"setosa": 0.75, "virginica": 0.25},
    }


def test_numeric_predictions_are_kept_as_quantiles_and_no_window_as_nothing() -> None:
    verdict = judge_canary(regression(5.0, 1.0, 1), regression(6.0, 1.0, 2), ANALYSIS)
    assert verdict.stable is not None and verdict.canary is not None
    assert list(verdict.canary.predictions) == ["p10", "p50", "p90"]
    assert 4.8 < verdict.stable.predictions["p50"] < 5.2
    assert 5.8 < verdict.canary.predictions["p50"] < 6.2
    empty = judge_canary(VersionStats(), VersionStats(), ANALYSIS)
    assert empty.canary is not None
    assert (empty.canary.requests, empty.canary.p95_ms, empty.canary.predictions) == (0, None, {})
