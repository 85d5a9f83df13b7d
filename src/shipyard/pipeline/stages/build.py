"""Stage 2, build: a clean workspace at the commit, the environment, training, one archive."""

from __future__ import annotations

import json
import platform
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.artifacts.archive import pack
from shipyard.artifacts.local import digest_of
from shipyard.data import DataReport
from shipyard.errors import StageFailed
from shipyard.pipeline import mlflow, preflight
from shipyard.pipeline.context import RunContext, StageOutcome
from shipyard.pipeline.stages.repository import release_statement
from shipyard.pipeline.stages.training_data import (
    check_data,
    data_info,
    data_summary,
    write_input_schema,
)
from shipyard.runtime.interface import SERVING_REQUIREMENTS
from shipyard.store import current_actor


def build(ctx: RunContext) -> StageOutcome:
    preflight.before_build(ctx)  # a port taken since the trigger fails here, not at go-live
    ctx.workspace = _workspace(ctx)
    lock_file = _lock_file(ctx)
    data = check_data(ctx)  # before the environment and training: a bad file fails at once
    ctx.say("build", f"preparing the Python {ctx.config.python} environment from {lock_file.name}")
    ctx.env = ctx.adapters.executor.python_env(lock_file, ctx.config.python, SERVING_REQUIREMENTS)
    how = "reused from the cache" if ctx.env.reused else "created"
    ctx.say("build", f"environment {ctx.env.key[:12]} {how} in {ctx.env.seconds:.2f}s")

    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = ctx.run_command(
        "build",
        ctx.config.build.train,
        timeout=ctx.config.build.timeout,
        env=mlflow.tracking_env(ctx),
    )
    train_seconds = time.monotonic() - started
    if result.exit_code != 0:
        raise StageFailed(
            f"The train command exited with {result.exit_code}.",
            hint="See `shipyard logs` for its output.",
        )
    logged = _trained_model(ctx)

    write_input_schema(ctx, data)  # after the harvest, which takes only an empty model folder
    ctx.build_info = _build_info(ctx, lock_file, train_seconds, data, logged)
    packed = pack(
        ctx.run_dir,
        model_dir=ctx.model_dir,
        code_dir=ctx.code_dir,
        lock_file=lock_file,
        build_info=ctx.build_info,
    )
    ctx.artifact_path = packed.path
    ctx.say(
        "build", f"packed {ctx.project}:{ctx.version} as {packed.digest} ({packed.size:,} bytes)"
    )
    return StageOutcome.passed(
        f"{ctx.project}:{ctx.version} {packed.digest[:19]}",
        digest=packed.digest,
        size=packed.size,
        version=ctx.version,
        env_reused=ctx.env.reused,
        env_seconds=round(ctx.env.seconds, 3),
        train_seconds=round(train_seconds, 3),
        **({"data": data_summary(data)} if data else {}),
    )


def _workspace(ctx: RunContext) -> Path:
    workspace = ctx.state.workspace(ctx.project, ctx.number)
    if workspace.exists():
        ctx.adapters.executor.release_workspace(ctx.repository, workspace)
    workspace.parent.mkdir(parents=True, exist_ok=True)
    ctx.say("build", f"checking out {ctx.sha} into {workspace}")
    return ctx.adapters.executor.prepare_workspace(ctx.repository, ctx.sha, workspace)


def _lock_file(ctx: RunContext) -> Path:
    lock_file = ctx.code_dir / ctx.config.install
    if not lock_file.is_file():
        raise StageFailed(
            f"The install file {ctx.config.install} is not in commit {ctx.sha[:12]}.",
            hint="Commit it, or point `install:` in shipyard.yaml at your lock or requirements file.",
        )
    return lock_file


def _trained_model(ctx: RunContext) -> mlflow.Logged | None:
    """What training left: a model in $SHIPYARD_MODEL_DIR, or one logged to MLflow."""
    logged = mlflow.harvest(ctx)
    if not mlflow.model_written(ctx):
        raise StageFailed(
            "The train command succeeded but wrote no model to $SHIPYARD_MODEL_DIR "
            "and logged none to MLflow.",
            hint=f"Save the model under the folder in $SHIPYARD_MODEL_DIR ({ctx.model_dir}), "
            "or log it with mlflow.<flavor>.log_model inside mlflow.start_run() (without "
            "mlflow.set_tracking_uri in the code: the build sets MLFLOW_TRACKING_URI).",
        )
    return logged


def _trained_values(ctx: RunContext, logged: mlflow.Logged | None) -> dict[str, Any]:
    """Params and metrics: the MLflow run's, then metrics.json's (which wins on a clash)."""
    trained = _read_json(ctx.model_dir / "metrics.json")
    params, metrics = trained.get("params", {}), trained.get("metrics", {})
    if logged is None:
        return {"params": params, "metrics": metrics}
    return {
        "params": {**logged.params, **(params if isinstance(params, dict) else {})},
        "metrics": {**logged.metrics, **(metrics if isinstance(metrics, dict) else {})},
    }


def _build_info(
    ctx: RunContext,
    lock_file: Path,
    train_seconds: float,
    data: DataReport | None = None,
    logged: mlflow.Logged | None = None,
) -> dict[str, Any]:
    trained = _trained_values(ctx, logged)
    info: dict[str, Any] = {
        "name": ctx.project,
        "version": ctx.version,
        "git": {"repository": str(ctx.repository), "ref": ctx.ref, "sha": ctx.sha},
        "run": ctx.number,
        "builder": {"actor": current_actor(), "host": socket.gethostname()},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "lock": {"file": ctx.config.install, "digest": _sha256(lock_file)},
        "data": data_info(ctx, data),
        "params": trained.get("params", {}),
        "metrics": trained.get("metrics", {}),
        "model": {
            "serve": ctx.config.model.serve
            if isinstance(ctx.config.model.serve, str)
            else ctx.config.model.serve.model_dump(),
            "name": ctx.config.model_name,
        },
        "train_seconds": round(train_seconds, 3),
        **release_statement(ctx.config),
    }
    if logged is not None:
        info["mlflow"] = {"run_id": logged.run_id, "model_id": logged.model_id}
    return info


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _sha256(path: Path) -> str:
    return digest_of(path).digest
