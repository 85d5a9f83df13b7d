"""A cloudpickle MLflow model from commit to live: pickle is trusted by the build's provenance.

The model server loads pickle only for an artifact whose build signature verifies against a
trusted key and whose model scan passed, in staging and qa as in production. Before that rule,
staging refused pickle until the artifact was in ``release``, and ``release`` needed qa, so a
pickled MLflow model could never ship.
"""

from __future__ import annotations

import csv
from pathlib import Path

import httpx
import pytest

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.artifacts.attestations import may_load_pickle
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.signing import KeyFile
from shipyard.domain import Status
from shipyard.pipeline.context import free_port
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.interface import VERSION_HEADER

pytestmark = pytest.mark.e2e
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

TRAIN = """
import sys

import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

iris = load_iris(as_frame=True)
frame = iris.data
frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
labels = iris.target_names[iris.target]
model = LogisticRegression(max_iter=500).fit(frame, labels)
# Naming the requirements spares MLflow from inferring them (a slow subprocess).
options = {"signature": infer_signature(frame, model.predict(frame)), "pip_requirements": []}
mlflow.sklearn.save_model(
    model, sys.argv[1] + "/pyfunc", serialization_format="cloudpickle", **options
)
"""

CHECK = """
from sklearn.datasets import load_iris

assert load_iris().data.shape == (150, 4)
"""

CONFIG = """
name: {name}
python: "3.11"
install: requirements.txt
build:
  train: python train.py "$SHIPYARD_MODEL_DIR"
  timeout: 5m
model:
  serve: {{format: mlflow, path: pyfunc}}
test:
  run: python check.py
analyze:
  fail_on: high
  checks: [code, secrets, models]
  paths: [train.py]
environments:
  staging: {{}}
  production: {{port: {port}}}
qa:
  quality:
    data: data/holdout.csv
    label: species
    metrics: {{accuracy: {{min: 0.85}}}}
release: {{approval: auto}}
"""


def make_pickled_project(root: Path, name: str) -> tuple[Path, int]:
    from sklearn.datasets import load_iris

    repo, port = root / name, free_port()
    (repo / "data").mkdir(parents=True)
    (repo / "requirements.txt").write_text("mlflow-skinny\nscikit-learn\npandas\n")
    (repo / "train.py").write_text(TRAIN)
    (repo / "check.py").write_text(CHECK)
    (repo / "shipyard.yaml").write_text(CONFIG.format(name=name, port=port))
    iris = load_iris()
    with (repo / "data" / "holdout.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*FEATURES, "species"])
        for row, target in list(zip(iris.data, iris.target, strict=True))[::5]:
            writer.writerow([*map(float, row), iris.target_names[target]])
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "a cloudpickle MLflow model")
    return repo, port


def test_a_cloudpickle_mlflow_model_goes_from_commit_to_live(
    e2e_state: Adapters, tmp_path: Path
) -> None:
    repo, port = make_pickled_project(tmp_path, "iris-pickled")
    pipeline = Pipeline(e2e_state)
    run = pipeline.queue(repo)

    final = pipeline.execute(run)

    stages = {s.name: s for s in e2e_state.store.get_run("iris-pickled", run.number).stages}
    assert final is Status.PASSED, {name: s.message for name, s in stages.items()}
    assert stages["analyze"].summary["counts"]["model"]["blocking"] == 0
    assert stages["qa"].status == "passed" and stages["live"].status == "passed"
    assert e2e_state.store.in_repository("release", "iris-pickled", run.version)
    artifact = e2e_state.store.get_artifact("iris-pickled", run.version)
    keys = KeyFile.resolve(e2e_state.state.signing_key)
    assert may_load_pickle(Catalog(e2e_state.store), artifact, keys)
    sample = {"dataframe_records": [dict(zip(FEATURES, [6.3, 3.3, 6.0, 2.5], strict=True))]}
    response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=sample, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["virginica"]}
    assert response.headers[VERSION_HEADER] == run.version
