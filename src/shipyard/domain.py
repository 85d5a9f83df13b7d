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
