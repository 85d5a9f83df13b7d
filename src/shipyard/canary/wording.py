"""A canary check's result in words: one sentence with its numbers, worded here only.

The judge (``judge.py``) words each check as it decides it, with the functions below, and keeps
the words as the check's ``detail``; :func:`sentence` puts name, outcome and detail together.
The rollout controller's log, ``shipyard rollout status``, the API's and the dashboard's views
and the rollback notices all show that sentence, so a verdict reads the same everywhere::

    latency: pass: canary p95 14.7 ms vs stable 12.3 ms, +19%, not significant (p=0.31)

A limit is named when it decides the outcome (exceeded, or a significant difference within
it); drift checks always name theirs. Nothing heavy is imported: the CLI uses this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

__all__ = [
    "SIGNIFICANCE",
    "drift",
    "error_rate",
    "failures",
    "ks",
    "latency",
    "sentence",
    "significance",
    "too_few",
]

SIGNIFICANCE = 0.05  # a difference with p below this is taken as real, not noise


class Worded(Protocol):
    """A check result as the judge keeps it and the views show it."""

    @property
    def name(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> str: ...


def sentence(check: Worded) -> str:
    """``name: outcome: detail``, the one way a check result is shown."""
    return f"{check.name}: {check.outcome}: {check.detail}"


def failures(checks: Iterable[Worded]) -> str:
    """The failed checks' sentences, for a rollback's reason."""
    return "; ".join(sentence(check) for check in checks if check.outcome == "fail")


def significance(p_value: float) -> str:
    word = "significant" if p_value < SIGNIFICANCE else "not significant"
    return f"{word} (p={p_value:.2g})"


def latency(canary_p95: float, stable_p95: float, max_increase: float, p_value: float) -> str:
    """``canary p95 14.7 ms vs stable 12.3 ms, +19%, not significant (p=0.31)``."""
    change = _change(canary_p95, stable_p95)
    over = canary_p95 > stable_p95 * (1 + max_increase)
    limit = f"max +{max_increase:.0%}"
    if over:
        change = f"{change} > {limit}"
    elif p_value < SIGNIFICANCE:
        change = f"{change} (within {limit})"
    return (
        f"canary p95 {canary_p95:.1f} ms vs stable {stable_p95:.1f} ms, {change}, "
        f"{significance(p_value)}"
    )


def error_rate(
    canary: float,
    stable: float,
    limit: float | None,
    p_value: float | None,
    *,
    stable_requests: int,
    margin: float = 0.0,
) -> str:
    """``canary 0.4% vs stable 0.2%, within max 5.0%, not significant (p=0.62)``.

    ``p_value`` is None when stable served too few requests to compare with; ``margin`` is how
    far above stable's rate a significant increase must go to fail.
    """
    if limit is None:
        bound = "with no max"
    else:
        bound = f"> max {_pct(limit)}" if canary > limit else f"within max {_pct(limit)}"
    if p_value is None:
        only = "so only the max applies" if limit is not None else "nothing to compare with"
        return f"canary {_pct(canary)} {bound}; stable has only {stable_requests} requests, {only}"
    if not bound.startswith(">") and p_value < SIGNIFICANCE and canary - stable > margin:
        bound = f"more than {_pct(margin)} above stable"
    joined = " " if bound.startswith(">") else ", "
    rates = f"canary {_pct(canary)} vs stable {_pct(stable)}"
    return f"{rates}{joined}{bound}, {significance(p_value)}"


def drift(
    psi: float, limit: float, p_value: float, over: str, canary_count: int, stable_count: int
) -> str:
    """``PSI 0.031 within limit 0.200 over the classes, not significant (p=0.45); ...``."""
    bound = f"> limit {limit:.3f}" if psi > limit else f"within limit {limit:.3f}"
    return (
        f"PSI {psi:.3f} {bound} over {over}, {significance(p_value)}; "
        f"{canary_count} canary vs {stable_count} stable predictions"
    )


def ks(distance: float, limit: float, p_value: float) -> str:
    """``KS distance 0.084 within limit 0.200, not significant (p=0.62)``."""
    bound = f"> limit {limit:.3f}" if distance > limit else f"within limit {limit:.3f}"
    return f"KS distance {distance:.3f} {bound}, {significance(p_value)}"


def too_few(requests: int, minimum: int, measured: str) -> str:
    return f"only {requests} canary requests (< min_requests {minimum}); measured: {measured}"


def _change(canary: float, stable: float) -> str:
    if stable <= 0:
        return "no stable baseline to compare with" if canary <= 0 else "up from 0 ms"
    return f"{canary / stable - 1:+.0%}"


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"
