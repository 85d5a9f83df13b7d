"""A team's road to production, end to end through `shipyard server`.

The server runs as a subprocess on a tmp state directory. A project is registered whose remote is
a local bare repository; a commit is pushed there with real git and announced by a push event
signed as GitHub signs it; the run is followed through the API to `live`. A second commit, with
`release.approval: manual`, waits at the release gate until a qa token approves it (a developer
token may not), then goes through the canary to live.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitrepos import commit, git
from servers import ShipyardServer, clean_env

from .conftest import make_project

pytestmark = pytest.mark.e2e
SECRET = "a-webhook-secret-for-the-test"
TOKEN = re.compile(r"shy_[A-Za-z0-9_-]{20,}")
SAMPLE = {
    "dataframe_records": [
        {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}
    ]
}


def shipyard(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shipyard", *args, "--state", str(state)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=clean_env())
    assert done.returncode == 0, f"shipyard {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def token(state: Path, name: str, role: str) -> str:
    found = TOKEN.search(shipyard(state, "token", "create", name, "--role", role).stdout)
    assert found, f"no token printed for {name}"
    return found.group(0)


def wait_until(ready: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll ``ready`` until it returns something true, and return that."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ShipyardServer]:
    state = tmp_path / "state"
    try:
        with ShipyardServer(state) as running:
            yield running
    finally:
        subprocess.run(
            [sys.executable, "-m", "shipyard", "down", "--state", str(state)],
            env=clean_env(),
            capture_output=True,
            timeout=120,
        )


def push_event(repo: Path, sha: str, before: str) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": sha,
            "created": before == "0" * 40,
            "deleted": False,
            "repository": {"full_name": "team/iris", "clone_url": str(repo)},
            "pusher": {"name": "alice", "email": "alice@example.invalid"},
            "head_commit": {"id": sha, "message": "a model"},
        }
    ).encode()


def post_push(server: ShipyardServer, project: str, body: bytes) -> httpx.Response:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": signature,
    }
    return httpx.post(f"{server.url}/hooks/github/{project}", content=body, headers=headers)


def run_of(server: ShipyardServer, auth: str, project: str, number: int) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/api/v1/runs/{project}/{number}",
        headers={"authorization": f"Bearer {auth}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def finished(server: ShipyardServer, auth: str, project: str, number: int) -> dict[str, Any] | None:
    run = run_of(server, auth, project, number)
    return run if run["status"] not in ("queued", "running", "waiting") else None


def test_a_pushed_commit_goes_live_and_a_manual_release_waits_for_qa(
    server: ShipyardServer, tmp_path: Path
) -> None:
    running, state = server, server.state
    work, port = make_project(tmp_path, "team-iris")
    # The canary's judgement is not what this test is about: a busy CI machine must not make a
    # cold canary's latency look like a regression.
    config = work / "shipyard.yaml"
    config.write_text(config.read_text().replace("max_increase: 1.0", "max_increase: 20.0"))
    commit(work, "a patient canary")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "origin", "main")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    viewer, developer = token(state, "ci-view", "viewer"), token(state, "dev", "developer")
    qa = token(state, "qa-lead", "qa")
    shipyard(
        state, "project", "add", "team-iris", "--repo", str(remote), "--branch", "main",
        "--webhook-secret-file", str(secret_file),
    )  # fmt: skip

    first = git(work, "rev-parse", "HEAD")
    queued = post_push(running, "team-iris", push_event(remote, first, "0" * 40))
    assert queued.status_code == 202, queued.text
    number = queued.json()["run"]
    run = wait_until(lambda: finished(running, viewer, "team-iris", number), 420, "run 1")
    assert run["status"] == "passed", run
    assert run["sha"] == first and run["trigger"] == "github"
    assert {s["name"]: s["status"] for s in run["stages"]}["live"] == "passed"
    served = httpx.post(f"http://127.0.0.1:{port}/invocations", json=SAMPLE, timeout=10)
    assert served.status_code == 200 and served.json() == {"predictions": ["virginica"]}

    config.write_text(
        config.read_text().replace("release: {approval: auto}", "release: {approval: manual}")
    )
    second = commit(work, "a release that QA confirms")
    git(work, "push", "-q", "origin", "main")
    queued = post_push(running, "team-iris", push_event(remote, second, first))
    assert queued.status_code == 202, queued.text
    number = queued.json()["run"]

    def waiting() -> dict[str, Any] | None:
        run = run_of(running, viewer, "team-iris", number)
        assert run["status"] not in ("failed", "cancelled", "passed"), run
        return run if run["status"] == "waiting" and "approval" in (run["message"] or "") else None

    run = wait_until(waiting, 420, "run 2 to wait for approval")
    assert {s["name"]: s["status"] for s in run["stages"]}["qa"] == "passed"
    approve = f"{running.url}/api/v1/runs/team-iris/{number}/approve"
    refused = httpx.post(
        approve, json={"reason": "looks good"}, headers={"authorization": f"Bearer {developer}"}
    )
    assert refused.status_code == 403
    approved = httpx.post(
        approve, json={"reason": "QA signed off"}, headers={"authorization": f"Bearer {qa}"}
    )
    assert approved.status_code == 200, approved.text
    run = wait_until(lambda: finished(running, viewer, "team-iris", number), 300, "run 2")
    assert run["status"] == "passed", [
        (s["name"], s["status"], s["message"]) for s in run["stages"]
    ]
    stages = {s["name"]: s["status"] for s in run["stages"]}
    assert stages["release"] == stages["canary"] == stages["live"] == "passed"
    served = httpx.post(f"http://127.0.0.1:{port}/invocations", json=SAMPLE, timeout=10)
    assert served.headers["x-shipyard-version"] == f"{number}-{second[:7]}"

    events = httpx.get(
        f"{running.url}/api/v1/audit",
        params={"project": "team-iris", "limit": 500},
        headers={"authorization": f"Bearer {viewer}"},
    ).json()
    approvals = [e for e in events if e["action"] == "approval.approved"]
    assert approvals and approvals[0]["actor"] == "qa-lead"
