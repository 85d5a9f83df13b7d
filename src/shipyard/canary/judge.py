"""The canary judge: compares the canary with the stable version on one window of traffic.

Each check asks for an effect large enough to matter *and*, where the stable version gives a
baseline, evidence that it is not noise (the way Kayenta judges a canary): a handful of slow
requests must not roll back a good model, and a small sample must never pass a bad one.

- ``error_rate``: the canary's error rate above ``analysis.error_rate.max`` fails; so does a
  rate significantly above stable's (one-sided Fisher exact test, p < 0.05) when it exceeds
  stable's by more than half of that max.
- ``latency``: the canary's p95 above stable's p95 times ``1 + max_increase`` *and* a one-sided
  Mann-Whitney U test with p < 0.05. Without a stable baseline the check is inconclusive but
  does not block: the error-rate maximum still guards the canary.
- ``prediction_drift``: the population stability index of the predicted values (see
  :func:`population_stability_index`) above ``psi_max`` *and* a significant difference
  fails: over the classes for a classifier (chi-square test of the two class counts), over
  the deciles of stable's values for numeric outputs (:func:`binned_psi`; significance from
  the KS test). PSI alone swings widely on a few dozen predictions: two close models can
  show PSI 0.6 on 30 requests each.
- ``prediction_ks`` (numeric outputs only): the two-sample Kolmogorov-Smirnov distance above
  ``ks_max`` *and* significant (p < 0.05) fails.

Fewer canary requests than ``analysis.min_requests`` makes every check, and so the verdict,
inconclusive: the rollout extends the step rather than pass on no data.

A verdict also keeps what each side showed (:class:`Observed`: error rate, p95, the shape of
its predictions) so that a rollout's judgements can be drawn over time, canary against stable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy import stats

from shipyard.canary import wording
from shipyard.canary.wording import SIGNIFICANCE
from shipyard.config.schema import AnalysisConfig
from shipyard.errors import InvalidInput
from shipyard.runtime.interface import VersionStats

__all__ = [
    "Check",
    "Observed",
    "Outcome",
    "Verdict",
    "binned_psi",
    "judge_canary",
    "numeric_predictions",
    "observe",
    "percentile",
    "population_stability_index",
]

Outcome = Literal["pass", "fail", "inconclusive"]

PSI_EPSILON = 1e-4  # share given to a class one side never predicted, so the log stays finite
DEFAULT_MAX_INCREASE = 0.5  # the schema's defaults, for a config that names other keys only
DEFAULT_PSI_MAX = 0.2
DEFAULT_KS_MAX = 0.2
NUMERIC_BINS = 10
MAX_CLASSES = 20  # more distinct integer predictions than this are numbers, not classes
QUANTILES = (10, 50, 90)  # how numeric predictions are summarised for the charts


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    value: float | None  # what the canary measured
    threshold: float | None  # the limit it was held to
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Observed:
    """What one version showed in the judged window, as numbers a chart can draw."""

    requests: int
    error_rate: float
    p95_ms: float | None  # None without latencies
    # Each class's share of the predictions, or p10/p50/p90 of numeric ones ({} for none).
    predictions: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    checks: tuple[Check, ...]
    stable_requests: int
    canary_requests: int
    stable: Observed | None = None
    canary: Observed | None = None

    def to_dict(self) -> dict[str, Any]:
        observed = {
            side: value.to_dict()
            for side, value in (("stable", self.stable), ("canary", self.canary))
            if value is not None
        }
        return {
            "outcome": self.outcome,
            "stable_requests": self.stable_requests,
            "canary_requests": self.canary_requests,
            "checks": [check.to_dict() for check in self.checks],
            **observed,
        }

    def summary(self) -> str:
        return "\n".join(wording.sentence(check) for check in self.checks)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100, linear interpolation); 0.0 for no values."""
    if not 0 <= q <= 100:
        raise InvalidInput(f"percentile {q} is out of range", hint="Use a value from 0 to 100.")
    if len(values) == 0:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=float), q))


def population_stability_index(expected: Mapping[str, int], actual: Mapping[str, int]) -> float:
    """PSI of ``actual`` against ``expected`` over the union of their classes.

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` where ``e_i`` and ``a_i`` are the shares of
    class ``i`` on each side; a share of zero is replaced by ``PSI_EPSILON``. Rule of thumb:
    below 0.1 stable, 0.1 to 0.25 shifting, above 0.25 a different distribution.
    """
    classes = sorted(set(expected) | set(actual))
    e = _shares(expected, classes)
    a = _shares(actual, classes)
    return float(np.sum((a - e) * np.log(a / e)))


