"""The promotion policy: may an artifact enter a repository, given its run's stage results?

A pure function over stage statuses. A repository's policy names the stages that must have
``passed`` (``release``: test, analyze and qa) and, among them, the ones explicitly allowed to
be ``skipped``. ``failed``, ``cancelled`` or a stage that never ran refuse, always.

Tightening (requiring another stage, withdrawing an allowance) needs nothing special.
Loosening is only ever allowing a named stage to be skipped: it is asked for by name, it is
written to the audit log, and every promotion it lets through says so in its reason. The
stages a repository was created with can never be dropped.

A project's own statement (``release.requires`` in its ``shipyard.yaml``, carried in the
build-info and signed with the build) is applied on top of the ``release`` repository's policy
by :func:`effective_policy`, the one place that combines them. It tightens freely: a stage it
lists must pass, whatever the repository allows. It loosens only one thing, only for its own
artifacts: a release gate (test, analyze, qa) that the project does not configure, and
therefore states it does not have, may be ``skipped``. Never ``failed``; and the repository's
row, and every other project's decision, stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shipyard.domain import STAGES, Status
from shipyard.errors import InvalidInput

RELEASE_GATES: tuple[str, ...] = ("test", "analyze", "qa")
# A gate must have finished before the release stage runs.
GATEABLE: tuple[str, ...] = STAGES[: STAGES.index("release")]


class Verdict(StrEnum):
    """What the policy made of one required stage's status."""

    PASSED = "passed"
    SKIP_ALLOWED = "skip allowed by policy"  # the repository allows this stage to be skipped
    STATED_NONE = "project states none"  # the project states it has no such stage
    REFUSED = "refused"


@dataclass(frozen=True)
class PromotionPolicy:
    require: tuple[str, ...] = ()
    allow_skipped: tuple[str, ...] = ()
    # From a project's statement: stages it does not have, so ``skipped`` is their answer.
    stated_none: tuple[str, ...] = ()
    statement: str = ""  # the statement as the summary quotes it: "release.requires [analyze]"


@dataclass(frozen=True)
class Check:
    stage: str
    status: str  # the stage's status, or "unknown" when there is no record of it
    verdict: Verdict


@dataclass(frozen=True)
class Decision:
    allowed: bool
    checks: tuple[Check, ...]
    evidence: str  # where the statuses came from: "run #3" or "imported properties"
    statement: str = ""  # the project's statement the policy applied, if any

    def summary(self) -> str:
        """One line for the audit log and the terminal: ``test passed, qa skipped (allowed)``."""
        parts = [f"{c.stage} {c.status}{self._why(c)}" for c in self.checks]
        return f"{self.evidence}: " + (", ".join(parts) or "no stages required")

    def _why(self, check: Check) -> str:
        if check.verdict is Verdict.SKIP_ALLOWED:
            return " (skip allowed by policy)"
        if check.verdict is Verdict.STATED_NONE:
            return f" (project states none: {self.statement})"
        return ""

    @property
    def refused(self) -> list[Check]:
        return [check for check in self.checks if check.verdict is Verdict.REFUSED]


def decide(policy: PromotionPolicy, statuses: Mapping[str, str], evidence: str) -> Decision:
    """Whether stage ``statuses`` satisfy ``policy``."""
    checks = tuple(
        _check(policy, stage, statuses.get(stage, "unknown")) for stage in policy.require
    )
    allowed = all(c.verdict is not Verdict.REFUSED for c in checks)
    return Decision(allowed, checks, evidence, policy.statement)


def _check(policy: PromotionPolicy, stage: str, status: str) -> Check:
    if status == Status.PASSED.value:
        return Check(stage, status, Verdict.PASSED)
    if status == Status.SKIPPED.value and stage in policy.stated_none:
        return Check(stage, status, Verdict.STATED_NONE)
    if status == Status.SKIPPED.value and stage in policy.allow_skipped:
        return Check(stage, status, Verdict.SKIP_ALLOWED)
    return Check(stage, status, Verdict.REFUSED)


@dataclass(frozen=True)
class ProjectStatement:
    """What a project says about its own release: ``release.requires`` in its shipyard.yaml.

    ``waived`` are the release gates it neither lists nor configures: it states it has none.
    Kept in the build-info and in the signed build statement as :meth:`to_dict`.
    """

    requires: tuple[str, ...]
    waived: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"requires": list(self.requires), "waived": list(self.waived)}

    @classmethod
    def from_dict(cls, data: Any) -> ProjectStatement | None:
        """The statement a build-info or a signed build statement carries; None without one."""
        if not isinstance(data, Mapping):
            return None
        requires, waived = data.get("requires"), data.get("waived")
        if not isinstance(requires, list) or not isinstance(waived, list):
            return None
        # Only stages that can gate count; a waiver is only ever one of the release gates.
        kept = tuple(str(stage) for stage in requires if stage in GATEABLE)
        none = tuple(s for s in RELEASE_GATES if s in waived and s not in kept)
        return cls(kept, none)

    def text(self) -> str:
        return f"release.requires [{', '.join(self.requires)}]"


def stated(requires: Iterable[str], configured: Iterable[str]) -> ProjectStatement:
    """The statement of a project listing ``requires`` and configuring the ``configured`` stages.

    A release gate it leaves out stays required when the project configures it: only a stage a
    project does not have can be stated away.
    """
    listed, present = tuple(dict.fromkeys(requires)), set(configured)
    waived = tuple(s for s in RELEASE_GATES if s not in listed and s not in present)
    return ProjectStatement(listed, waived)


def effective_policy(
    repository: PromotionPolicy, statement: ProjectStatement | None
) -> PromotionPolicy:
    """The policy one artifact is held to: its repository's, with its project's statement.

    The statement's stages are required and may not be skipped (tightening); its waived stages
    may be skipped (the project has none). Nothing the repository requires is dropped.
    """
    if statement is None:
        return repository
    require = tuple(dict.fromkeys((*repository.require, *statement.requires)))
    allowed = tuple(s for s in repository.allow_skipped if s not in statement.requires)
    return PromotionPolicy(require, allowed, statement.waived, statement.text())


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
