"""The build stage and MLflow: a run-local store, the logged model harvested, params and metrics.

Real git repositories, the real executor and a real MLflow in the build environment (the
same requirements as the MLflow e2e project, so the environment is built once per session).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import git, make_repo
from shipyard.adapters import Adapters
from shipyard.config.loader import parse_config
from shipyard.errors import StageFailed
from shipyard.pipeline.context import RunContext
from shipyard.pipeline.stages.build import build
from shipyard.wiring import open_adapters

pytestmark = pytest.mark.e2e

REQUIREMENTS = "scikit-learn\nmlflow\npandas\npytest\n"
CONFIG = """\
name: logged
python: "3.11"
install: requirements.txt
build:
  train: python train.py
  timeout: 5m
model:
  serve: {format: mlflow, path: model}
"""
# Two models and a failed one in one run, then a metric; requirements named so MLflow does
# not infer them (a slow subprocess).
TWO_MODELS = """\
import json, os, sys
import mlflow, mlflow.sklearn
from sklearn.dummy import DummyRegressor

assert os.environ["MLFLOW_EXPERIMENT_NAME"] == "logged"
with mlflow.start_run():
    mlflow.log_param("alpha", 0.5)
    first = DummyRegressor(strategy="constant", constant=1.0).fit([[0.0]], [1.0])
    mlflow.sklearn.log_model(first, name="first", pip_requirements=[])
    second = DummyRegressor(strategy="constant", constant=2.0).fit([[0.0]], [2.0])
    mlflow.sklearn.log_model(second, name="second", pip_requirements=[])
    try:  # a log_model that fails leaves a FAILED logged model behind, the newest
        mlflow.sklearn.log_model(object(), name="broken", pip_requirements=[])
    except mlflow.exceptions.MlflowException:
        pass
    mlflow.log_metric("rmse", 0.25)
if len(sys.argv) > 1:  # the command also writes its own model, and a metrics.json
    out = os.environ["SHIPYARD_MODEL_DIR"]
    open(os.path.join(out, "own.txt"), "w").write("mine")
    json.dump({"metrics": {"rmse": 0.5, "own": 1.0}}, open(os.path.join(out, "metrics.json"), "w"))
"""
NO_MODEL = """\
import mlflow

with mlflow.start_run():
    mlflow.log_param("alpha", 0.5)
"""


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[Adapters]:
    opened = open_adapters(tmp_path / "state")
    yield opened
    opened.store.close()


def build_context(adapters: Adapters, repo: Path, config: str = CONFIG) -> RunContext:
    sha = git(repo, "rev-parse", "HEAD")
    adapters.store.ensure_project("logged", str(repo))
    run = adapters.store.create_run("logged", sha, "main")
    return RunContext(adapters, "logged", run.number, sha, "main", repo, parse_config(config))


def project(tmp_path: Path, train: str, config: str = CONFIG) -> Path:
    files = {"requirements.txt": REQUIREMENTS, "train.py": train, "shipyard.yaml": config}
    return make_repo(tmp_path / "repo", files)


def test_the_latest_logged_model_becomes_the_artifacts_model(
    adapters: Adapters, tmp_path: Path
) -> None:
    ctx = build_context(adapters, project(tmp_path, TWO_MODELS))
    build(ctx)
    model_id = ctx.build_info["mlflow"]["model_id"]
    assert f"model_id: {model_id}\n" in (ctx.model_dir / "model" / "MLmodel").read_text()
    assert ctx.build_info["params"] == {"alpha": "0.5"}
    assert ctx.build_info["metrics"] == {"rmse": 0.25}
    log = ctx.log_path("build").read_text()
    latest = f"the latest, {model_id} (name 'second'"
    assert f"2 models logged to MLflow (1 more did not finish); {latest}" in log
    assert (ctx.run_dir / "mlflow").is_dir()  # the run-local store
    assert not (ctx.code_dir / "mlruns").exists() and not (ctx.code_dir / "mlflow.db").exists()


def test_a_model_written_to_the_model_dir_wins_and_both_metrics_are_kept(
    adapters: Adapters, tmp_path: Path
) -> None:
    config = CONFIG.replace("train: python train.py", "train: python train.py --own")
    ctx = build_context(adapters, project(tmp_path, TWO_MODELS, config), config)
    build(ctx)
    assert sorted(p.name for p in ctx.model_dir.iterdir()) == ["metrics.json", "own.txt"]
    assert ctx.build_info["params"] == {"alpha": "0.5"}
    assert ctx.build_info["metrics"] == {"rmse": 0.5, "own": 1.0}  # metrics.json wins a clash
    assert ctx.build_info["mlflow"]["model_id"] is None


def test_a_run_without_a_logged_model_fails_in_one_sentence(
    adapters: Adapters, tmp_path: Path
) -> None:
    ctx = build_context(adapters, project(tmp_path, NO_MODEL))
    with pytest.raises(StageFailed) as caught:
        build(ctx)
    assert str(caught.value) == (
        "The train command logged no model to MLflow and wrote nothing to $SHIPYARD_MODEL_DIR."
    )


def test_no_mlflow_and_no_model_says_both_ways_to_save_one(
    adapters: Adapters, tmp_path: Path
) -> None:
    ctx = build_context(adapters, project(tmp_path, "print('trained, saved nothing')\n"))
    with pytest.raises(StageFailed) as caught:
        build(ctx)
    assert "wrote no model to $SHIPYARD_MODEL_DIR and logged none to MLflow" in str(caught.value)
    assert "log_model" in (caught.value.hint or "")