def judge_canary(stable: VersionStats, canary: VersionStats, analysis: AnalysisConfig) -> Verdict:
    """Judge one window: ``fail`` if any check fails, ``inconclusive`` on too small a sample."""
    _validate(stable, "stable")
    _validate(canary, "canary")
    checks: tuple[Check, ...] = (
        _error_rate_check(stable, canary, analysis),
        _latency_check(stable, canary, analysis),
        *_drift_checks(stable, canary, analysis),
    )
    too_few = canary.requests < analysis.min_requests
    if too_few:
        checks = tuple(_inconclusive(c, canary.requests, analysis.min_requests) for c in checks)
    stable_seen, canary_seen = observe(stable, canary)
    return Verdict(
        outcome=_overall(checks, too_few),
        checks=checks,
        stable_requests=stable.requests,
        canary_requests=canary.requests,
        stable=stable_seen,
        canary=canary_seen,
    )


def observe(stable: VersionStats, canary: VersionStats) -> tuple[Observed, Observed]:
    """Both sides summarised alike: class shares for a classifier, else quantiles of both."""
    numbers = numeric_predictions(stable.predictions, canary.predictions)
    if numbers is None:
        shapes = (_class_shares(stable.predictions), _class_shares(canary.predictions))
    else:
        shapes = (_quantiles(numbers[0]), _quantiles(numbers[1]))
    return _observed(stable, shapes[0]), _observed(canary, shapes[1])


def _observed(version: VersionStats, predictions: dict[str, float]) -> Observed:
    p95 = percentile(version.latencies_ms, 95) if version.latencies_ms else None
    return Observed(version.requests, version.error_rate, p95, predictions)


def _class_shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = _count(counts)
    return {name: counts[name] / total for name in sorted(counts)} if total else {}


