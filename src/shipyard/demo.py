"""`shipyard demo`: the iris example from a commit to live, then a second version by canary."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.rule import Rule

from shipyard.cli.render import RichReporter, run_table
from shipyard.domain import Status
from shipyard.examples import example_path
from shipyard.pipeline import deploy
from shipyard.pipeline.context import free_port
from shipyard.pipeline.engine import Pipeline
from shipyard.runtime.interface import VERSION_HEADER
from shipyard.services.runs import Runs
from shipyard.wiring import open_adapters

SAMPLE = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}


def run_demo(console: Console, where: Path | None = None, *, keep: bool = True) -> int:
    started = time.monotonic()
    root = (where or Path(tempfile.mkdtemp(prefix="shipyard-demo-"))).resolve()
    repo = root / "iris"
    state = root / "state"
    port = _copy_example(repo)
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "Iris classifier: first model")
    adapters = open_adapters(state)
    pipeline = Pipeline(adapters, RichReporter(console))
    runs = Runs(adapters)
    console.print(f"demo project: {repo}\nstate: {state}\n")

    timings: dict[str, float] = {}
    for title, change in (
        ("first version: commit to live", None),
        ("second version: through a canary", _second_model),
    ):
        console.print(Rule(title))
        if change is not None:
            change(repo)
        ctx = pipeline.queue(repo)
        console.print(f"[bold]{ctx.project}[/] run [bold]#{ctx.number}[/] at {ctx.sha[:12]}")
        step = time.monotonic()
        final = pipeline.execute(ctx)
        timings[f"run #{ctx.number}"] = time.monotonic() - step
        console.print(run_table(runs.get(ctx.project, ctx.number)))
        if final is not Status.PASSED:
            console.print(
                f"[bold red]the demo run ended {final}[/]; logs: {adapters.state.run_dir(ctx.project, ctx.number) / 'logs'}"
            )
            return 1
        _predict(console, f"http://127.0.0.1:{port}")

    console.print(Rule("where things are"))
    console.print(
        f"production endpoint: http://127.0.0.1:{port}   (try: curl -s -X POST http://127.0.0.1:{port}/invocations -H 'content-type: application/json' -d '{{\"dataframe_records\": [{_json(SAMPLE)}]}}')"
    )
    for d in adapters.store.deployments("iris"):
        console.print(
            f"  {d.environment:<10} {d.version:<12} {d.role:<8} {d.weight:>3}%  {d.endpoint}"
        )
    console.print(f"state and metadata: {state}  (SQLite: {adapters.state.database})")
    console.print(f"logs: {state / 'runs' / 'iris'}")
    console.print(
        f"look around: shipyard status --state {state}; shipyard envs --state {state}; shipyard rollback --state {state}"
    )
    console.print(
        "time: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        + f", total {time.monotonic() - started:.1f}s"
    )
    if keep:
        console.print(f"the servers keep running; stop them with: shipyard down --state {state}")
    else:
        stopped = deploy.stop_all(adapters)
        console.print(f"stopped the demo's {len(stopped)} deployment(s) and its gateway")
    return 0


def _copy_example(repo: Path) -> int:
    """Copy the example; use its production port when free, else any free port."""
    shutil.copytree(
        example_path("iris"),
        repo,
        ignore=shutil.ignore_patterns("__pycache__", ".shipyard", ".venv"),
    )
    config = repo / "shipyard.yaml"
    text = config.read_text()
    port = int(re.search(r"port: (\d+)", text).group(1))  # type: ignore[union-attr]
    if not _port_free(port):
        port = free_port()
        config.write_text(re.sub(r"port: \d+", f"port: {port}", text))
    (repo / ".gitignore").write_text(".shipyard/\n__pycache__/\n")
    return port


def _second_model(repo: Path) -> None:
    module = repo / "iris_model" / "__init__.py"
    module.write_text(module.read_text().replace('"C": 1.0', '"C": 0.5'))
    _commit(repo, "Iris classifier: stronger regularisation (C=0.5)")


def _predict(console: Console, endpoint: str) -> None:
    response = httpx.post(
        f"{endpoint}/invocations", json={"dataframe_records": [SAMPLE]}, timeout=10
    )
    console.print(
        f"prediction from {endpoint}: {response.json().get('predictions')} "
        f"(served by version {response.headers.get(VERSION_HEADER)}, status {response.status_code})"
    )


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(
        repo,
        "-c",
        "user.name=Shipyard Demo",
        "-c",
        "user.email=demo@shipyard.invalid",
        "commit",
        "-q",
        "-m",
        message,
    )


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
