"""Webhooks end to end: a real push to a local bare repository, the forge's signed event posted
to the app, a run queued at the pushed sha; and every way a delivery is refused or ignored."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from gitrepos import commit, git
from shipyard.domain import Status
from shipyard.server.app import create_app
from shipyard.server.hooks import MAX_BODY
from shipyard.services import Services
from shipyard.wiring import open_adapters

from .forges import (
    TINY_CONFIG,
    Remote,
    gitea_headers,
    github_headers,
    gitlab_headers,
    gitlab_payload,
    make_remote,
    push_payload,
)


@dataclass
class Served:
    client: TestClient
    services: Services
    remote: Remote
    secret: str

    def github(self, body: bytes, *, event: str = "push", secret: str | None = None) -> Response:
        headers = github_headers(body, secret or self.secret, event=event)
        return self.client.post("/hooks/github/tiny", content=body, headers=headers)

    def runs(self) -> list[tuple[int, str, str]]:
        return [(r.number, r.sha, r.trigger) for r in self.services.runs.list("tiny")]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    remote = make_remote(tmp_path)
    remote.commit("first")
    adapters = open_adapters(tmp_path / "state with a space")  # paths are never split
    services = Services(adapters)
    _, secret = services.projects.add("tiny", str(remote.bare), branches=["main", "release/*"])
    with TestClient(create_app(services)) as client:
        yield Served(client, services, remote, secret)
    adapters.store.close()


def test_a_signed_github_push_queues_a_run_at_the_pushed_sha(served: Served) -> None:
    sha = served.remote.commit("second")
    answer = served.github(push_payload("refs/heads/main", sha, pusher="alice"))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "queued", "run": 1}
    run = served.services.runs.get("tiny", 1)
    assert (run.sha, run.ref, run.trigger, run.status) == (sha, "main", "github", Status.QUEUED)
    assert run.actor == "github:alice"
    mirror = Path(served.services.projects.get("tiny").repository)
    assert git(mirror, "cat-file", "-t", sha) == "commit"
    created = [
        e for e in served.services.adapters.store.events("tiny#1") if e.action == "run.created"
    ]
    assert [(e.actor, e.detail["trigger"]) for e in created] == [("github:alice", "github")]


def test_a_push_to_a_release_branch_glob_runs_and_records_the_branch(served: Served) -> None:
    sha = served.remote.commit("rc", branch="release/1.2")
    answer = served.github(push_payload("refs/heads/release/1.2", sha))
    assert answer.status_code == 202
    assert served.services.runs.get("tiny", 1).ref == "release/1.2"


@pytest.mark.parametrize("forge", ["gitlab", "gitea", "forgejo"])
def test_gitlab_gitea_and_forgejo_pushes_queue_runs_too(served: Served, forge: str) -> None:
    sha = served.remote.commit(f"from {forge}")
    if forge == "gitlab":
        body = gitlab_payload("refs/heads/main", sha, user="bob")
        headers = gitlab_headers(body, served.secret)
    else:
        body = push_payload("refs/heads/main", sha, pusher="bob")
        body = json.dumps(json.loads(body) | {"pusher": {"login": "bob"}}).encode()
        headers = gitea_headers(body, served.secret, forge)
    answer = served.client.post(f"/hooks/{forge}/tiny", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    run = served.services.runs.get("tiny", answer.json()["run"])
    assert (run.sha, run.trigger, run.actor) == (sha, forge, f"{forge}:bob")


def test_a_bad_or_missing_signature_is_401_and_queues_nothing(served: Served) -> None:
    sha = served.remote.commit("second")
    body = push_payload("refs/heads/main", sha)
    assert served.github(body, secret="not the secret at all").status_code == 401
    tampered = github_headers(body, served.secret)
    answer = served.client.post(
        "/hooks/github/tiny", content=body.replace(b"alice", b"mallory"), headers=tampered
    )
    assert answer.status_code == 401
    assert "signature" in answer.json()["error"]
    unsigned = {k: v for k, v in tampered.items() if k != "x-hub-signature-256"}
    assert (
        served.client.post("/hooks/github/tiny", content=body, headers=unsigned).status_code == 401
    )
    no_token = {"x-gitlab-event": "Push Hook"}
    assert (
        served.client.post("/hooks/gitlab/tiny", content=body, headers=no_token).status_code == 401
    )
    # An API token is no signature: webhooks authenticate by their secret only.
    bearer = {"authorization": "Bearer shy_whatever", "x-github-event": "push"}
    assert served.client.post("/hooks/github/tiny", content=body, headers=bearer).status_code == 401
    assert served.runs() == []


def test_a_body_over_5_mib_is_413_by_its_length_or_while_it_streams(served: Served) -> None:
    big = b"x" * (MAX_BODY + 1)
    answer = served.github(big)
    assert answer.status_code == 413
    assert "5242880" in answer.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(12):
            yield b"y" * (512 * 1024)

    streamed = served.client.post(
        "/hooks/github/tiny", content=chunks(), headers={"x-github-event": "push"}
    )
    assert streamed.status_code == 413
    assert served.runs() == []


def test_ping_is_answered_and_queues_nothing(served: Served) -> None:
    answer = served.github(json.dumps({"zen": "Design for failure."}).encode(), event="ping")
    assert answer.status_code == 200
    assert answer.json() == {"status": "pong"}
    assert served.runs() == []


def test_deleted_and_unconfigured_branches_and_tags_are_ignored_with_the_reason(
    served: Served,
) -> None:
    sha = served.remote.commit("feature work", branch="feature/x")
    cases = {
        push_payload("refs/heads/main", "0" * 40, deleted=True): "branch main was deleted",
        push_payload("refs/heads/feature/x", sha): "branch feature/x is not one of main, release/*",
        push_payload("refs/tags/v1", sha): "refs/tags/v1 is not a branch",
    }
    for body, reason in cases.items():
        answer = served.github(body)
        assert answer.status_code == 200
        assert answer.json()["status"] == "ignored"
        assert answer.json()["reason"].startswith(reason)
    issue = served.github(json.dumps({"action": "opened"}).encode(), event="issues")
    assert issue.json()["status"] == "ignored"
    assert served.runs() == []


def test_a_repeated_delivery_queues_nothing_new_and_names_the_first_run(served: Served) -> None:
    sha = served.remote.commit("second")
    body = push_payload("refs/heads/main", sha)
    headers = github_headers(body, served.secret)
    first = served.client.post("/hooks/github/tiny", content=body, headers=headers)
    again = served.client.post("/hooks/github/tiny", content=body, headers=headers)
    assert (first.status_code, first.json()) == (202, {"status": "queued", "run": 1})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "run": 1})
    other = served.github(body)  # a new delivery id for the same push: a new run
    assert other.json() == {"status": "queued", "run": 2}
    assert [number for number, _, _ in served.runs()] == [2, 1]


def test_a_failed_delivery_can_be_delivered_again(served: Served) -> None:
    sha = served.remote.commit("second")
    body = push_payload("refs/heads/main", sha)
    headers = github_headers(body, served.secret)
    git(served.remote.bare, "update-ref", "-d", "refs/heads/main")
    git(served.remote.bare, "gc", "-q", "--prune=now")  # the commit is gone from the forge
    assert (
        served.client.post("/hooks/github/tiny", content=body, headers=headers).status_code == 400
    )
    git(served.remote.work, "push", "-q", "origin", "HEAD:refs/heads/main")
    again = served.client.post("/hooks/github/tiny", content=body, headers=headers)
    assert (again.status_code, again.json()) == (202, {"status": "queued", "run": 1})


def test_a_commit_that_names_another_project_is_refused(served: Served) -> None:
    sha = served.remote.commit("renamed", name="other")
    answer = served.github(push_payload("refs/heads/main", sha))
    assert answer.status_code == 400
    assert "'other'" in answer.json()["error"]
    assert served.runs() == []
    assert [p.name for p in served.services.adapters.store.list_projects()] == ["tiny"]


@pytest.mark.parametrize(
    "project", ["nope", "..", "tiny%2F..%2Fx", "TINY", "tiny%00", "a" * 300, "%2E%2E"]
)
def test_unknown_and_hostile_project_names_are_404(served: Served, project: str) -> None:
    body = push_payload("refs/heads/main", "1" * 40)
    answer = served.client.post(
        f"/hooks/github/{project}", content=body, headers=github_headers(body, served.secret)
    )
    assert answer.status_code == 404
    assert served.runs() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ref": "refs/heads/--upload-pack=touch /tmp/pwned"}, "ref"),
        ({"ref": "refs/heads/main..x"}, "ref"),
        ({"ref": "refs/heads/" + "b" * 300}, "ref"),
        ({"after": "--output=/tmp/x"}, "after"),
        ({"after": "abc123"}, "after"),
        ({"after": None}, "after"),
        ({"ref": None}, "ref"),
        ({"ref": ["refs/heads/main"]}, "ref"),
    ],
)
def test_hostile_or_missing_fields_are_400_naming_the_field(
    served: Served, change: dict[str, object], field: str
) -> None:
    event = json.loads(push_payload("refs/heads/main", "1" * 40)) | change
    answer = served.github(json.dumps(event).encode())
    assert answer.status_code == 400, answer.text
    assert f"'{field}'" in answer.json()["error"] or f"{field}:" in answer.json()["error"]
    assert served.runs() == []


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'"push"', b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe\x00"]
)
def test_malformed_bodies_are_400_never_5xx(served: Served, body: bytes) -> None:
    answer = served.github(body)
    assert answer.status_code == 400, answer.text
    assert served.runs() == []


def test_a_missing_event_header_is_400(served: Served) -> None:
    body = push_payload("refs/heads/main", "1" * 40)
    headers = github_headers(body, served.secret)
    del headers["x-github-event"]
    answer = served.client.post("/hooks/github/tiny", content=body, headers=headers)
    assert answer.status_code == 400
    assert "X-GitHub-Event" in answer.json()["error"]


def test_an_unregistered_project_takes_no_more_webhooks(served: Served) -> None:
    served.services.projects.remove("tiny")
    sha = served.remote.commit("second")
    assert served.github(push_payload("refs/heads/main", sha)).status_code == 404


def test_a_local_run_in_a_checkout_does_not_make_webhooks_fetch_into_it(served: Served) -> None:
    served.services.runs.queue(served.remote.work, "HEAD")  # `shipyard run` in a clone
    sha = served.remote.commit("second")
    answer = served.github(push_payload("refs/heads/main", sha))
    assert answer.status_code == 202, answer.text
    assert served.services.runs.get("tiny", answer.json()["run"]).sha == sha
    assert git(served.remote.work, "for-each-ref", "refs/shipyard") == ""
    mirror = served.services.adapters.state.mirror("tiny")
    assert git(mirror, "cat-file", "-t", sha) == "commit"


def test_a_push_that_would_fail_later_is_answered_and_recorded_as_a_failed_run(
    served: Served,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        work = served.remote.work
        config = (
            TINY_CONFIG.format(name="tiny") + f"environments:\n  production: {{port: {port}}}\n"
        )
        (work / "shipyard.yaml").write_text(config)
        sha = commit(work, "production on a taken port")
        git(work, "push", "-q", "origin", "HEAD:refs/heads/main")
        body = push_payload("refs/heads/main", sha)
        headers = github_headers(body, served.secret)
        answer = served.client.post("/hooks/github/tiny", content=body, headers=headers)
        again = served.client.post("/hooks/github/tiny", content=body, headers=headers)
    sentence = f"Port {port} of environments.production is in use by another program"
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "refused" and answer.json()["run"] == 1
    assert sentence in answer.json()["reason"]
    assert again.json() == {"status": "duplicate", "run": 1}  # the forge's retry adds nothing
    run = served.services.runs.get("tiny", 1)
    assert (run.sha, run.trigger, run.status) == (sha, "github", Status.FAILED)
    assert run.message is not None and run.message.startswith("refused before it started: ")
    build = run.stages[0]
    assert (build.name, build.status) == ("build", Status.FAILED)
    assert build.message is not None and sentence in build.message
    assert {stage.status for stage in run.stages[1:]} == {Status.SKIPPED}
    assert served.services.runs.claim_next("a worker") is None  # nobody will drive it
