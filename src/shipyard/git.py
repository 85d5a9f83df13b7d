"""The few git operations the core needs, with git's failures turned into GitError.

Besides reading a local repository, a server keeps a bare mirror of each registered project
(``mirror``/``fetch_commit``) and asks remotes for their branch heads (``ls_remote``). A ref or
remote that starts with ``-`` is never handed to git: it would be read as an option.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import GitError, InvalidInput

__all__ = [
    "TreeEntry",
    "fetch_commit",
    "hooks_dir",
    "is_full_sha",
    "ls_remote",
    "mirror",
    "repository_root",
    "resolve_commit",
    "show_file",
    "tree_entry",
]

_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
# Remote operations: never wait for a password prompt, and speak only the protocols a
# repository is fetched over, never a remote helper (ext::, fd::, ...) that runs commands.
_REMOTE_ENV = {"GIT_TERMINAL_PROMPT": "0"}
_PROTOCOLS = ["-c", "protocol.allow=never"] + [
    arg
    for name in ("https", "http", "ssh", "git", "file")
    for arg in ("-c", f"protocol.{name}.allow=always")
]
_FETCH = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head")


def _git(repository: Path, *args: str, remote: bool = False, timeout: float = 60) -> str:
    env = {**os.environ, **_REMOTE_ENV} if remote else None
    options = _PROTOCOLS if remote else []
    try:
        done = subprocess.run(
            ["git", *options, "-C", str(repository), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed.", hint="Install git and run again.") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} took longer than {timeout:g} s in {repository}.") from exc
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {repository}: {done.stderr.strip()}")
    return done.stdout


def repository_root(path: Path) -> Path:
    """The top of the git work tree that holds ``path`` (a bare repository: its folder)."""
    try:
        answer = _git(path, "rev-parse", "--is-bare-repository", "--absolute-git-dir")
        bare, git_dir = answer.splitlines()
        if bare == "true":  # a server's mirror: runs read commits from it, never a checkout
            return Path(git_dir)
        return Path(_git(path, "rev-parse", "--show-toplevel").strip())
    except (GitError, ValueError) as exc:
        raise GitError(
            f"{path} is not inside a git repository.",
            hint="Run `git init` and commit your project first.",
        ) from exc


def resolve_commit(repository: Path, ref: str) -> str:
    """The full sha ``ref`` names now: runs are pinned to it, never to a moving branch."""
    _refuse_option(ref, "ref")
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


@dataclass(frozen=True)
class TreeEntry:
    """One path of a commit's tree, as ``git ls-tree -l`` lists it."""

    mode: str  # 100644, 100755, 120000 (a symlink), 040000 (a folder), 160000 (a submodule)
    kind: str  # blob, tree or commit
    size: int | None  # bytes of a blob; None for the others

    @property
    def is_symlink(self) -> bool:
        return self.mode == "120000"


def tree_entry(repository: Path, sha: str, path: str) -> TreeEntry | None:
    """What ``path`` is in commit ``sha``, without checking it out; None when it is not there."""
    listed = _git(repository, "--literal-pathspecs", "ls-tree", "-l", "-z", sha, "--", path)
    listed = listed.split("\0")[0]
    head, _, name = listed.partition("\t")
    fields = head.split()
    if name != path or len(fields) != 4:
        return None  # absent (or, for "dir/", the folder's content rather than the folder)
    mode, kind, _object, size = fields
    return TreeEntry(mode, kind, int(size) if size.isdigit() else None)


def is_full_sha(text: str) -> bool:
    return bool(_FULL_SHA.match(text))


def mirror(path: Path) -> Path:
    """A bare repository at ``path`` (created when missing) that fetched commits are kept in."""
    from shipyard.paths import private_dir

    if not (path / "HEAD").is_file():
        private_dir(path.parent)
        _git(path.parent, "init", "--quiet", "--bare", str(path))
        os.chmod(path, 0o700)
    return path


def ls_remote(remote: str, *patterns: str) -> dict[str, str]:
    """The remote's refs that match ``patterns`` (all refs without any), by full name -> sha."""
    _refuse_option(remote, "remote")
    for pattern in patterns:
        _refuse_option(pattern, "ref")
    text = _git(Path("/"), "ls-remote", "--", remote, *patterns, remote=True)
    found = {}
    for line in text.splitlines():
        sha, _, name = line.partition("\t")
        if name and not name.endswith("^{}"):
            found[name] = sha
    return found


def fetch_commit(mirror: Path, remote: str, sha: str, branch: str | None = None) -> str:
    """Fetch exactly ``sha`` from ``remote`` into ``mirror`` and keep it under a ref of its own.

    Remotes that refuse a fetch by sha (old servers) are asked for ``branch`` instead, which
    must then hold the commit.
    """
    _refuse_option(remote, "remote")
    if not is_full_sha(sha):
        raise InvalidInput(f"{sha!r} is not a full commit sha.", hint="Give all 40 hex digits.")
    keep = f"refs/shipyard/commits/{sha}"
    if _has_commit(mirror, sha):
        return sha
    try:
        _git(mirror, *_FETCH, "--", remote, f"{sha}:{keep}", remote=True)
    except GitError:
        if branch is None:
            raise
        _refuse_option(branch, "branch")
        _git(
            mirror,
            *_FETCH,
            "--",
            remote,
            f"+refs/heads/{branch}:refs/shipyard/heads/{branch}",
            remote=True,
        )
        if not _has_commit(mirror, sha):
            raise GitError(
                f"{remote} does not have commit {sha[:12]} on {branch} any more.",
                hint="It was probably force-pushed away; push it again.",
            ) from None
        _git(mirror, "update-ref", keep, sha)
    return sha


def _has_commit(repository: Path, sha: str) -> bool:
    try:
        _git(repository, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitError:
        return False
    return True


def _refuse_option(value: str, what: str) -> None:
    if value.startswith("-"):
        raise InvalidInput(
            f"The {what} {value!r} starts with '-'.",
            hint=f"A {what} never starts with '-': git would read it as an option.",
        )


def hooks_dir(repository: Path) -> Path:
    """Where git looks for the repository's hooks (``core.hooksPath`` honoured)."""
    root = repository_root(repository)
    return (root / _git(root, "rev-parse", "--git-path", "hooks").strip()).resolve()
