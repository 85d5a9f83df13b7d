"""`shipyard run`: refusals before a run exists, and one real run of a tiny project.

The real run (module fixture ``real_run``) builds a small uv environment once; the tests after
it read the state it left with the report commands, as a user would.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import Result

from gitrepos import git
from shipyard.config.loader import MAX_BYTES
from shipyard.domain import STAGES

from .conftest import TINY_CONFIG, TINY_MODEL

Cli = Callable[..., Result]
Shipyard = Callable[..., subprocess.CompletedProcess[str]]
GitRepo = Callable[..., Path]


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_run_outside_a_git_repository_exits_2(
    shipyard: Shipyard, tmp_path: Path, state: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    # Stop git's search for a repository at tmp_path, wherever the temporary folder lives.
    done = shipyard("run", plain, "--state", state, GIT_CEILING_DIRECTORIES=str(tmp_path))
    assert done.returncode == 2
    text = squeeze(done.stderr)
    assert text.startswith(f"error: {plain} is not inside a git repository.")
    assert "next: Run `git init`" in text
    assert not (state / "runs").exists()


def test_run_of_a_commit_without_shipyard_yaml_exits_2(
    shipyard: Shipyard, git_repo: GitRepo, state: Path
) -> None:
    repo = git_repo(**{"README.md": "no pipeline here\n"})
    done = shipyard("run", repo, "--state", state)
    assert done.returncode == 2
    text = squeeze(done.stderr)
    assert "has no shipyard.yaml" in text
    assert "next: Run `shipyard init`" in text


def test_run_of_an_unknown_ref_is_refused(
    shipyard: Shipyard, git_repo: GitRepo, state: Path
) -> None:
    repo = git_repo(**{"README.md": "x\n"})
    done = shipyard("run", repo, "--ref", "no-such-branch", "--state", state)
    assert done.returncode == 2
    assert "'no-such-branch' is not a commit" in squeeze(done.stderr)


def test_a_shipyard_yaml_over_the_size_limit_is_refused_before_the_run_exists(
    shipyard: Shipyard, git_repo: GitRepo, state: Path
) -> None:
    padding = "# padding\n" * (MAX_BYTES // 10 + 1)
    repo = git_repo(**{"shipyard.yaml": TINY_CONFIG + padding, "m.py": TINY_MODEL})
    done = shipyard("run", repo, "--state", state)
    assert done.returncode == 2
    sha = git(repo, "rev-parse", "HEAD")
    text = squeeze(done.stderr)
    assert f"shipyard.yaml at {sha[:12]}:1: the file is larger than {MAX_BYTES} bytes" in text
    assert not (state / "runs").exists()  # no run, no workspace, no build


def test_a_production_port_another_program_holds_is_refused_before_the_run_exists(
    shipyard: Shipyard, git_repo: GitRepo, state: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = TINY_CONFIG + f"environments:\n  production: {{port: {port}}}\n"
        repo = git_repo(**{"shipyard.yaml": config, "m.py": TINY_MODEL, "requirements.txt": ""})
        done = shipyard("run", repo, "--state", state)
    assert done.returncode == 2
    text = squeeze(done.stderr)
    assert f"Port {port} of environments.production is in use by another program" in text
    assert "set environments.production.port in shipyard.yaml to a free port" in text
    assert "next: Fix them and run again; nothing was queued." in text
    assert not (state / "runs").exists()  # no run, no workspace, no build


def test_a_real_run_passes_and_prints_the_stage_table(real_run: Any) -> None:
    done = real_run.done
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert f"tiny run #1 at {real_run.sha[:12]} (HEAD)" in out
    table = out[out.index(f"tiny run #1  {real_run.sha[:12]}  passed") :]
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if "│" in line}
    assert [name for name in rows if name in STAGES] == list(STAGES)
    assert "passed" in rows["build"] and "skipped" in rows["test"]
    assert f"logs: {real_run.state / 'runs' / 'tiny' / '1' / 'logs'}" in squeeze(out)


def test_status_after_the_run_shows_each_stage(cli: Cli, real_run: Any) -> None:
    result = cli("status", "1", "--json", "--state", real_run.state)
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["project"], run["number"], run["sha"], run["status"]) == (
        "tiny",
        1,
        real_run.sha,
        "passed",
    )
    stages = {stage["name"]: stage for stage in run["stages"]}
    assert stages["build"]["status"] == "passed"
    assert stages["test"]["status"] == "skipped"
    assert stages["test"]["message"] == "no `test:` section in shipyard.yaml"
    assert stages["build"]["summary"]["version"] == f"1-{real_run.sha[:7]}"
    assert all(stage["finished_at"] for stage in run["stages"])


def test_the_runs_artifact_is_listed_and_promotion_is_idempotent(cli: Cli, real_run: Any) -> None:
    listed = json.loads(cli("artifacts", "--json", "--state", real_run.state).stdout)
    assert len(listed) == 1
    artifact = listed[0]
    ref = f"tiny:{artifact['version']}"
    assert artifact["repositories"] == ["dev", "release"]
    assert artifact["digest"].startswith("sha256:")
    assert artifact["build_info"]["git"]["sha"] == real_run.sha
    only_release = cli("artifacts", "--repository", "release", "--json", "--state", real_run.state)
    assert [a["version"] for a in json.loads(only_release.stdout)] == [artifact["version"]]
    shown = json.loads(cli("artifacts", "show", ref, "--json", "--state", real_run.state).stdout)
    assert shown["digest"] == artifact["digest"]
    again = cli("promote", ref, "--state", real_run.state)
    assert again.exit_code == 0, again.output
    assert f"{ref} was already in release" in squeeze(again.stdout)


def test_logs_of_the_run_show_the_build(cli: Cli, real_run: Any) -> None:
    result = cli("logs", "1", "build", "--state", real_run.state)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("build   | ") for line in lines)
    assert any("[shipyard] checking out" in line for line in lines)
