"""Tiny real projects for the queue and restart tests: a git repository each, a train script
that can announce itself and wait for a file, and a state directory whose release policy lets
a project without tests, analysis or QA through."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.policy import change_policy

CONFIG = """\
name: {name}
install: requirements.txt
build:
  train: python train.py {args}
  timeout: 120s
model:
  serve: m:Model
"""

# Writes the model; with --mark it first creates a file, with --await it then waits for one
# (so a test can hold a build in the running state for as long as it needs).
TRAIN = """\
import os, pathlib, sys, time

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if "--mark" in args:
    pathlib.Path(args["--mark"]).write_text(str(os.getpid()))
if "--await" in args:
    deadline = time.monotonic() + 120
    while not pathlib.Path(args["--await"]).exists():
        if time.monotonic() > deadline:
            sys.exit("gave up waiting for " + args["--await"])
        time.sleep(0.05)
time.sleep(float(args.get("--sleep", 0)))
pathlib.Path(os.environ["SHIPYARD_MODEL_DIR"], "answer.txt").write_text("42")
"""

MODEL = """\
class Model:
    def __init__(self, model_dir):
        self.answer = open(f"{model_dir}/answer.txt").read()

    def predict(self, records):
        return [self.answer for _ in records]
"""


def write_project(repo: Path, name: str, *train_args: str) -> str:
    """Write (or rewrite) the project at ``repo`` and commit it; returns the sha."""
    fresh = not (repo / ".git").exists()
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "shipyard.yaml").write_text(CONFIG.format(name=name, args=" ".join(train_args)))
    (repo / "requirements.txt").write_text("")
    (repo / "train.py").write_text(TRAIN)
    (repo / "m.py").write_text(MODEL)
    if fresh:
        git(repo, "init", "-q", "-b", "main")
    return commit(repo, f"{name} {' '.join(train_args)}")


def loosen_release_policy(adapters: Adapters) -> None:
    """These projects have no tests, analysis or QA: let `release` take them, explicitly."""
    catalog = Catalog(adapters.store)
    loosened = change_policy(catalog.policy("release"), allow_skipped=["test", "analyze", "qa"])
    catalog.set_policy("release", loosened, "queue tests: tiny projects without checks")


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
