"""How fast the `shipyard` command answers, against typer and rich themselves.

Not a test: the figures depend on the machine. Run it from the repository root:

    .venv/bin/python benchmarks/cli.py [--runs 20]

It times ``shipyard --help``, ``shipyard --version`` and ``shipyard status`` (on a state
directory it fills with a few runs) against ``python -c "import typer, rich"``, the floor any
typer CLI pays, all in the same run so that the ratios hold on a loaded machine too. With
hyperfine on the PATH (Debian: ``apt install hyperfine``) it does the timing; otherwise a loop
of subprocesses timed with ``time.perf_counter``. Goals on an idle machine: ``--help`` and
``--version`` under 0.3 s, ``status`` under 0.5 s. Beside the median wall time it prints the
CPU time (user + system) a command used, which a busy machine inflates much less.

The commands run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed), as an
installed Shipyard runs: without it every start compiles Shipyard's modules again.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.paths import StateDir
from shipyard.store import Store

GOALS = {"--help": 0.3, "--version": 0.3, "status": 0.5}
PEER = "import typer, rich"
Timing = tuple[float, float]  # median wall seconds, mean CPU seconds (user + system)


def main() -> None:
    options = parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-cli-bench-") as root:
        state = make_state(Path(root) / "state", options.runs_in_state)
        env = {**os.environ, "SHIPYARD_STATE": str(state), "COLUMNS": "120"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {
            "typer+rich": [sys.executable, "-c", PEER],
            **{name: [*shipyard_command(), *name.split()] for name in GOALS},
        }
        for argv in commands.values():  # a failing command would time its error message
            subprocess.run(argv, env=env, cwd=root, check=True, capture_output=True)
        timings = time_commands(commands, env, root, options.runs)
    report(timings)


def shipyard_command() -> list[str]:
    """The console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("shipyard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shipyard"]


def make_state(root: Path, runs: int) -> Path:
    """A state directory with ``runs`` runs of one project, through the real store."""
    store = Store(StateDir(root).ensure().database_url)
    try:
        store.ensure_project("bench", "/repos/bench")
        for number in range(runs):
            store.create_run("bench", f"{number:040x}", "main")
    finally:
        store.close()
    return root


def time_commands(
    commands: dict[str, list[str]], env: dict[str, str], cwd: str, runs: int
) -> dict[str, Timing]:
    if shutil.which("hyperfine"):
        return with_hyperfine(commands, env, cwd, runs)
    return with_loop(commands, env, cwd, runs)


def with_hyperfine(
    commands: dict[str, list[str]], env: dict[str, str], cwd: str, runs: int
) -> dict[str, Timing]:
    print(f"timing with hyperfine ({runs} runs each, 3 warm-ups)", flush=True)
    export = Path(cwd) / "hyperfine.json"
    argv = ["hyperfine", "--shell=none", "--warmup", "3", "--runs", str(runs), "--style", "none"]
    argv += ["--export-json", str(export)]
    for name, command in commands.items():
        argv += [f"--command-name={name}", shlex.join(command)]
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    results = json.loads(export.read_text())["results"]
    return {r["command"]: (float(r["median"]), float(r["user"] + r["system"])) for r in results}


def with_loop(
    commands: dict[str, list[str]], env: dict[str, str], cwd: str, runs: int
) -> dict[str, Timing]:
    print(f"timing with a loop of subprocesses ({runs} runs each; no hyperfine)", flush=True)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so a burst of load falls on every command alike
        for name, argv in commands.items():
            before = children_cpu()
            started = time.perf_counter()
            subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
            walls[name].append(time.perf_counter() - started)
            cpus[name].append(children_cpu() - before)
    return {name: (statistics.median(walls[name]), statistics.mean(cpus[name])) for name in walls}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report(timings: dict[str, Timing]) -> None:
    peer_wall, peer_cpu = timings["typer+rich"]
    print(f"{'':<34}{'wall (median)':>17}{'cpu (mean)':>17}{'goal (idle)':>13}")
    rows: list[tuple[str, str, float | None]] = [(f"python -c {PEER!r}", "typer+rich", None)]
    rows += [(f"shipyard {name}", name, goal) for name, goal in GOALS.items()]
    for label, key, goal in rows:
        wall, cpu = timings[key]
        print(
            f"{label:<34}{wall * 1000:>7.0f} ms {wall / peer_wall:>5.1f}x"
            f"{cpu * 1000:>7.0f} ms {cpu / peer_cpu:>5.1f}x"
            + (f"{goal * 1000:>10.0f} ms" if goal else "")
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each command")
    parser.add_argument("--runs-in-state", type=int, default=5, help="runs `status` lists")
    return parser.parse_args()


if __name__ == "__main__":
    main()
