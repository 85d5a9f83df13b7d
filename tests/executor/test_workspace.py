"""Workspaces: git worktrees of real repositories, detached at one commit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from gitrepos import commit, git
from shipyard.errors import ExecutorError, GitError
from shipyard.executor import LocalExecutor


def commit_model(repository: Path, content: str) -> str:
    """Commit ``model.txt`` holding ``content``; the new sha."""
    (repository / "model.txt").write_text(content)
    return commit(repository, content)


@dataclass(frozen=True)
class Repo:
    path: Path
    first: str
    second: str


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    return Repo(path, commit_model(path, "first"), commit_model(path, "second"))


def test_workspace_holds_exactly_the_commit(
    executor: LocalExecutor, repo: Repo, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws" / "1"
    assert executor.prepare_workspace(repo.path, repo.first, workspace) == workspace

    commit_model(repo.path, "third")  # a later commit on the branch must not leak in

    assert (workspace / "model.txt").read_text() == "first"
    assert git(workspace, "rev-parse", "HEAD") == repo.first
    assert (repo.path / "model.txt").read_text() == "third"


def test_two_workspaces_side_by_side(executor: LocalExecutor, repo: Repo, tmp_path: Path) -> None:
    executor.prepare_workspace(repo.path, repo.first, tmp_path / "a")
    executor.prepare_workspace(repo.path, repo.second, tmp_path / "b")
    assert (tmp_path / "a" / "model.txt").read_text() == "first"
    assert (tmp_path / "b" / "model.txt").read_text() == "second"


def test_unknown_sha_names_sha_and_repository(
    executor: LocalExecutor, repo: Repo, tmp_path: Path
) -> None:
    unknown = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError) as caught:
        executor.prepare_workspace(repo.path, unknown, tmp_path / "ws")
    assert unknown in caught.value.message
    assert str(repo.path) in caught.value.message
    assert caught.value.hint
    assert not (tmp_path / "ws").exists()


def test_short_sha_is_refused(executor: LocalExecutor, repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="full commit sha"):
        executor.prepare_workspace(repo.path, repo.first[:7], tmp_path / "ws")


def test_not_a_repository(executor: LocalExecutor, repo: Repo, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        executor.prepare_workspace(plain, repo.first, tmp_path / "ws")


def test_existing_workspace_is_refused(executor: LocalExecutor, repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    with pytest.raises(ExecutorError, match="already exists"):
        executor.prepare_workspace(repo.path, repo.first, tmp_path / "ws")


def test_release_removes_a_dirty_workspace_and_tolerates_repeats(
    executor: LocalExecutor, repo: Repo, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    executor.prepare_workspace(repo.path, repo.first, workspace)
    (workspace / "model.txt").write_text("changed")
    (workspace / "out").mkdir()
    (workspace / "out" / "model.skops").write_bytes(b"trained")

    executor.release_workspace(repo.path, workspace)
    executor.release_workspace(repo.path, workspace)

    assert not workspace.exists()
    assert str(workspace) not in git(repo.path, "worktree", "list")
    # The same path can be prepared again once released.
    executor.prepare_workspace(repo.path, repo.second, workspace)
    assert (workspace / "model.txt").read_text() == "second"


def test_relative_paths_mean_the_current_directory(
    executor: LocalExecutor, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workspace = executor.prepare_workspace(Path("repo"), repo.first, Path("ws"))
    assert workspace == tmp_path / "ws"
    assert (tmp_path / "ws" / "model.txt").read_text() == "first"
    executor.release_workspace(Path("repo"), Path("ws"))
    assert not (tmp_path / "ws").exists()
