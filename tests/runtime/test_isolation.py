"""Two versions with different scikit-learn versions serve side by side, each in its own env.

Each environment is built by uv from its own requirements (as a deployment's is from its
artifact's lock), trains and saves its model with its own scikit-learn, and serves it through
LocalRuntime. Both answer at once, and each reports the library version it serves with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.executor import LocalExecutor, PythonEnv
from shipyard.paths import StateDir
from shipyard.runtime.interface import SERVING_REQUIREMENTS, RunningServer, ServerSpec
from shipyard.runtime.local import LocalRuntime

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
VERSIONS = {"old": "1.5.2", "new": "1.6.1"}

TRAIN = """
import json
import sys
import sklearn
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

iris = load_iris()
model = LogisticRegression(max_iter=500).fit(iris.data, iris.target_names[iris.target])
sio.dump(model, sys.argv[1] + "/model.skops")
with open(sys.argv[1] + "/trained-with", "w") as out:
    out.write(sklearn.__version__)
"""


def environment(root: Path, sklearn: str) -> PythonEnv:
    requirements = root / f"requirements-{sklearn}.txt"
    requirements.write_text(f"scikit-learn=={sklearn}\nskops\n")
    executor = LocalExecutor(StateDir(root, Path(os.environ["SHIPYARD_CACHE"])).ensure())
    return executor.python_env(requirements, PYTHON, SERVING_REQUIREMENTS)


@pytest.fixture(scope="module")
def servers(
    runtime: LocalRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningServer]]:
    root = tmp_path_factory.mktemp("isolation")
    running: dict[str, RunningServer] = {}
    try:
        for name, sklearn in VERSIONS.items():
            env = environment(root, sklearn)
            model_dir = root / f"model-{name}"
            model_dir.mkdir()
            subprocess.run(
                [str(env.python), "-c", TRAIN, str(model_dir)], check=True, capture_output=True
            )
            spec = ServerSpec(
                version=name,
                python=env.python,
                code_dir=model_dir,
                model_dir=model_dir,
                serve={"format": "skops", "path": "model.skops"},
                model_name="iris",
                log=root / f"{name}.log",
            )
            running[name] = runtime.start_server(spec, ready_timeout=90)
        yield running
    finally:
        for server in running.values():
            runtime.stop_server(server.pid)


def test_each_version_serves_with_its_own_scikit_learn(
    servers: dict[str, RunningServer],
) -> None:
    assert len(servers) == 2
    for name, server in servers.items():
        metadata = httpx.get(f"{server.endpoint}/v2/models/iris").json()
        assert metadata["runtime"]["scikit-learn"] == VERSIONS[name]
        assert metadata["versions"] == [name]


def test_both_answer_side_by_side(servers: dict[str, RunningServer]) -> None:
    body = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    with httpx.Client() as client:
        for _ in range(3):  # interleaved: both processes are up at once
            for server in servers.values():
                response = client.post(f"{server.endpoint}/invocations", json=body)
                assert response.json() == {"predictions": ["setosa", "virginica"]}
                assert response.headers["x-shipyard-version"] == server.version


def test_the_models_were_trained_with_those_versions(
    servers: dict[str, RunningServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    trained = {
        path.parent.name.removeprefix("model-"): path.read_text()
        for path in tmp_path_factory.getbasetemp().glob("isolation*/model-*/trained-with")
    }
    assert trained == {name: version for name, version in VERSIONS.items()}
    # Shipyard's own scikit-learn is neither: the servers did not borrow it.
    import sklearn

    assert sklearn.__version__ not in VERSIONS.values()
