"""An MLflow project, shaped like the public ElasticNet-on-wine example, goes live unchanged.

The project is written here (its own small code and a wine-like CSV from scikit-learn's
bundled wine data): an ``MLproject`` whose ``main`` entry point runs ``python train.py
{alpha} {l1_ratio}``, a ``conda.yaml``, and a ``train.py`` that logs params, metrics and the
model to MLflow and writes nothing to $SHIPYARD_MODEL_DIR. The user runs the real
``shipyard init``, turns on the environments and QA the starter shows commented out (the only
edit, in ``shipyard.yaml``), commits, and runs. Nothing in the project's code changes.

It has a one-test ``tests/`` folder (and pytest in ``conda.yaml``) because the release
repository's policy requires a passed test stage.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.domain import Status
from shipyard.pipeline.context import free_port
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.interface import VERSION_HEADER

pytestmark = pytest.mark.e2e
NAME = "wine-mlflow"

MLPROJECT = """\
name: tutorial

conda_env: conda.yaml

entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.42}
      l1_ratio: {type: float, default: 0.17}
    command: "python train.py {alpha} {l1_ratio}"
"""

CONDA = """\
name: tutorial
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - scikit-learn
      - mlflow
      - pandas
      - pytest
"""

TRAIN = """\
# ElasticNet on the wine-quality CSV beside this file; everything goes to MLflow.
import os
import sys

import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

import mlflow
import mlflow.sklearn


def eval_metrics(actual, pred):
    rmse = np.sqrt(mean_squared_error(actual, pred))
    return rmse, mean_absolute_error(actual, pred), r2_score(actual, pred)


if __name__ == "__main__":
    np.random.seed(40)
    wine_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wine-quality.csv")
    data = pd.read_csv(wine_path)
    train, test = train_test_split(data)
    train_x, test_x = train.drop(["quality"], axis=1), test.drop(["quality"], axis=1)
    train_y, test_y = train[["quality"]], test[["quality"]]

    alpha = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    l1_ratio = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5

    with mlflow.start_run():
        lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
        lr.fit(train_x, train_y)
        rmse, mae, r2 = eval_metrics(test_y, lr.predict(test_x))
        print("Elasticnet model (alpha=%f, l1_ratio=%f):" % (alpha, l1_ratio))
        print("  RMSE: %s  MAE: %s  R2: %s" % (rmse, mae, r2))
        mlflow.log_param("alpha", alpha)
        mlflow.log_param("l1_ratio", l1_ratio)
        mlflow.log_metric("rmse", rmse)
        mlflow.log_metric("r2", r2)
        mlflow.log_metric("mae", mae)
        mlflow.sklearn.log_model(lr, "model")
"""

DATA_TEST = """\
import csv
from pathlib import Path


def test_the_data_has_a_quality_column():
    with (Path(__file__).parents[1] / "wine-quality.csv").open() as rows:
        assert "quality" in next(csv.reader(rows))
"""

# What the user uncomments and fills in below the starter's commented examples.
ENABLED = """
environments:
  staging: {{}}
  production: {{port: {port}}}
qa:
  quality:
    data: wine-quality.csv
    label: quality
    metrics: {{rmse: {{max: 1.5}}}}
release: {{approval: auto}}
"""


def write_wine_project(repo: Path) -> list[str]:
    """The project's files, committed as its author left them; the CSV's feature names."""
    from sklearn.datasets import load_wine

    (repo / "tests").mkdir(parents=True)
    files = {"MLproject": MLPROJECT, "conda.yaml": CONDA, "train.py": TRAIN}
    files["tests/test_data.py"] = DATA_TEST
    for name, text in files.items():
        (repo / name).write_text(text)
    wine = load_wine()
    features = [name.replace("/", "_") for name in wine.feature_names]
    quality = {0: 7.0, 1: 5.0, 2: 6.0}  # the three cultivars as wine-quality-like scores
    with (repo / "wine-quality.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*features, "quality"])
        for row, target in zip(wine.data, wine.target, strict=True):
            writer.writerow([*map(float, row), quality[int(target)]])
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "ElasticNet on wine, tracked with MLflow")
    return features


def shipyard_init(repo: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shipyard", "init", str(repo)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_an_mlflow_project_goes_from_init_to_live_without_a_code_change(
    e2e_state: Adapters, tmp_path: Path
) -> None:
    repo, port = tmp_path / NAME, free_port()
    features = write_wine_project(repo)
    authored = git(repo, "rev-parse", "HEAD")

    init = shipyard_init(repo)

    assert init.returncode == 0, init.stderr
    lines = init.stdout.splitlines()
    assert "wrote requirements.txt from conda.yaml (4 packages)" in lines
    assert "appended .shipyard/, mlruns/, mlflow.db to .gitignore" in lines
    assert "nothing changed in your code" in lines
    requirements = (repo / "requirements.txt").read_text().splitlines()
    assert requirements[1:] == ["scikit-learn", "mlflow", "pandas", "pytest"]
    starter = (repo / "shipyard.yaml").read_text()
    assert "  train: python train.py 0.42 0.17\n" in starter
    assert "  serve: {format: mlflow, path: model}\n" in starter
    (repo / "shipyard.yaml").write_text(starter + ENABLED.format(port=port))
    commit(repo, "shipyard init")
    changed = git(repo, "diff", "--name-only", authored, "HEAD").splitlines()
    assert sorted(changed) == [".gitignore", "requirements.txt", "shipyard.yaml"]

    pipeline = Pipeline(e2e_state)
    run = pipeline.queue(repo)
    final = pipeline.execute(run)

    stages = {s.name: s for s in e2e_state.store.get_run(NAME, run.number).stages}
    assert final is Status.PASSED, {name: s.message for name, s in stages.items()}
    assert stages["live"].status == "passed"
    info = e2e_state.store.get_artifact(NAME, run.version).build_info
    assert info["params"] == {"alpha": "0.42", "l1_ratio": "0.17"}  # MLflow keeps them as text
    assert set(info["metrics"]) == {"rmse", "r2", "mae"}
    assert info["metrics"]["rmse"] < 1.5
    assert info["mlflow"]["model_id"].startswith("m-")
    build_log = e2e_state.state.stage_log(NAME, run.number, "build").read_text()
    assert f"logged model {info['mlflow']['model_id']} is the artifact's model" in build_log

    record = dict(
        zip(
            features,
            [13.2, 1.8, 2.1, 17.0, 100.0, 2.6, 2.7, 0.3, 1.8, 5.0, 1.0, 3.0, 1100.0],
            strict=True,
        )
    )
    invocations = httpx.post(
        f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": [record]}, timeout=10
    )
    assert invocations.status_code == 200, invocations.text
    assert invocations.headers[VERSION_HEADER] == run.version
    [predicted] = invocations.json()["predictions"]
    oip = {
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP64", "data": [value]}
            for name, value in record.items()
        ]
    }
    infer = httpx.post(f"http://127.0.0.1:{port}/v2/models/{NAME}/infer", json=oip, timeout=10)
    assert infer.status_code == 200, infer.text
    assert infer.json()["outputs"][0]["data"] == pytest.approx([predicted])

    assert git(repo, "status", "--porcelain") == ""  # no mlruns/ or mlflow.db left in the repo
    assert git(repo, "diff", "--name-only", authored, "HEAD", "--", "train.py", "MLproject") == ""
