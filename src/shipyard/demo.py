"""`shipyard demo`: the iris example from a commit to live, then a second version by canary,
driven by a `shipyard server` that stays up afterwards to show both runs on its dashboard."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.rule import Rule

from shipyard.adapters import Adapters
from shipyard.cli.follow import follow
from shipyard.cli.render import RichReporter, run_table
from shipyard.domain import Status, TokenRole
from shipyard.errors import RuntimeFailure
from shipyard.examples import example_path
from shipyard.paths import private_file
from shipyard.pipeline.context import free_port
from shipyard.processes import ProcessBook, ProcessKind, pid_alive
from shipyard.runtime.interface import VERSION_HEADER
from shipyard.services import Services
from shipyard.services.processes import Processes
from shipyard.services.remote import RemoteServices
from shipyard.services.views import RunView
from shipyard.wiring import open_adapters

SAMPLE = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}


PROJECT = "iris"
SERVER_START_SECONDS = 60.0


@dataclass(frozen=True)
class Dashboard:
    """The demo's `shipyard server`: where it answers, its pid, where it logs."""

    url: str
    pid: int
    log: Path


def run_demo(
    console: Console, where: Path | None = None, *, keep: bool = True, port: int | None = None
) -> int:
    """The example through a `shipyard server` started in the background for the demo's state:
    its workers drive the runs, this process follows them as `shipyard run --server` does."""
    started = time.monotonic()
    root = (where or Path(tempfile.mkdtemp(prefix="shipyard-demo-"))).resolve()
    repo, state = root / "iris", root / "state"
    model_port = _copy_example(repo)
    adapters = open_adapters(state)
    dashboard = start_server(adapters, port or free_port())
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "Iris classifier: first model")
    _, secret = Services(adapters).tokens.create("demo", TokenRole.ADMIN)
    wait_for_server(dashboard)
    found = RemoteServices(dashboard.url, secret)
    found.projects.add(PROJECT, str(repo))
    console.print(f"demo project: {repo}\nstate: {state}\nserver: {dashboard.url}\n")

    timings: dict[str, float] = {}
    for title, change in (
        ("first version: commit to live", None),
        ("second version: through a canary", _second_model),
    ):
        console.print(Rule(title))
        if change is not None:
            change(repo)
        step = time.monotonic()
        run = _run_on_server(console, found)
        timings[f"run #{run.number}"] = time.monotonic() - step
        if run.status is not Status.PASSED:
            logs = adapters.state.run_dir(run.project, run.number) / "logs"
            console.print(f"[bold red]the demo run ended {run.status}[/]; logs: {logs}")
            _dashboard(console, dashboard, secret)
            at = f"--state {shlex.quote(str(state))}"
            _commands(console, [f"shipyard status {at}", f"shipyard down {at}"])
            return 1
        _predict(console, f"http://127.0.0.1:{model_port}")

    console.print(Rule("where things are"))
    _where(console, adapters, state, model_port)
    console.print(
        "time: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        + f", total {time.monotonic() - started:.1f}s"
    )
    if keep:
        _dashboard(console, dashboard, secret)
    else:
        done = Processes(adapters).down()
        console.print(
            f"stopped the server, the demo's {done.deployments} deployment(s) and its gateway"
        )
    _commands(console, closing_commands(state, model_port, running=keep))
    return 0


def closing_commands(state: Path, port: int, *, running: bool) -> list[str]:
    """What to try next, each a shell command that runs as printed (comments included)."""
    at = f"--state {shlex.quote(str(state))}"
    looking = [
        f"shipyard status {at}",
        f"shipyard envs {at}",
        f"shipyard rollout status {at}",
    ]
    if not running:
        return looking
    body = shlex.quote(json.dumps({"dataframe_records": [SAMPLE]}))
    endpoint = f"http://127.0.0.1:{port}/invocations"
    return [
        f"curl -s -X POST {endpoint} -H 'content-type: application/json' -d {body}",
        *looking,
        f"shipyard rollback {at}   # all traffic back to the first version, at once",
        f"shipyard rollback {at}   # and forward again: the two swap roles",
        f"shipyard down {at}   # stop the server, the models and the gateway",
    ]


def _commands(console: Console, lines: list[str]) -> None:
    console.print(Rule("try"))
    for line in lines:
        console.print(line, soft_wrap=True, markup=False, highlight=False)  # whole, to copy


def _run_on_server(console: Console, found: RemoteServices) -> RunView:
    """Queue the head of ``main`` on the server and follow the run, stage by stage, to its end."""
    queued = found.projects.run(PROJECT, "main")
    console.print(
        f"[bold]{queued.project}[/] run [bold]#{queued.number}[/] at {queued.sha[:12]}, "
        "driven by the server"
    )
    run = follow(found, queued, RichReporter(console), console)
    console.print(run_table(run))
    return run


def _dashboard(console: Console, dashboard: Dashboard, secret: str) -> None:
    console.print(Rule("the dashboard"))
    for line in (
        f"dashboard: {dashboard.url}/projects  (server log: {dashboard.log})",
        f"sign in with the admin token: {secret}",
        "the server and the models keep running until `shipyard down` (below)",
    ):
        console.print(line, soft_wrap=True, markup=False, highlight=False)  # whole, to copy


def start_server(adapters: Adapters, port: int) -> Dashboard:
    """`shipyard server` for this state, detached (its own session, logging to a file) so it
    outlives this command; recorded in the process book, so `shipyard down` stops it."""
    state = adapters.state.root
    log = state / "server.log"
    command = [sys.executable, "-m", "shipyard", "server", "--state", str(state)]
    with private_file(log).open("ab") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    ProcessBook(adapters.store, adapters.leases).started(
        ProcessKind.SERVER, process.pid, detail={"url": url, "log": str(log)}
    )
    return Dashboard(url=url, pid=process.pid, log=log)


def wait_for_server(dashboard: Dashboard) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if not pid_alive(dashboard.pid):
            break
        try:
            if httpx.get(f"{dashboard.url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeFailure(
        f"The demo's server did not answer on {dashboard.url}.",
        hint=f"Its log says why: {dashboard.log} (`shipyard down --state "
        f"{dashboard.log.parent}` stops it if it still runs; --port chooses another port).",
    )


def _where(console: Console, adapters: Adapters, state: Path, port: int) -> None:
    console.print(f"production endpoint: http://127.0.0.1:{port}", soft_wrap=True)
    for d in adapters.store.deployments(PROJECT):
        console.print(
            f"  {d.environment:<10} {d.version:<12} {d.role:<8} {d.weight:>3}%  {d.endpoint}"
        )
    console.print(f"state and metadata: {state}  (SQLite: {adapters.state.database})")
    console.print(f"logs: {state / 'runs' / PROJECT}")


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
