"""The canary judge: whether a canary may take more traffic, from what it did in one window."""

from shipyard.canary.judge import (
    Check,
    Outcome,
    Verdict,
    judge_canary,
    percentile,
    population_stability_index,
)

__all__ = [
    "Check",
    "Outcome",
    "Verdict",
    "judge_canary",
    "percentile",
    "population_stability_index",
]