def _quantiles(values: FloatArray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    return {f"p{q}": float(np.percentile(values, q)) for q in QUANTILES}


def _overall(checks: Sequence[Check], too_few: bool) -> Outcome:
    if any(check.outcome == "fail" for check in checks):
        return "fail"
    return "inconclusive" if too_few else "pass"


def _inconclusive(check: Check, requests: int, minimum: int) -> Check:
    note = wording.too_few(requests, minimum, check.detail)
    return replace(check, outcome="inconclusive", detail=note)


def _validate(version: VersionStats, side: str) -> None:
    if version.requests < 0 or not 0 <= version.errors <= version.requests:
        raise InvalidInput(
            f"{side} statistics are inconsistent: "
            f"{version.errors} errors in {version.requests} requests",
            hint="Errors must be between 0 and the number of requests.",
        )


# -- error rate ----------------------------------------------------------------------------


def _error_rate_check(
    stable: VersionStats, canary: VersionStats, analysis: AnalysisConfig
) -> Check:
    limit = analysis.error_rate.max
    rate = canary.error_rate
    baseline = stable.requests >= analysis.min_requests
    p_value = _fisher_greater(canary, stable) if baseline else None
    # With no max configured, any significant increase over stable fails.
    margin = (limit or 0.0) / 2
    detail = wording.error_rate(
        rate, stable.error_rate, limit, p_value, stable_requests=stable.requests, margin=margin
    )
    over = limit is not None and rate > limit
    worse = p_value is not None and p_value < SIGNIFICANCE and rate - stable.error_rate > margin
    return Check("error_rate", "fail" if over or worse else "pass", rate, limit, detail)


def _fisher_greater(canary: VersionStats, stable: VersionStats) -> float:
    table = [
        [canary.errors, canary.requests - canary.errors],
        [stable.errors, stable.requests - stable.errors],
    ]
    return _finite_p(stats.fisher_exact(table, alternative="greater").pvalue)


# -- latency -------------------------------------------------------------------------------


def _latency_check(stable: VersionStats, canary: VersionStats, analysis: AnalysisConfig) -> Check:
    increase = analysis.latency.get("max_increase", DEFAULT_MAX_INCREASE)
    minimum = analysis.min_requests
    canary_p95 = percentile(canary.latencies_ms, 95) if canary.latencies_ms else None
    if len(stable.latencies_ms) < minimum or len(canary.latencies_ms) < minimum:
        detail = (
            f"too few latencies to compare (stable {len(stable.latencies_ms)}, canary "
            f"{len(canary.latencies_ms)}, need {minimum}); not blocking, the error-rate max applies"
        )
        return Check("latency", "inconclusive", canary_p95, None, detail)
    return _compare_latency(stable.latencies_ms, canary.latencies_ms, increase)


def _compare_latency(stable: Sequence[float], canary: Sequence[float], increase: float) -> Check:
    stable_p95, canary_p95 = percentile(stable, 95), percentile(canary, 95)
    limit = stable_p95 * (1 + increase)
    p_value = _finite_p(stats.mannwhitneyu(canary, stable, alternative="greater").pvalue)
    detail = wording.latency(canary_p95, stable_p95, increase, p_value)
    failed = canary_p95 > limit and p_value < SIGNIFICANCE
    return Check("latency", "fail" if failed else "pass", canary_p95, limit, detail)


# -- prediction drift ----------------------------------------------------------------------


def _drift_checks(
    stable: VersionStats, canary: VersionStats, analysis: AnalysisConfig
) -> tuple[Check, ...]:
    limit = analysis.prediction_drift.get("psi_max", DEFAULT_PSI_MAX)
    if not _count(stable.predictions) or not _count(canary.predictions):
        return (Check("prediction_drift", "pass", None, limit, "no predictions recorded"),)
    numbers = numeric_predictions(stable.predictions, canary.predictions)
    if numbers is None:
        psi = population_stability_index(stable.predictions, canary.predictions)
        p_value = _classes_differ(stable.predictions, canary.predictions)
        return (_psi_check(psi, p_value, limit, stable, canary, "the classes"),)
    stable_values, canary_values = numbers
    psi = binned_psi(stable_values, canary_values)
    ks_limit = analysis.prediction_drift.get("ks_max", DEFAULT_KS_MAX)
    ks = _ks_check(stable_values, canary_values, ks_limit)
    ks_p = _finite_p(stats.ks_2samp(canary_values, stable_values).pvalue)
    over = f"{NUMERIC_BINS} bins of stable's values"
    return (_psi_check(psi, ks_p, limit, stable, canary, over), ks)


def _classes_differ(stable: Mapping[str, int], canary: Mapping[str, int]) -> float:
    """p-value of a chi-square test that both sides predict classes in the same proportions."""
    classes = sorted(set(stable) | set(canary))
    if len(classes) < 2:
        return 1.0
    table = [[stable.get(c, 0) for c in classes], [canary.get(c, 0) for c in classes]]
    return _finite_p(stats.chi2_contingency(table).pvalue)


def _psi_check(
    psi: float,
    p_value: float,
    limit: float,
    stable: VersionStats,
    canary: VersionStats,
    over: str,
) -> Check:
    failed = psi > limit and p_value < SIGNIFICANCE
    sizes = (_count(canary.predictions), _count(stable.predictions))
    detail = wording.drift(psi, limit, p_value, over, *sizes)
    return Check("prediction_drift", "fail" if failed else "pass", psi, limit, detail)


def _ks_check(stable: FloatArray, canary: FloatArray, limit: float) -> Check:
    """Kolmogorov-Smirnov: the largest gap between the two distributions of numeric outputs,
    failing only when it is both larger than ``ks_max`` and significant."""
    result = stats.ks_2samp(canary, stable)
    distance, p_value = float(result.statistic), _finite_p(result.pvalue)
    failed = distance > limit and p_value < SIGNIFICANCE
    detail = wording.ks(distance, limit, p_value)
    return Check("prediction_ks", "fail" if failed else "pass", distance, limit, detail)


def numeric_predictions(
    stable: Mapping[str, int], canary: Mapping[str, int]
) -> tuple[FloatArray, FloatArray] | None:
    """Both sides' predictions as numbers, or None when they are classes.

    Predictions are numeric when every value reads as a number and they are not a handful of
    integers (``0``, ``1``, ``2`` are class labels): some value has a fraction, or there are
    more than ``MAX_CLASSES`` distinct values.
    """
    values: dict[str, float] = {}
    for key in set(stable) | set(canary):
        try:
            number = float(key)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        values[key] = number
    integral = all(number.is_integer() for number in values.values())
    if integral and len(values) <= MAX_CLASSES:
        return None
    return _expand(stable, values), _expand(canary, values)


def binned_psi(stable: FloatArray, canary: FloatArray, bins: int = NUMERIC_BINS) -> float:
    """PSI over the quantile bins of stable's values (deciles by default)."""
    edges = np.unique(np.quantile(stable, np.linspace(0, 1, bins + 1)[1:-1]))
    stable_counts = np.bincount(np.searchsorted(edges, stable, side="right"), minlength=bins)
    canary_counts = np.bincount(np.searchsorted(edges, canary, side="right"), minlength=bins)
    names = [str(i) for i in range(len(stable_counts))]
    return population_stability_index(
        dict(zip(names, stable_counts.tolist(), strict=True)),
        dict(zip(names, canary_counts.tolist(), strict=True)),
    )


def _expand(counts: Mapping[str, int], values: Mapping[str, float]) -> FloatArray:
    keys = list(counts)
    return np.repeat(
        np.array([values[k] for k in keys], dtype=float),
        np.array([counts[k] for k in keys], dtype=int),
    )


def _count(predictions: Mapping[str, int]) -> int:
    return sum(predictions.values())


FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def _shares(counts: Mapping[str, int], classes: Sequence[str]) -> FloatArray:
    raw = np.array([counts.get(name, 0) for name in classes], dtype=float)
    shares = raw / raw.sum()
    return np.where(shares > 0, shares, PSI_EPSILON)


def _finite_p(value: Any) -> float:
    # Tests on identical samples can return NaN: that is "no evidence", not a failure.
    p = float(value)
    return 1.0 if math.isnan(p) else p
