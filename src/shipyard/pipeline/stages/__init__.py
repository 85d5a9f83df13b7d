"""The pipeline's stages, one function each, in the order of ARCHITECTURE.md 3."""

from __future__ import annotations

from collections.abc import Callable

from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.pipeline.stages.build import build
from shipyard.pipeline.stages.checks import analyze, test
from shipyard.pipeline.stages.production import canary, live
from shipyard.pipeline.stages.qa import qa
from shipyard.pipeline.stages.repository import publish, release
from shipyard.pipeline.stages.staging import staging

Stage = Callable[[RunContext], StageOutcome]

STAGE_FUNCTIONS: dict[str, Stage] = {
    "build": build,
    "test": test,
    "analyze": analyze,
    "publish": publish,
    "staging": staging,
    "qa": qa,
    "release": release,
    "canary": canary,
    "live": live,
}
