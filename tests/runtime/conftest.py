"""Real model servers for the runtime tests: the iris example trained once, plus tiny fakes.

Servers are session-scoped (starting one costs a second or two of imports) and every process
is stopped in a ``finally``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.runtime.interface import RunningServer, ServerSpec
from shipyard.runtime.local import LocalRuntime

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris"

FAKE_MODELS = '''
class AlwaysSetosa:
    """Version 2 in the gateway tests: cheap to start, easy to tell apart."""

    def __init__(self, model_dir):
        self.model_dir = model_dir

    def predict(self, records):
        if any(isinstance(r, dict) and r.get("explode") for r in records):
            raise RuntimeError("exploded on purpose")
        return ["setosa" for _ in records]


class Broken:
    def __init__(self, model_dir):
        raise RuntimeError("no weights in " + model_dir + " (broken on purpose)")
'''


@pytest.fixture(scope="session")
def runtime() -> LocalRuntime:
    return LocalRuntime()


@pytest.fixture(scope="session")
def iris_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("iris-model")
    python = REPO / ".venv" / "bin" / "python"
    subprocess.run(
        [
            str(python if python.exists() else sys.executable),
            str(IRIS / "train.py"),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def fake_code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code = tmp_path_factory.mktemp("fake-code")
    (code / "fake_models.py").write_text(textwrap.dedent(FAKE_MODELS))
    return code


def spec(
    version: str, model_dir: Path, code_dir: Path, serve: str | dict[str, str], log: Path
) -> ServerSpec:
    return ServerSpec(
        version=version,
        python=Path(sys.executable),
        code_dir=code_dir,
        model_dir=model_dir,
        serve=serve,
        model_name="iris",
        log=log,
    )


SpecFactory = Callable[[str, Path, Path, "str | dict[str, str]", Path], ServerSpec]


@pytest.fixture(scope="session")
def make_spec() -> SpecFactory:
    """spec(version, model_dir, code_dir, serve, log), served by this test interpreter."""
    return spec


def started(runtime: LocalRuntime, server_spec: ServerSpec) -> Iterator[RunningServer]:
    server = runtime.start_server(server_spec, ready_timeout=60)
    try:
        yield server
    finally:
        runtime.stop_server(server.pid)


@pytest.fixture(scope="session")
def iris_server(
    runtime: LocalRuntime, iris_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("logs") / "iris-1.log"
    yield from started(runtime, spec("1", iris_model_dir, IRIS, "iris_model.serve:Model", log))


@pytest.fixture(scope="session")
def skops_server(
    runtime: LocalRuntime, iris_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("logs") / "iris-skops.log"
    serve = {"format": "skops", "path": "model.skops"}
    yield from started(runtime, spec("1s", iris_model_dir, IRIS, serve, log))


@pytest.fixture(scope="session")
def setosa_server(
    runtime: LocalRuntime, fake_code_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    logs = tmp_path_factory.mktemp("logs")
    yield from started(
        runtime, spec("2", logs, fake_code_dir, "fake_models:AlwaysSetosa", logs / "2.log")
    )
