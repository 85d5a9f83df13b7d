"""Real git repositories for tests: run git, commit everything, make a repository from files.

pytest puts this folder on ``sys.path`` (``pythonpath`` in pyproject.toml), so a test imports
it as ``from gitrepos import git, commit, make_repo, IDENTITY``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

# Who the tests' commits are by, as `git -c` arguments: no global git config is needed.
IDENTITY = ("-c", "user.name=T", "-c", "user.email=t@example.invalid")


def git(repo: Path, *args: str) -> str:
    """Run ``git -C repo *args``; its output, stripped. A failure raises CalledProcessError."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def commit(repo: Path, message: str = "change") -> str:
    """Commit everything in ``repo`` (``git add -A``; nothing to add is still a commit); the
    new commit's sha."""
    git(repo, "add", "-A")
    git(repo, *IDENTITY, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path, files: Mapping[str, str], *, branch: str = "main") -> Path:
    """A git repository at ``path`` with ``files`` (relative path: text) committed on ``branch``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    for relative, text in files.items():
        (path / relative).parent.mkdir(parents=True, exist_ok=True)
        (path / relative).write_text(text)
    commit(path, "first")
    return path
