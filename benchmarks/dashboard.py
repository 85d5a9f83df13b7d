"""The dashboard's pages on a big store: server time per page and what a browser waits.

Not a test: it starts a server on 127.0.0.1 and prints figures (no assertions). From the
repository root:

    .venv/bin/python benchmarks/dashboard.py [--requests 200] [--dir /tmp]

The store holds 10,000 runs (9 stages each, over 10 projects, inserted with SQL as
``benchmarks/server.py`` does) and 1,000 artifacts of those runs (every one in ``dev``, every
fourth also in ``release``, three properties each), three runs waiting for an approval, and each project's newest version live in
staging and production with the one before as production's standby. The app is served by uvicorn in its own
process, as ``shipyard server`` serves it; the client signs in once with a viewer token and
sends the session cookie, as a browser does.

For each page (the projects page, a run's page, the artifacts page, the environments page),
``--requests`` requests one after another, then 20 concurrent keep-alive clients sending
``--requests`` / 20 each. Printed: p50, p95 and p99 of the server's own time (its
``Server-Timing: app;dur=`` header: the page's data and rendering, without the network or
the client) and of the client-side latency. Goal: the run page and the projects page under
100 ms server time (p95). A page answering 404 is not built yet and is reported so.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import (  # benchmarks/server.py, beside this file
    PROJECTS,
    RUNS,
    SERVE_API,
    admin_token,
    fill_store,
    free_port,
    percentile,
    serving,
)

ARTIFACTS = 1_000
CLIENTS = 20
GOAL_MS = 100.0
RUN = ("p7", 512)  # the run whose page is measured (as the API benchmark's)
PAGES = (
    ("projects", "/projects"),
    ("run", f"/projects/{RUN[0]}/runs/{RUN[1]}"),
    ("artifacts", "/artifacts"),
    ("environments", "/environments"),
)
GOALS = {"projects", "run"}  # the pages the 100 ms goal is for
TIMING = re.compile(r"app;dur=([0-9.]+)")


def fill_artifacts(state: Path) -> None:
    """ARTIFACTS artifacts of each project's newest runs (as ``build`` publishes them), their
    deployments and a few approvals, in bulk."""
    from sqlalchemy import insert, select, update

    from shipyard.domain import DEV_REPOSITORY, RELEASE_REPOSITORY
    from shipyard.paths import StateDir
    from shipyard.store import Store
    from shipyard.store.models import (
        Approval,
        Artifact,
        ArtifactProperty,
        ArtifactRef,
        Deployment,
        Project,
        Run,
    )

    store = Store(StateDir(state).ensure().database_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.engine.begin() as connection:
        per_project = ARTIFACTS // PROJECTS  # of each project's newest runs
        newest = (
            select(Run.id, Run.number, Run.sha, Project.name)
            .join(Project)
            .where(Run.number > RUNS // PROJECTS - per_project)
            .order_by(Project.name, Run.number.desc())
        )
        runs = connection.execute(newest).all()
        artifacts = [
            {
                "id": index + 1,
                "name": project,
                "version": f"{number}-{sha[:7]}",
                "digest": "sha256:" + hashlib.sha256(f"{project}-{number}".encode()).hexdigest(),
                "size": 5_000 + number,
                "run_id": run_id,
                "build_info": {"project": project, "run": number, "sha": sha},
                "created_at": now,
            }
            for index, (run_id, number, sha, project) in enumerate(runs)
        ]
        connection.execute(insert(Artifact), artifacts)
        refs = [{"repository": DEV_REPOSITORY, "artifact_id": a["id"]} for a in artifacts]
        refs += [{"repository": RELEASE_REPOSITORY, "artifact_id": a["id"]} for a in artifacts[::4]]
        connection.execute(insert(ArtifactRef), refs)
        properties = [
            {"artifact_id": a["id"], "key": key, "value": value, "actor": "bench"}
            for a in artifacts
            for key, value in (("test.passed", "true"), ("qa.accuracy", "0.93"), ("team", "ml"))
        ]
        connection.execute(insert(ArtifactProperty), properties)
        connection.execute(insert(Deployment), deployments(artifacts))
        # The newest run of three projects waits for a QA approval at the release gate.
        waiting = [run_id for run_id, *_ in runs[: 3 * per_project : per_project]]
        connection.execute(
            update(Run).where(Run.id.in_(waiting)).values(status="waiting", finished_at=None)
        )
        approvals = [{"run_id": r, "gate": "release", "status": "waiting"} for r in waiting]
        connection.execute(insert(Approval), approvals)
    store.close()


def deployments(artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each project's newest artifact live in staging and production, the one before it kept
    as production's standby; "up" while this process lives (their pid is its own)."""
    newest: dict[str, list[dict[str, Any]]] = {}
    for artifact in artifacts:  # newest first
        newest.setdefault(artifact["name"], []).append(artifact)
    rows = []
    for name, (live, previous, *_) in newest.items():
        for environment, artifact, role, weight in (
            ("staging", live, "stable", 100),
            ("production", live, "stable", 100),
            ("production", previous, "standby", 0),
        ):
            rows.append(
                {
                    "project": name,
                    "environment": environment,
                    "version": artifact["version"],
                    "artifact_id": artifact["id"],
                    "role": role,
                    "weight": weight,
                    "state": "ready",
                    "endpoint": "http://127.0.0.1:9",
                    "pid": os.getpid(),
                }
            )
    return rows


