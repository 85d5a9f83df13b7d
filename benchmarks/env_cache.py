"""How much the environment cache saves: a cold build against asking for the same env again.

Not a test: it downloads real packages. Run it from the repository root:

    .venv/bin/python benchmarks/env_cache.py [--requirements FILE] [--python 3.11]

Three figures, all into one throw-away state directory:

* cold:   no env and an empty uv cache (a new machine, or a first run);
* warm:   the env folder deleted but uv's cache kept (a new lock over mostly known packages);
* reused: the same lock again, which is what every later run of an unchanged project pays.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from shipyard.executor import LocalExecutor, PythonEnv
from shipyard.paths import StateDir
from shipyard.runtime.interface import SERVING_REQUIREMENTS

DEFAULT_REQUIREMENTS = Path(__file__).resolve().parent.parent / "examples/iris/requirements.txt"


def main() -> None:
    options = parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-env-bench-") as root:
        executor = LocalExecutor(StateDir(Path(root)).ensure())

        def ask() -> PythonEnv:
            return executor.python_env(options.requirements, options.python, options.extra)

        cold = ask()
        shutil.rmtree(cold.path)
        warm = ask()
        reused = ask()
    assert not cold.reused and not warm.reused and reused.reused
    print(f"requirements: {options.requirements} + {' '.join(options.extra)}")
    print(f"python:       {options.python}")
    print(f"cold build:   {cold.seconds:8.3f} s")
    print(f"warm build:   {warm.seconds:8.3f} s  (uv cache kept, env rebuilt)")
    print(f"reused:       {reused.seconds * 1000:8.3f} ms")
    print(f"cold/reused:  {cold.seconds / reused.seconds:8.0f}x")
    print(f"warm/reused:  {warm.seconds / reused.seconds:8.0f}x")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS)
    parser.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    parser.add_argument(
        "--extra", nargs="*", default=list(SERVING_REQUIREMENTS), help="extra requirements"
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
