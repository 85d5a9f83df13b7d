"""The canary judge: whether a canary may take more traffic, from what it did in one window."""

from typing import TYPE_CHECKING

from shipyard.lazy import exports

if TYPE_CHECKING:
    from shipyard.canary.judge import (
        Check,
        Outcome,
        Verdict,
        judge_canary,
        percentile,
        population_stability_index,
    )

__getattr__ = exports(
    __name__,
    {
        "Check": "judge",
        "Outcome": "judge",
        "Verdict": "judge",
        "judge_canary": "judge",
        "percentile": "judge",
        "population_stability_index": "judge",
    },
)

__all__ = [
    "Check",
    "Outcome",
    "Verdict",
    "judge_canary",
    "percentile",
    "population_stability_index",
]
