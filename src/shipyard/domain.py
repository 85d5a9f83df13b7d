"""The words Shipyard speaks everywhere: stage names and status values."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled-back"

    @property
    def finished(self) -> bool:
        return self not in (Status.QUEUED, Status.RUNNING, Status.WAITING)


class Role(StrEnum):
    """What a deployment is for in its environment."""

    STABLE = "stable"  # serves the traffic the canary does not
    CANARY = "canary"  # the new version under judgement
    CANDIDATE = "candidate"  # started for a go-live, until it serves all traffic
    STANDBY = "standby"  # the previous stable, kept ready for an instant rollback
    RETIRED = "retired"  # stopped


class TokenRole(StrEnum):
    """What an API token may do; each role may do everything the roles before it may."""

    VIEWER = "viewer"  # reads
    DEVELOPER = "developer"  # runs and cancels
    QA = "qa"  # approves what enters the release tree
    RELEASER = "releaser"  # approves canaries, steers rollouts, rolls back, deploys
    ADMIN = "admin"  # manages projects, tokens and policies

    def allows(self, needed: TokenRole) -> bool:
        order = list(TokenRole)
        return order.index(self) >= order.index(needed)


class RolloutAction(StrEnum):
    """What a person may ask of a canary rollout (``services/rollouts.py`` holds the rules)."""

    PROMOTE = "promote"  # end the current step (a manual step waits for this)
    ABORT = "abort"  # all traffic back to stable now
    PAUSE = "pause"  # hold the weights; the judge keeps watching
    RESUME = "resume"  # continue a paused rollout


class Gate(StrEnum):
    """Where a run may wait for a person's approval."""

    RELEASE = "release"  # before the artifact enters the release tree
    CANARY = "canary"  # before production sees it

    @property
    def approver(self) -> TokenRole:
        """The least role that may decide at this gate."""
        return TokenRole.QA if self is Gate.RELEASE else TokenRole.RELEASER


class NoticeKind(StrEnum):
    """What the server notifies a team of (outgoing webhooks, ``shipyard notify``)."""

    RUN_FAILED = "run.failed"
    APPROVAL_NEEDED = "approval.needed"
    ROLLED_BACK = "rolled-back"
    LIVE = "live"


class ApprovalStatus(StrEnum):
    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # nobody decided before the gate's approval_timeout


# The fixed order of ARCHITECTURE.md 3 (the trigger is the run itself).
STAGES: tuple[str, ...] = (
    "build",
    "test",
    "analyze",
    "publish",
    "staging",
    "qa",
    "release",
    "canary",
    "live",
)

# Stages that change a deployment environment: a run holds the environment lock through these.
DEPLOY_STAGES: tuple[str, ...] = ("staging", "qa", "release", "canary", "live")

DEV_REPOSITORY = "dev"
RELEASE_REPOSITORY = "release"
