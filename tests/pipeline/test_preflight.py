"""Preflight: a taken port, a missing install file or an unusable data file is found at
trigger (nothing is queued) and again when the build starts, never minutes into the run.

Real git repositories, a real state directory, real sockets on 127.0.0.1 and, for the port
held by the project's own live gateway, a real gateway process.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import commit, git
from shipyard.adapters import Adapters
from shipyard.domain import Status
from shipyard.errors import InvalidInput
from shipyard.pipeline.context import free_port
from shipyard.pipeline.engine import Pipeline
from shipyard.services.runs import Runs

from .conftest import write_project

DATA = """\
qa:
  quality: {data: data/holdout.csv, label: y}
canary:
  traffic: {data: data/probe.csv}
"""


def production(port: int) -> str:
    return f"environments:\n  production: {{port: {port}}}\n"


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another program holds: a plain listening socket on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def tiny(root: Path, extra: str = "", **files: str) -> Path:
    """The tiny project with ``extra`` config, ``files`` and every file committed."""
    repo = root / "tiny"
    write_project(repo)
    config = repo / "shipyard.yaml"
    config.write_text(config.read_text() + extra)
    for relative, text in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "first")
    return repo


def refusal(adapters: Adapters, repo: Path) -> list[str]:
    """The problems ``Runs.queue`` refuses the commit with; asserts nothing was queued."""
    with pytest.raises(InvalidInput) as caught:
        Runs(adapters).queue(repo)
    assert adapters.store.list_projects() == []  # no project, no run: nothing was queued
    lines = caught.value.message.splitlines()
    assert lines[0].startswith("Commit ") and "would stop it later" in lines[0]
    assert caught.value.hint == "Fix them and run again; nothing was queued."
    return [line.removeprefix("- ") for line in lines[1:]]


def test_a_production_port_another_program_holds_refuses_the_run_naming_the_port(
    adapters: Adapters, tmp_path: Path, taken: int
) -> None:
    problems = refusal(adapters, tiny(tmp_path, production(taken)))
    assert problems == [
        f"Port {taken} of environments.production is in use by another program: stop it, "
        "or set environments.production.port in shipyard.yaml to a free port."
    ]


def test_a_missing_install_file_is_refused_at_trigger(adapters: Adapters, tmp_path: Path) -> None:
    repo = tiny(tmp_path)
    git(repo, "rm", "-q", "requirements.txt")
    sha = commit(repo, "no install file")
    assert refusal(adapters, repo) == [
        f"The install file requirements.txt is not in commit {sha[:12]}: commit it, or point "
        "`install:` in shipyard.yaml at your lock or requirements file."
    ]


def test_missing_and_unusable_data_files_are_each_named_with_their_field(
    adapters: Adapters, tmp_path: Path
) -> None:
    repo = tiny(tmp_path, DATA)
    (repo / "data").mkdir()
    (repo / "data" / "probe.csv").symlink_to(tmp_path / "outside.csv")
    sha = commit(repo, "a probe file that leads out of the project, no holdout")
    assert refusal(adapters, repo) == [
        f"The data file data/holdout.csv (qa.quality.data) is not in commit {sha[:12]}: "
        "commit the file itself, or fix `qa.quality.data` in shipyard.yaml.",
        "The data file data/probe.csv (canary.traffic.data) points outside the project "
        "(through a symlink): commit the file itself, or fix `canary.traffic.data` in "
        "shipyard.yaml.",
    ]


def test_the_training_data_files_are_checked_at_trigger_too(
    adapters: Adapters, tmp_path: Path
) -> None:
    repo = tiny(tmp_path, "data: {train: data/train.csv, holdout: data/check.csv}\n")
    sha = git(repo, "rev-parse", "HEAD").strip()
    assert refusal(adapters, repo) == [
        f"The data file data/train.csv (data.train) is not in commit {sha[:12]}: "
        "commit the file itself, or fix `data.train` in shipyard.yaml.",
        f"The data file data/check.csv (data.holdout) is not in commit {sha[:12]}: "
        "commit the file itself, or fix `data.holdout` in shipyard.yaml.",
    ]


def test_an_empty_data_file_and_a_git_lfs_pointer_are_not_data(
    adapters: Adapters, tmp_path: Path
) -> None:
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 12345\n"
    repo = tiny(tmp_path, DATA, **{"data/holdout.csv": pointer, "data/probe.csv": ""})
    problems = refusal(adapters, repo)
    assert [p.split(":")[0] for p in problems] == [
        "The data file data/holdout.csv (qa.quality.data) is a Git LFS pointer",
        "The data file data/probe.csv (canary.traffic.data) is empty",
    ]


def test_a_commit_with_its_files_and_free_ports_queues_as_before(
    adapters: Adapters, tmp_path: Path
) -> None:
    files = {"data/holdout.csv": "x,y\n1,a\n", "data/rows.csv": "x\n1\n"}
    repo = tiny(tmp_path, DATA + production(free_port()), **files)
    (repo / "data" / "probe.csv").symlink_to("rows.csv")  # a symlink inside the project is fine
    commit(repo, "probe rows through a symlink")
    run = Runs(adapters).queue(repo)
    assert (run.project, run.number, run.status) == ("tiny", 1, Status.QUEUED)


def test_a_port_held_by_the_projects_own_live_gateway_is_fine_and_by_no_one_else(
    adapters: Adapters, tmp_path: Path
) -> None:
    port = free_port()
    env_dir = adapters.state.environment_dir("tiny", "production")
    adapters.runtime.ensure_gateway(env_dir, port)  # tiny is live on the port
    try:
        run = Runs(adapters).queue(tiny(tmp_path, production(port)))
        assert run.status is Status.QUEUED  # its next run
        other = tiny(tmp_path / "other", production(port))
        config = other / "shipyard.yaml"
        config.write_text(config.read_text().replace("name: tiny", "name: other"))
        commit(other, "another project on the same port")
        with pytest.raises(InvalidInput, match=f"Port {port} of environments.production is in use"):
            Runs(adapters).queue(other)
    finally:
        adapters.runtime.stop_gateway(env_dir)


def test_a_port_taken_after_the_trigger_fails_the_build_before_any_work(
    adapters: Adapters, tmp_path: Path
) -> None:
    port = free_port()
    pipeline = Pipeline(adapters)
    ctx = pipeline.queue(tiny(tmp_path, production(port)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert pipeline.execute(ctx) is Status.FAILED
    build = adapters.store.get_run("tiny", ctx.number).stages[0]
    assert (build.name, build.status) == ("build", "failed")
    assert build.message == (
        f"Port {port} of environments.production is in use by another program: stop it, "
        "or set environments.production.port in shipyard.yaml to a free port. "
        "(Fix them and run the commit again; nothing was built.)"
    )
    assert not adapters.state.workspace("tiny", ctx.number).exists()  # nothing was checked out