@dataclass
class Figures:
    server: list[float]  # ms, from Server-Timing
    client: list[float]  # ms, request sent to body read

    def line(self) -> str:
        def three(values: list[float]) -> str:
            return "/".join(f"{percentile(values, q):.1f}" for q in (50, 95, 99))

        return f"server p50/p95/p99 {three(self.server)} ms, client {three(self.client)} ms"


class NotBuilt(Exception):
    pass


async def measure(url: str, path: str, cookies: dict[str, str], clients: int, each: int) -> Figures:
    """``clients`` keep-alive clients sending ``each`` requests one after another."""

    async def client() -> Figures:
        figures = Figures([], [])
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60) as http:
            for _ in range(each):
                started = time.perf_counter()
                response = await http.get(path)
                figures.client.append((time.perf_counter() - started) * 1000)
                if response.status_code == 404:
                    raise NotBuilt(path)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path}: {response.status_code} {response.text[:300]}")
                spent = TIMING.search(response.headers.get("server-timing", ""))
                if spent is None:
                    raise SystemExit(f"GET {path}: no Server-Timing header")
                figures.server.append(float(spent.group(1)))
        return figures

    results = await asyncio.gather(*(client() for _ in range(clients)))
    return Figures(
        [t for one in results for t in one.server], [t for one in results for t in one.client]
    )


def sign_in(url: str, token: str) -> dict[str, str]:
    """The session cookie a browser gets for ``token``."""
    answer = httpx.post(f"{url}/login", data={"token": token}, follow_redirects=False)
    if answer.status_code != 303:
        raise SystemExit(f"sign-in failed: {answer.status_code} {answer.text[:300]}")
    return dict(answer.cookies)


def bench(root: Path, requests: int) -> None:
    state = root / "dashboard-state"
    started = time.perf_counter()
    fill_store(state)
    fill_artifacts(state)
    took = time.perf_counter() - started
    print(f"store: {RUNS} runs over {PROJECTS} projects, {ARTIFACTS} artifacts in {took:.1f}s")
    token = admin_token(state, "viewer", "viewer")
    url = f"http://127.0.0.1:{free_port()}"
    with serving([sys.executable, "-c", SERVE_API, str(state), url.rsplit(":", 1)[1]], url):
        cookies = sign_in(url, token)
        for name, path in PAGES:
            try:
                asyncio.run(measure(url, path, cookies, 1, 5))  # warm up: connection, caches
            except NotBuilt:
                print(f"{name:<12} GET {path}: not built (404)")
                continue
            one = asyncio.run(measure(url, path, cookies, 1, requests))
            many = asyncio.run(measure(url, path, cookies, CLIENTS, max(1, requests // CLIENTS)))
            print(f"{name:<12} GET {path}")
            print(f"  {requests} sequential: {one.line()}")
            print(f"  {CLIENTS} concurrent:  {many.line()}")
            if name in GOALS:
                p95 = percentile(one.server, 95)
                verdict = "meets" if p95 < GOAL_MS else "misses"
                print(f"  {verdict} the {GOAL_MS:.0f} ms server-time goal (sequential p95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per page and run")
    parser.add_argument("--dir", type=Path, default=None, help="where the state goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-", dir=args.dir) as root:
        bench(Path(root), args.requests)


if __name__ == "__main__":
    main()
