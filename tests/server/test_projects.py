"""Projects: `shipyard project ...`, the projects API, the sealed webhook secret, `Projects.run`
with hostile refs, and `shipyard hook install`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from gitrepos import IDENTITY, git
from shipyard.cli.app import app
from shipyard.domain import TokenRole
from shipyard.errors import Conflict, InvalidInput
from shipyard.githook import MARKER
from shipyard.server.app import create_app
from shipyard.services import Services
from shipyard.store.models import Event, Project
from shipyard.wiring import open_adapters

from .forges import TINY_CONFIG, Remote, make_remote


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    made = make_remote(tmp_path)
    made.commit("first")
    return made


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def services(state: Path) -> Iterator[Services]:
    adapters = open_adapters(state)
    yield Services(adapters)
    adapters.store.close()


def shipyard(*args: str | Path, **env: str) -> Result:
    clean = {"COLUMNS": "200", "SHIPYARD_SERVER": "", **env}
    return CliRunner().invoke(app, [str(a) for a in args], env=clean)


def test_project_add_shows_a_generated_secret_once_and_stores_it_sealed(
    remote: Remote, state: Path, services: Services
) -> None:
    added = shipyard(
        "project", "add", "tiny", "--repo", remote.bare, "--branch", "main",
        "--branch", "release/*", "--poll", "2m", "--state", state,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    secret = next(line for line in added.output.splitlines() if line.startswith("whsec_"))
    assert len(secret) == len("whsec_") + 44
    for forge in ("github", "gitlab", "gitea", "forgejo"):
        assert f"http://<server>/hooks/{forge}/tiny" in added.output
    assert "content type application/json" in added.output

    shown = shipyard("project", "show", "tiny", "--state", state)
    listed = shipyard("project", "list", "--json", "--state", state)
    assert "http://<server>/hooks/github/tiny" in shown.output
    assert "polling: every 120 s" in shown.output
    assert '"branches": [' in listed.output and '"release/*"' in listed.output
    assert secret not in shown.output + listed.output

    store = services.adapters.store
    with store.session() as s:
        row = s.scalar(select(Project).where(Project.name == "tiny"))
        assert row is not None and row.webhook_secret
        sealed = row.webhook_secret
        logged = " ".join(f"{e.actor} {e.subject} {e.detail}" for e in s.scalars(select(Event)))
    assert secret not in sealed and secret not in logged
    assert secret.removeprefix("whsec_") not in logged
    assert services.projects.hook_secret("tiny") == secret
    key = services.adapters.state.secrets_key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert secret.encode() not in services.adapters.state.database.read_bytes()
    mirror = Path(services.projects.get("tiny").repository)
    assert mirror == state.resolve() / "mirrors" / "tiny.git"
    assert stat.S_IMODE(mirror.stat().st_mode) == 0o700
    events = [e.action for e in store.events("tiny")]
    assert "project.registered" in events


def test_a_secret_from_a_file_is_used_and_not_printed(
    remote: Remote, state: Path, services: Services, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("correct horse battery staple 1\n".replace(" ", "-"))
    added = shipyard(
        "project", "add", "tiny", "--repo", remote.bare,
        "--webhook-secret-file", secret_file, "--state", state,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "correct-horse" not in added.output
    assert services.projects.hook_secret("tiny") == "correct-horse-battery-staple-1"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["Tiny"], "Project name 'Tiny' is not valid"),
        (["../x"], "is not valid"),
        (["tiny", "--branch", "--upload-pack=x"], "Branch filter"),
        (["tiny", "--poll", "0s"], "poll interval"),
        (["tiny", "--poll", "100ms"], "at least 1 s"),
    ],
)
def test_bad_names_branches_and_intervals_are_refused_with_what_to_fix(
    remote: Remote, state: Path, args: list[str], words: str
) -> None:
    name, *rest = args
    done = shipyard("project", "add", name, "--repo", remote.bare, *rest, "--state", state)
    assert done.exit_code != 0
    assert isinstance(done.exception, InvalidInput)
    assert words in done.exception.message


@pytest.mark.parametrize(
    "repo",
    [
        "--upload-pack=touch /tmp/x",
        "ext::sh -c touch% /tmp/x",
        "/no/such/folder",
        "https://example.invalid/\x00x",
        "/tmp/\x00",
    ],
)
def test_option_like_helpers_and_missing_remotes_are_refused(
    services: Services, repo: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput):
        services.projects.add("tiny", repo)
    assert services.projects.list() == []


def test_an_unreachable_remote_is_refused_before_anything_is_stored(
    services: Services, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="ls-remote"):
        services.projects.add("tiny", str(tmp_path / "empty"))
    assert services.projects.list() == []


def test_a_project_is_registered_once_and_remove_keeps_its_runs(
    services: Services, remote: Remote, state: Path
) -> None:
    services.projects.add("tiny", str(remote.bare))
    with pytest.raises(Conflict):
        services.projects.add("tiny", str(remote.bare))
    run = services.projects.run("tiny", "main")
    removed = shipyard("project", "remove", "tiny", "--state", state)
    assert removed.exit_code == 0, removed.output
    assert services.projects.list() == []
    assert services.runs.get("tiny", run.number).sha == remote.git_head()
    again, _ = services.projects.add("tiny", str(remote.bare))  # registered anew, same history
    assert again.registered and services.runs.get("tiny").number == run.number


def test_run_fetches_exactly_the_ref_and_queues_it(services: Services, remote: Remote) -> None:
    services.projects.add("tiny", str(remote.bare))
    first = remote.git_head()
    second = remote.commit("second")
    by_branch = services.projects.run("tiny", "main")
    by_sha = services.projects.run("tiny", first.upper())
    assert (by_branch.sha, by_branch.ref) == (second, "main")
    assert (by_sha.sha, by_sha.ref) == (first, first)


@pytest.mark.parametrize(
    "ref", ["--upload-pack=touch pwned", "-x", "main..other", "ma in", "", "refs/heads/a:b"]
)
def test_option_like_and_invalid_refs_never_reach_git(
    services: Services, remote: Remote, ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.projects.add("tiny", str(remote.bare))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput):
        services.projects.run("tiny", ref)
    assert not (tmp_path / "pwned").exists()
    assert services.runs.list("tiny") == []


def test_the_projects_api_needs_admin_to_register_and_developer_to_run(
    services: Services, remote: Remote
) -> None:
    tokens = {role: services.tokens.create(role.value, role)[1] for role in TokenRole}

    def auth(role: TokenRole) -> dict[str, str]:
        return {"authorization": f"Bearer {tokens[role]}"}

    body = {"name": "tiny", "repo": str(remote.bare), "branches": ["main"]}
    with TestClient(create_app(services)) as client:
        assert client.post("/api/v1/projects", json=body).status_code == 401
        refused = client.post("/api/v1/projects", json=body, headers=auth(TokenRole.RELEASER))
        assert refused.status_code == 403
        made = client.post("/api/v1/projects", json=body, headers=auth(TokenRole.ADMIN))
        assert made.status_code == 201, made.text
        assert made.json()["webhook_secret"].startswith("whsec_")
        assert made.json()["project"]["hooks"]["github"] == "/hooks/github/tiny"
        listed = client.get("/api/v1/projects", headers=auth(TokenRole.VIEWER))
        assert [p["name"] for p in listed.json()] == ["tiny"]
        assert "webhook_secret" not in listed.text
        viewer_run = client.post(
            "/api/v1/projects/tiny/runs", json={"ref": "main"}, headers=auth(TokenRole.VIEWER)
        )
        assert viewer_run.status_code == 403
        run = client.post(
            "/api/v1/projects/tiny/runs", json={"ref": "main"}, headers=auth(TokenRole.DEVELOPER)
        )
        assert run.status_code == 202, run.text
        assert (run.json()["sha"], run.json()["trigger"]) == (remote.git_head(), "api")
        hostile = client.post(
            "/api/v1/projects/tiny/runs",
            json={"ref": "--upload-pack=x"},
            headers=auth(TokenRole.DEVELOPER),
        )
        assert hostile.status_code == 400
        gone = client.delete("/api/v1/projects/tiny", headers=auth(TokenRole.ADMIN))
        assert gone.status_code == 200 and gone.json()["registered"] is False
        assert (
            client.get("/api/v1/projects/tiny", headers=auth(TokenRole.VIEWER)).status_code == 404
        )


# -- shipyard hook install ---------------------------------------------------------------------


def test_hook_install_is_idempotent_and_keeps_a_foreign_hook_unless_forced(
    tmp_path: Path, state: Path
) -> None:
    repo = make_remote(tmp_path).work
    first = shipyard("hook", "install", repo, "--state", state)
    assert first.exit_code == 0, first.output
    hook = repo / ".git" / "hooks" / "post-commit"
    assert MARKER in hook.read_text() and os.access(hook, os.X_OK)
    assert str(state.resolve()) in hook.read_text()
    assert "already installed" in shipyard("hook", "install", repo, "--state", state).output

    hook.write_text("#!/bin/sh\necho mine\n")
    refused = shipyard("hook", "install", repo, "--state", state)
    assert isinstance(refused.exception, Conflict)
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
    forced = shipyard("hook", "install", repo, "--force", "--state", state)
    assert forced.exit_code == 0, forced.output
    assert MARKER in hook.read_text()
    assert (hook.parent / "post-commit.before-shipyard").read_text() == "#!/bin/sh\necho mine\n"


def test_a_real_commit_with_the_hook_installed_queues_a_run(
    tmp_path: Path, state: Path, services: Services
) -> None:
    repo = make_remote(tmp_path).work
    assert shipyard("hook", "install", repo, "--state", state).exit_code == 0
    (repo / "shipyard.yaml").write_text(TINY_CONFIG.format(name="tiny"))
    git(repo, "add", "-A")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    done = subprocess.run(
        ["git", "-C", str(repo), *IDENTITY, "commit", "-q", "-m", "hooked"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sha = git(repo, "rev-parse", "HEAD")
    # post-commit runs before `git commit` returns: the run is queued by now.
    queued = services.runs.list("tiny")
    assert len(queued) == 1, f"no run queued; the hook said: {done.stderr}"
    run = services.runs.get("tiny")
    assert run.sha == sha
    assert sys.executable in (repo / ".git" / "hooks" / "post-commit").read_text()
