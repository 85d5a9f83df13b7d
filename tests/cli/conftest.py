"""Drive the real `shipyard` command: in process (CliRunner) and as a real subprocess.

CliRunner shows what a command printed and which exception it ended with; the subprocess
(`python -m shipyard`) shows what a user sees: the exit code and `shipyard.cli.main`'s
"error: ... / next: ..." rendering on stderr. Rich wraps long lines at the terminal width,
so the tests compare text with its whitespace squeezed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gitrepos import git, make_repo
from servers import clean_env
from shipyard.cli.app import app
from shipyard.paths import StateDir
from shipyard.store import Store

Cli = Callable[..., Result]
Shipyard = Callable[..., subprocess.CompletedProcess[str]]
GitRepo = Callable[..., Path]

# A project with only what a run needs: an empty requirements file, a train command that
# writes the model, and a model class. Every later stage is left out, so it is skipped.
TINY_CONFIG = """\
name: tiny
install: requirements.txt
build:
  train: python -c "import os; open(os.environ['SHIPYARD_MODEL_DIR'] + '/answer.txt', 'w').write('42')"
model:
  serve: m:Model
"""
TINY_MODEL = """\
class Model:
    def __init__(self, model_dir):
        self.answer = open(f"{model_dir}/answer.txt").read()

    def predict(self, records):
        return [self.answer for _ in records]
"""


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    def create(name: str = "repo", **files: str) -> Path:
        return make_repo(tmp_path / name, files)

    return create


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state: Path) -> Iterator[Store]:
    """The store of ``state``, for setting up what a command should find."""
    opened = Store(StateDir(state).ensure().database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Invoke the command in process, from a folder with no shipyard.yaml."""
    monkeypatch.chdir(tmp_path)
    for name in ("SHIPYARD_STATE", "SHIPYARD_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture
def shipyard(tmp_path: Path) -> Shipyard:
    """Run ``python -m shipyard`` as a user would, from a folder with no shipyard.yaml."""

    def run(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        return run_shipyard([str(a) for a in args], tmp_path, **env)

    return run


def run_shipyard(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class RealRun:
    repo: Path
    state: Path
    sha: str
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> RealRun:
    """One real `shipyard run` of the tiny project; the tests of a module read its state."""
    root = tmp_path_factory.mktemp("real-run")
    files = {"shipyard.yaml": TINY_CONFIG, "requirements.txt": "", "m.py": TINY_MODEL}
    repo = make_repo(root / "tiny", files)
    state = root / "state"
    # The tiny project skips test, analyze and qa: let `release` take it, explicitly.
    loosen = ["artifacts", "policy", "release", "--allow-skipped", "test,analyze,qa"]
    run_shipyard([*loosen, "--reason", "tiny test project", "--state", str(state)], cwd=root)
    done = run_shipyard(["run", str(repo), "--state", str(state)], cwd=root)
    return RealRun(repo, state, git(repo, "rev-parse", "HEAD"), done)
