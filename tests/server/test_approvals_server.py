"""A real `shipyard server`: a run waits at its release gate holding no worker, a qa token
approves it through the API and it goes on to pass; an unanswered one times out and fails; a
receiver on 127.0.0.1 hears of both from the server's notifier, a dead one beside it slowing
nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitrepos import commit
from servers import ShipyardServer, free_port
from shipyard.adapters import Adapters
from shipyard.domain import TokenRole
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.wiring import open_adapters

from .queue_projects import loosen_release_policy, wait_for, write_project


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[Adapters]:
    a = open_adapters(tmp_path / "state")
    loosen_release_policy(a)
    yield a
    a.store.close()


@pytest.fixture
def notices() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver on 127.0.0.1: its URL and the bodies posted to it."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", bodies
    server.shutdown()
    server.server_close()


def gated(repo: Path, release: str) -> None:
    """The tiny project, its release approved by a person."""
    write_project(repo, "tiny")
    config = repo / "shipyard.yaml"
    config.write_text(config.read_text() + f"release: {release}\n")
    commit(repo, f"release: {release}")


def test_a_server_parks_a_run_for_qa_and_drives_it_on_once_approved_or_fails_it_on_timeout(
    tmp_path: Path, adapters: Adapters, notices: tuple[str, list[dict[str, Any]]]
) -> None:
    services = Services(adapters)
    url, posted = notices
    services.notifications.add(f"http://127.0.0.1:{free_port()}/nobody-listens")  # a dead one
    services.notifications.add(url)
    with acting_as("root"):
        _, qa = services.tokens.create("quinn", TokenRole.QA)
    repo = tmp_path / "tiny"
    gated(repo, "{approval: manual}")
    first = services.runs.queue(repo).number
    with ShipyardServer(adapters.state.root, workers=1, lease_ttl="3") as server:
        wait_for(lambda: services.runs.get("tiny", first).status == "waiting", "run #1 to wait")
        assert services.runs.get("tiny", first).message == "waiting for approval of release by qa"
        # It holds no worker while it waits (the lease goes just after the run is parked).
        wait_for(lambda: services.runs.driver("tiny", first) is None, "the worker to let go")
        wait_for(lambda: any(b["event"] == "approval.needed" for b in posted), "the notice")

        api = httpx.Client(base_url=server.url, timeout=10)
        token = {"authorization": f"Bearer {qa}"}
        inbox = api.get("/api/v1/approvals", headers=token).json()
        assert [(a["run"], a["gate"], a["approver"]) for a in inbox] == [(first, "release", "qa")]
        answer = api.post(
            f"/api/v1/runs/tiny/{first}/approve", headers=token, json={"reason": "report read"}
        )
        assert answer.status_code == 200, answer.text
        wait_for(lambda: services.runs.get("tiny", first).status == "passed", "run #1 to pass")
        version = adapters.store.get_run("tiny", first).sha[:7]
        assert adapters.store.in_repository("release", "tiny", f"{first}-{version}")
        [entry] = adapters.store.get_artifact("tiny", f"{first}-{version}").build_info["approvals"]
        assert (entry["actor"], entry["reason"]) == ("quinn", "report read")

        # Nobody answers the next one: the server's clock fails it at its gate.
        gated(repo, "{approval: manual, approval_timeout: 1s}")
        second = services.runs.queue(repo).number
        wait_for(lambda: services.runs.get("tiny", second).status == "failed", "run #2 to fail")
        release = next(s for s in services.runs.get("tiny", second).stages if s.name == "release")
        assert release.message == "approval timed out after 1s"
        wait_for(
            lambda: any(b["event"] == "run.failed" and b["run"] == second for b in posted),
            "the failure notice",
        )
        # The dead receiver is given up on after five attempts (about 7.5 s of backoff).
        wait_for(
            lambda: any(e.action == "notification.failed" for e in adapters.store.events()),
            "the dead receiver to be given up on",
        )
    assert server.returncode == 0, server.log_text()
    failures = [e for e in adapters.store.events(limit=1000) if e.action == "notification.failed"]
    assert failures and all(e.detail["host"].endswith("/...") for e in failures)
