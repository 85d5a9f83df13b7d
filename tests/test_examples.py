"""The examples are the code users copy: they must model safe habits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.examples import example_path

pytest.importorskip("skops")

LOAD = """
import sys
from iris_model.serve import Model
try:
    Model(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__, exc)
    raise SystemExit(3)
print("loaded")
"""

DUMP = """
import os, sys
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer
model = (
    FunctionTransformer(os.system)
    if sys.argv[2] == "hostile"
    else LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0]], ["a", "b"])
)
sio.dump(model, sys.argv[1])
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(example_path("iris"))}
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )


def _model_dir(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / kind
    folder.mkdir()
    done = _python(DUMP, str(folder / "model.skops"), kind)
    assert done.returncode == 0, done.stderr
    return folder


def test_the_iris_server_loads_the_model_it_trains(tmp_path: Path) -> None:
    done = _python(LOAD, str(_model_dir(tmp_path, "genuine")))
    assert (done.returncode, done.stdout.strip()) == (0, "loaded"), done.stderr


def test_the_iris_server_refuses_a_skops_file_naming_types_it_does_not_expect(
    tmp_path: Path,
) -> None:
    done = _python(LOAD, str(_model_dir(tmp_path, "hostile")))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "UntrustedTypesFoundException" in done.stdout
    assert "system" in done.stdout
