"""The promotion policy: may an artifact enter a repository, given its run's stage results?

A pure function over stage statuses. A repository's policy names the stages that must have
``passed`` (``release``: test, analyze and qa) and, among them, the ones explicitly allowed to
be ``skipped``. ``failed``, ``cancelled`` or a stage that never ran refuse, always.

Tightening (requiring another stage, withdrawing an allowance) needs nothing special.
Loosening is only ever allowing a named stage to be skipped: it is asked for by name, it is
written to the audit log, and every promotion it lets through says so in its reason. The
stages a repository was created with can never be dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shipyard.domain import STAGES, Status
from shipyard.errors import InvalidInput

RELEASE_GATES: tuple[str, ...] = ("test", "analyze", "qa")
# A gate must have finished before the release stage runs.
GATEABLE: tuple[str, ...] = STAGES[: STAGES.index("release")]


@dataclass(frozen=True)
class PromotionPolicy:
    require: tuple[str, ...] = ()
    allow_skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    stage: str
    status: str  # the stage's status, or "unknown" when there is no record of it
    verdict: str  # "passed", "skip allowed by policy" or "refused"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    checks: tuple[Check, ...]
    evidence: str  # where the statuses came from: "run #3" or "imported properties"

    def summary(self) -> str:
        """One line for the audit log and the terminal: ``test passed, qa skipped (allowed)``."""
        parts = [
            f"{c.stage} {c.status}"
            + (" (skip allowed by policy)" if c.verdict.startswith("skip") else "")
            for c in self.checks
        ]
        return f"{self.evidence}: " + (", ".join(parts) or "no stages required")

    @property
    def refused(self) -> list[Check]:
        return [check for check in self.checks if check.verdict == "refused"]


def decide(policy: PromotionPolicy, statuses: Mapping[str, str], evidence: str) -> Decision:
    """Whether stage ``statuses`` satisfy ``policy``."""
    checks = tuple(
        _check(policy, stage, statuses.get(stage, "unknown")) for stage in policy.require
    )
    return Decision(all(c.verdict != "refused" for c in checks), checks, evidence)


def _check(policy: PromotionPolicy, stage: str, status: str) -> Check:
    if status == Status.PASSED.value:
        return Check(stage, status, "passed")
    if status == Status.SKIPPED.value and stage in policy.allow_skipped:
        return Check(stage, status, "skip allowed by policy")
    return Check(stage, status, "refused")


@dataclass(frozen=True)
class PolicyChange:
    policy: PromotionPolicy
    loosened: tuple[str, ...]  # stages newly allowed to be skipped
    tightened: tuple[str, ...]  # stages newly required, or no longer allowed to be skipped


def change_policy(
    current: PromotionPolicy,
    *,
    require: Iterable[str] = (),
    allow_skipped: Iterable[str] = (),
    disallow_skipped: Iterable[str] = (),
) -> PolicyChange:
    """``current`` with stages added to ``require`` and skip allowances granted or withdrawn."""
    added = [s for s in _stages(require) if s not in current.require]
    granted = [s for s in _stages(allow_skipped) if s not in current.allow_skipped]
    withdrawn = [s for s in _stages(disallow_skipped) if s in current.allow_skipped]
    required = (*current.require, *added)
    not_required = [s for s in granted if s not in required]
    if not_required:
        raise InvalidInput(
            f"Cannot allow {', '.join(not_required)} to be skipped: the policy does not require it.",
            hint="Only a required stage can be allowed to be skipped.",
        )
    allowed = tuple(s for s in (*current.allow_skipped, *granted) if s not in withdrawn)
    policy = PromotionPolicy(required, allowed)
    return PolicyChange(policy, tuple(granted), (*added, *withdrawn))


def _stages(names: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in GATEABLE]
    if unknown:
        raise InvalidInput(
            f"{', '.join(map(repr, unknown))} cannot gate a promotion.",
            hint=f"Name stages that run before release: {', '.join(GATEABLE)}.",
        )
    return chosen
