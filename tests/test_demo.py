"""`shipyard demo`: a background `shipyard server` drives both runs to live; its dashboard
stays up with the printed token; `shipyard down` stops the server with everything else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.domain import Status
from shipyard.pipeline.context import free_port
from shipyard.processes import ProcessBook, ProcessKind, pid_alive
from shipyard.services import Services
from shipyard.wiring import open_adapters

DEMO_SECONDS = 900


def shipyard(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The demo run once in its own folder, its output; everything stopped after."""
    root = tmp_path_factory.mktemp("demo")
    done = shipyard("demo", "--dir", str(root), "--port", str(free_port()), timeout=DEMO_SECONDS)
    try:
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        yield root / "state", done.stdout
    finally:
        shipyard("down", "--state", str(root / "state"))


def closing_lines(out: str) -> list[str]:
    """The commands the demo ends with: the lines after its last `try` rule."""
    lines = out.splitlines()
    rule = max(i for i, line in enumerate(lines) if re.fullmatch(r"─+ try ─+", line.strip()))
    return [line for line in lines[rule + 1 :] if line.strip()]


def as_printed(line: str) -> subprocess.CompletedProcess[str]:
    """A printed command line run by a shell, with this environment's `shipyard` on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        line,
        shell=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def printed(pattern: str, out: str) -> str:
    found = re.search(pattern, out)
    assert found, f"the demo did not print {pattern!r}:\n{out[-3000:]}"
    return found.group(1)


def test_the_demo_takes_both_runs_to_live_through_the_server(demo: tuple[Path, str]) -> None:
    state, out = demo
    assert "driven by the server" in out
    assert out.count("▶ build") == 2 and out.count("✔ live passed") == 2  # followed stage by stage
    assert len(re.findall(r"prediction from .* status 200\)", out)) == 2
    adapters = open_adapters(state)
    try:
        found = Services(adapters)
        runs = {run.number: run for run in found.runs.list("iris")}
        assert sorted(runs) == [1, 2]
        assert all(run.status is Status.PASSED and run.trigger == "api" for run in runs.values())
        canary = next(stage for stage in runs[2].stages if stage.name == "canary")
        assert canary.status is Status.PASSED  # the second version went through the canary
        assert [e.actor for e in found.audit.events(action="run.created")] == ["demo", "demo"]
    finally:
        adapters.store.close()


def test_the_printed_token_signs_in_to_the_dashboard_at_the_printed_address(
    demo: tuple[Path, str],
) -> None:
    _, out = demo
    address = printed(r"dashboard: (http://127\.0\.0\.1:\d+/projects)", out)
    token = printed(r"sign in with the admin token: (\S+)", out)
    base = address.removesuffix("/projects")
    with httpx.Client(base_url=base, timeout=30) as browser:
        signed_in = browser.post("/login", data={"token": token}, follow_redirects=False)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/projects"
        page = browser.get("/projects")
    assert page.status_code == 200
    assert 'id="project-iris"' in page.text
    assert 'href="/projects/iris/runs/1"' in page.text
    assert 'href="/projects/iris/runs/2"' in page.text
    assert "shipyard down --state" in out


def test_the_closing_lines_are_commands_that_run_as_printed(demo: tuple[Path, str]) -> None:
    state, out = demo
    lines = closing_lines(out)
    assert [line.split()[:2] for line in lines] == [
        ["curl", "-s"],
        ["shipyard", "status"],
        ["shipyard", "envs"],
        ["shipyard", "rollout"],
        ["shipyard", "rollback"],
        ["shipyard", "rollback"],
        ["shipyard", "down"],
    ], lines
    assert all(f"--state {state}" in line for line in lines[1:])
    said = {}
    for line in lines[:-1]:  # the last, `shipyard down`, is run as printed by the next test
        done = as_printed(line)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        said[line] = done.stdout
    assert '"predictions"' in said[lines[0]]
    assert "iris/production: http://127.0.0.1:" in said[lines[2]]  # envs: where to call
    back, forward = said[lines[4]], said[lines[5]]
    assert "all traffic on 1-" in back and "all traffic on 2-" in forward  # and back again


def test_shipyard_down_stops_the_demo_server(demo: tuple[Path, str]) -> None:
    state, out = demo
    address = printed(r"dashboard: (http://127\.0\.0\.1:\d+)/projects", out)
    adapters = open_adapters(state)
    try:
        book = ProcessBook(adapters.store)
        servers = [row for row in book.open_rows() if row.kind == ProcessKind.SERVER]
        assert len(servers) == 1 and pid_alive(servers[0].pid)
        pid = servers[0].pid
        down = as_printed(closing_lines(out)[-1])  # the demo's last line, as printed
        assert down.returncode == 0, down.stderr
        assert f"stopped server pid {pid}" in down.stdout
        assert not pid_alive(pid)
        assert not [row for row in book.open_rows() if row.kind == ProcessKind.SERVER]
        stopped = Services(adapters).audit.events(action="process.stopped")
        assert [e.detail["reason"] for e in stopped if e.subject == f"server/{pid}"] == [
            "shipyard down"
        ]
    finally:
        adapters.store.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{address}/api/v1/health", timeout=2)
