"""MLflow projects in the build: a run-local tracking store, and what was logged to it.

The train command runs with ``MLFLOW_TRACKING_URI`` pointing into the run's own folder, never
the user's ``./mlruns`` or a remote server, so a build neither reads nor pollutes anyone's
experiments. When the command logged a model there instead of writing into
``$SHIPYARD_MODEL_DIR``, that model becomes the artifact's model; the logged run's params and
metrics go into build-info either way. MLflow lives in the build environment, not Shipyard's,
so the reading is done by ``mlflow_harvest.py`` under the environment's python.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.config.mlproject import MLFLOW_MODEL_PATH
from shipyard.config.schema import LoaderConfig
from shipyard.errors import StageFailed
from shipyard.pipeline.context import RunContext

__all__ = ["MLFLOW_MODEL_PATH", "Logged", "harvest", "model_written", "tracking_env"]

HELPER = Path(__file__).with_name("mlflow_harvest.py")
HARVEST_TIMEOUT = 300.0


@dataclass(frozen=True)
class Logged:
    """What the run-local store held after training."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    model_id: str | None = None  # set when the logged model became the artifact's model


def store_dir(ctx: RunContext) -> Path:
    return ctx.run_dir / "mlflow"


def tracking_env(ctx: RunContext) -> dict[str, str]:
    """Variables that send a train command's MLflow calls to the run-local store."""
    return {
        "MLFLOW_TRACKING_URI": store_dir(ctx).as_uri(),
        "MLFLOW_EXPERIMENT_NAME": ctx.project,
        # MLflow 3.x refuses a file store unless asked; it is the one local store that works
        # with mlflow-skinny too (a sqlite store needs SQLAlchemy, and puts artifacts in cwd).
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }


def model_written(ctx: RunContext) -> bool:
    return any(path.is_file() for path in ctx.model_dir.rglob("*"))


def harvest(ctx: RunContext) -> Logged | None:
    """Read the run-local store; None when the train command logged nothing to it."""
    store = store_dir(ctx)
    if not store.is_dir() or not any(store.iterdir()):
        return None
    take_model = not model_written(ctx)
    destination = ctx.model_dir / model_path(ctx) if take_model else None
    answer = _run_helper(ctx, destination)
    if "error" in answer:
        raise StageFailed(
            f"{_capitalised(str(answer['error']))}.",
            hint="Log the model with mlflow.<flavor>.log_model inside mlflow.start_run(), or "
            "save it into $SHIPYARD_MODEL_DIR; `shipyard logs` shows the command's output.",
        )
    if answer.get("run_id") is None and answer.get("model_id") is None:
        return None  # an empty store: MLflow was imported but nothing was logged
    logged = Logged(
        params=dict(answer.get("params") or {}),
        metrics=dict(answer.get("metrics") or {}),
        run_id=answer.get("run_id"),
        model_id=answer.get("model_id"),
    )
    _report(ctx, logged, answer.get("note"), destination)
    return logged


def model_path(ctx: RunContext) -> str:
    serve = ctx.config.model.serve
    if isinstance(serve, LoaderConfig) and serve.format == "mlflow":
        return serve.path
    return MLFLOW_MODEL_PATH


def _run_helper(ctx: RunContext, destination: Path | None) -> dict[str, Any]:
    if ctx.env is None:
        raise StageFailed("The build environment is not ready: the build stage did not make it.")
    result = ctx.run_dir / "mlflow-harvest.json"
    result.unlink(missing_ok=True)
    args = [str(ctx.env.python), "-I", str(HELPER), tracking_env(ctx)["MLFLOW_TRACKING_URI"]]
    args += [str(result), *([str(destination)] if destination is not None else [])]
    done = ctx.run_command(
        "build", shlex.join(args), timeout=HARVEST_TIMEOUT, env=tracking_env(ctx)
    )
    try:
        answer = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        answer = {"error": f"reading the MLflow store failed (exit code {done.exit_code})"}
    return answer if isinstance(answer, dict) else {"error": "the MLflow reader answered nonsense"}


def _report(ctx: RunContext, logged: Logged, note: Any, destination: Path | None) -> None:
    if isinstance(note, str) and note:
        ctx.say("build", note)
    counts = f"{_count(len(logged.params), 'param')}, {_count(len(logged.metrics), 'metric')}"
    ctx.say("build", f"MLflow run {logged.run_id}: {counts} into build-info")
    if destination is not None:
        where = destination.relative_to(ctx.model_dir).as_posix()
        ctx.say(
            "build",
            f"logged model {logged.model_id} is the artifact's model, "
            f"at {where}/ in $SHIPYARD_MODEL_DIR",
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _capitalised(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]
