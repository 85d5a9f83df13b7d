"""A check's result reads as one sentence with its numbers, the same wherever it is shown."""

from __future__ import annotations

import re

import numpy as np

from shipyard.canary import judge_canary, wording
from shipyard.config.schema import AnalysisConfig, Threshold
from shipyard.runtime.interface import VersionStats
from shipyard.services.rollouts import CheckView

ANALYSIS = AnalysisConfig(
    error_rate=Threshold(max=0.05),
    latency={"max_increase": 0.5},
    prediction_drift={"psi_max": 0.2, "ks_max": 0.2},
    min_requests=20,
)
P_VALUE = r"p=[0-9.e-]+"


def window(mean_ms: float, errors: int = 0, seed: int = 0, numeric: bool = False) -> VersionStats:
    rng = np.random.default_rng(seed)
    latencies = rng.normal(mean_ms, 2.0, size=200).clip(min=0.1).tolist()
    if numeric:
        values = rng.normal(5.0, 1.0, size=200).round(2)
        predictions: dict[str, int] = {}
        for value in values:
            predictions[str(value)] = predictions.get(str(value), 0) + 1
    else:
        predictions = {"setosa": 70, "versicolor": 65, "virginica": 65}
    return VersionStats(200, errors, latencies, predictions)


def test_the_latency_sentence_reads_as_the_issue_writes_it() -> None:
    check = CheckView(
        name="latency", outcome="pass", detail=wording.latency(14.66, 12.34, 0.5, 0.31)
    )
    assert check.sentence == (
        "latency: pass: canary p95 14.7 ms vs stable 12.3 ms, +19%, not significant (p=0.31)"
    )


def test_the_judge_words_every_check_with_its_numbers_and_limits() -> None:
    verdict = judge_canary(window(12.0, seed=1), window(12.5, errors=2, seed=2), ANALYSIS)
    lines = verdict.summary().splitlines()
    assert re.fullmatch(
        rf"error_rate: pass: canary 1\.0% vs stable 0\.0%, within max 5\.0%, "
        rf"(not )?significant \({P_VALUE}\)",
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        rf"latency: pass: canary p95 \d+\.\d ms vs stable \d+\.\d ms, [+-]\d+%"
        rf"( \(within max \+50%\))?, (not )?significant \({P_VALUE}\)",
        lines[1],
    ), lines[1]
    assert re.fullmatch(
        rf"prediction_drift: pass: PSI 0\.000 within limit 0\.200 over the classes, "
        rf"not significant \({P_VALUE}\); 200 canary vs 200 stable predictions",
        lines[2],
    ), lines[2]


def test_a_failing_latency_names_the_limit_it_broke() -> None:
    verdict = judge_canary(window(10.0, seed=1), window(40.0, seed=2), ANALYSIS)
    latency = verdict.checks[1]
    assert latency.outcome == "fail"
    assert re.fullmatch(
        rf"canary p95 \d+\.\d ms vs stable \d+\.\d ms, \+\d+% > max \+50%, "
        rf"significant \({P_VALUE}\)",
        latency.detail,
    ), latency.detail


def test_numeric_drift_is_worded_with_psi_and_ks_and_their_limits() -> None:
    verdict = judge_canary(
        window(10.0, seed=1, numeric=True), window(10.0, seed=2, numeric=True), ANALYSIS
    )
    drift, ks = verdict.checks[2], verdict.checks[3]
    assert drift.detail.startswith("PSI ") and "limit 0.200 over 10 bins" in drift.detail
    assert re.fullmatch(
        rf"KS distance \d\.\d{{3}} within limit 0\.200, (not )?significant \({P_VALUE}\)",
        ks.detail,
    ), ks.detail


def test_the_views_and_the_judge_share_the_sentence() -> None:
    verdict = judge_canary(window(10.0, seed=1), window(40.0, seed=2), ANALYSIS)
    shown = [CheckView.model_validate(check.to_dict()) for check in verdict.checks]
    assert [view.sentence for view in shown] == verdict.summary().splitlines()
    assert shown[1].model_dump(mode="json")["sentence"] == shown[1].sentence  # the API's too
    assert wording.failures(verdict.checks) == shown[1].sentence


def test_an_error_rate_without_a_baseline_says_what_it_was_held_to() -> None:
    assert wording.error_rate(0.004, 0.0, 0.05, None, stable_requests=3) == (
        "canary 0.4% within max 5.0%; stable has only 3 requests, so only the max applies"
    )
    assert wording.error_rate(0.004, 0.0, None, None, stable_requests=3) == (
        "canary 0.4% with no max; stable has only 3 requests, nothing to compare with"
    )
