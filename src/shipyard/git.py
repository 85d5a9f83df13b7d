"""The few git operations the core needs, with git's failures turned into GitError."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shipyard.errors import GitError


def _git(repository: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed.", hint="Install git and run again.") from exc
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {repository}: {done.stderr.strip()}")
    return done.stdout


def repository_root(path: Path) -> Path:
    """The top of the git work tree that holds ``path``."""
    try:
        return Path(_git(path, "rev-parse", "--show-toplevel").strip())
    except GitError as exc:
        raise GitError(
            f"{path} is not inside a git repository.",
            hint="Run `git init` and commit your project first.",
        ) from exc


def resolve_commit(repository: Path, ref: str) -> str:
    """The full sha ``ref`` names now: runs are pinned to it, never to a moving branch."""
    try:
        return _git(repository, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GitError as exc:
        raise GitError(
            f"{ref!r} is not a commit in {repository}.",
            hint="Give a branch, tag or sha that exists (`git log`).",
        ) from exc


def show_file(repository: Path, sha: str, path: str) -> str | None:
    """The file's text at ``sha``, or None when the commit does not have it."""
    try:
        return _git(repository, "show", f"{sha}:{path}")
    except GitError:
        return None
