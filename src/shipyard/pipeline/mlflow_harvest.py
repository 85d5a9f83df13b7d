"""Harvest what a train command logged to MLflow: run with the BUILD ENVIRONMENT's python.

Shipyard does not depend on MLflow; the project's environment does. So this script imports
nothing from Shipyard, only the standard library and the environment's ``mlflow``, and speaks
through MLflow's public API (runs, logged models, artifact downloads), which hides where each
MLflow version keeps them (3.x: ``LoggedModel`` under ``models/m-<id>/artifacts``).
``pipeline/mlflow.py`` runs it as ``python -I`` (so this folder is not on ``sys.path``):

    python -I mlflow_harvest.py TRACKING_URI RESULT_JSON [MODEL_DEST]

Writes RESULT_JSON: ``{"params", "metrics", "run_id", "model_id", "note"}`` or ``{"error"}``
(one sentence). With MODEL_DEST, the latest logged model is downloaded into that folder.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

NO_MODEL = "the train command logged no model to MLflow and wrote nothing to $SHIPYARD_MODEL_DIR"


class HarvestError(Exception):
    """One sentence for the build log and the stage's message."""


def main(argv: list[str]) -> int:
    uri, result = argv[0], Path(argv[1])
    destination = Path(argv[2]) if len(argv) > 2 else None
    try:
        answer = harvest(uri, destination)
    except HarvestError as error:
        answer = {"error": str(error)}
    except Exception as error:  # MLflow's own errors, as one sentence for the stage
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        answer = {
            "error": f"MLflow could not read the run's store: {type(error).__name__}: {first}"
        }
    result.write_text(json.dumps(answer), encoding="utf-8")
    return 0


def harvest(uri: str, destination: Path | None) -> dict[str, Any]:
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if destination is None:
        run = _latest_run(client, experiments)
        return _answer(run, model_id=None, note=None)
    logged = _logged_models(mlflow, experiments)
    models = [model for model in logged if _finished(model)]
    if not models:
        raise HarvestError(NO_MODEL if not logged else _UNFINISHED.format(len(logged)))
    model = models[0]
    _download(mlflow, model.artifact_location, destination)
    run = client.get_run(model.source_run_id) if model.source_run_id else None
    note = None
    if len(logged) > 1:
        unfinished = len(logged) - len(models)
        more = f" ({unfinished} more did not finish)" if unfinished else ""
        latest = f"the latest, {_describe(model)}, is used"
        counted = f"{len(models)} model" + ("s" if len(models) > 1 else "")
        note = f"{counted} logged to MLflow{more}; {latest}"
    return _answer(run, model_id=model.model_id, note=note)


_UNFINISHED = "the train command logged {} models to MLflow and none of them finished saving"


def _finished(model: Any) -> bool:
    """Not PENDING or FAILED: a log_model that raised leaves its LoggedModel FAILED."""
    status = getattr(model, "status", None)
    return str(getattr(status, "value", status)) not in ("PENDING", "FAILED")


def _mlflow() -> Any:
    try:
        mlflow = importlib.import_module("mlflow")
    except ImportError:
        raise HarvestError(
            "the build environment has no mlflow: add mlflow to the install file"
        ) from None
    if not hasattr(mlflow, "search_logged_models"):
        raise HarvestError(
            f"MLflow {mlflow.__version__} in the build environment predates logged models: "
            "require mlflow>=3 in the install file"
        )
    return mlflow


def _latest_run(client: Any, experiments: list[str]) -> Any:
    if not experiments:
        return None
    runs = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def _logged_models(mlflow: Any, experiments: list[str]) -> list[Any]:
    if not experiments:
        return []
    newest_first = [{"field_name": "creation_time", "ascending": False}]
    found = mlflow.search_logged_models(
        experiment_ids=experiments, order_by=newest_first, output_format="list"
    )
    return list(found)


def _download(mlflow: Any, artifact_uri: str, destination: Path) -> None:
    """The model's files into ``destination`` (the folder holding its ``MLmodel``)."""
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=scratch)
        )
        found = sorted(local.rglob("MLmodel"), key=lambda path: len(path.parts))
        if not found:
            raise HarvestError(f"the model logged at {artifact_uri} has no MLmodel file")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(found[0].parent, destination)


def _describe(model: Any) -> str:
    return f"{model.model_id} (name {model.name!r}, run {model.source_run_id})"


def _answer(run: Any, *, model_id: str | None, note: str | None) -> dict[str, Any]:
    return {
        "run_id": run.info.run_id if run is not None else None,
        "params": dict(run.data.params) if run is not None else {},
        "metrics": dict(run.data.metrics) if run is not None else {},
        "model_id": model_id,
        "note": note,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
