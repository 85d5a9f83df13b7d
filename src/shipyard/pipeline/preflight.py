"""Preflight: what would stop a run minutes in, found before it starts.

A production port another program holds fails the run at go-live, a missing install file at
the end of checkout, a data file that is not there at qa or canary. Each is known from the
commit's tree and this machine alone, so :func:`check` runs at trigger (``Runs.queue``: the
run is refused, or, for a push from a forge, recorded as failed at build) and again at the
start of the build stage, since a port can be taken in between. Every problem is one sentence
naming the file or port and what to do; all of them are reported at once.

Files are read from the commit (``git ls-tree``), never from a checkout, so the answer is the
same before and after the workspace exists; symlinks are followed inside the tree and refused
when they lead out of it, as ``paths.project_file`` refuses them where the file is used.
"""

from __future__ import annotations

import posixpath
import socket
from dataclasses import dataclass
from pathlib import Path

from shipyard.adapters import Adapters
from shipyard.config.schema import ProjectConfig
from shipyard.errors import StageFailed
from shipyard.git import show_file, tree_entry
from shipyard.pipeline.context import RunContext
from shipyard.pipeline.deploy import gateway_port

__all__ = ["CommitFiles", "before_build", "check", "data_files"]

# A Git LFS pointer is a small text file standing in for the data, which the commit lacks.
_LFS_POINTER = "version https://git-lfs.github.com/spec/"
_POINTER_SIZE = 1024
_MAX_LINKS = 8


def data_files(config: ProjectConfig) -> list[tuple[str, str]]:
    """(field, path) of each data file the config names; a new data setting is one more line."""
    qa, canary, data = config.qa, config.canary, config.data
    named = [
        ("data.train", data.train if data else None),
        ("data.holdout", data.holdout if data else None),
        ("qa.quality.data", qa.quality.data if qa and qa.quality else None),
        ("canary.traffic.data", canary.traffic.data if canary and canary.traffic else None),
    ]
    return [(field, path) for field, path in named if path]


@dataclass(frozen=True)
class CommitFiles:
    """The project's files as commit ``sha`` of ``repository`` holds them."""

    repository: Path
    sha: str

    def problem(self, path: str, *, data: bool = False) -> str | None:
        """What is wrong with the file ``path`` ("is not in commit ..."); None when it is fine.

        A ``data`` file must also hold data: not be empty, nor a Git LFS pointer to it.
        """
        found = self._blob(posixpath.normpath(path), _MAX_LINKS)
        if isinstance(found, str):
            return found
        return self._not_data(found) if data else None

    def _blob(self, path: str, links: int) -> _Blob | str:
        """The file ``path`` leads to, symlinks followed; or what is wrong with it."""
        if path == ".." or path.startswith(("../", "/")):
            return "points outside the project (through a symlink)"
        entry = tree_entry(self.repository, self.sha, path)
        if entry is None:
            return f"is not in commit {self.sha[:12]}"
        if entry.is_symlink:
            if links == 0:
                return "is a chain of symlinks too long to follow"
            target = show_file(self.repository, self.sha, path) or ""
            return self._blob(
                posixpath.normpath(posixpath.join(posixpath.dirname(path), target)), links - 1
            )
        if entry.kind != "blob":
            return f"is a folder in commit {self.sha[:12]}, not a file"
        return _Blob(path, entry.size)

    def _not_data(self, blob: _Blob) -> str | None:
        if blob.size == 0:
            return "is empty"
        small = blob.size is not None and blob.size < _POINTER_SIZE
        if small and (show_file(self.repository, self.sha, blob.path) or "").startswith(
            _LFS_POINTER
        ):
            return "is a Git LFS pointer: the commit holds a reference, not the data"
        return None


@dataclass(frozen=True)
class _Blob:
    path: str  # where the symlinks led
    size: int | None


def check(adapters: Adapters, config: ProjectConfig, files: CommitFiles) -> list[str]:
    """Every problem that would stop a run of ``config`` later, one sentence each."""
    return [*_file_problems(config, files), *_port_problems(adapters, config)]


def before_build(ctx: RunContext) -> None:
    """At the start of the build stage: fail it with the same sentences as at trigger."""
    problems = check(ctx.adapters, ctx.config, CommitFiles(ctx.repository, ctx.sha))
    if problems:
        raise StageFailed(
            " ".join(problems), hint="Fix them and run the commit again; nothing was built."
        )


def _file_problems(config: ProjectConfig, files: CommitFiles) -> list[str]:
    found = []
    install = files.problem(config.install)
    if install is not None:
        found.append(
            f"The install file {config.install} {install}: commit it, or point `install:` in "
            "shipyard.yaml at your lock or requirements file."
        )
    for field, path in data_files(config):
        why = files.problem(path, data=True)
        if why is not None:
            found.append(
                f"The data file {path} ({field}) {why}: commit the file itself, or fix "
                f"`{field}` in shipyard.yaml."
            )
    return found


def _port_problems(adapters: Adapters, config: ProjectConfig) -> list[str]:
    found, claimed = [], dict[int, str]()
    for name, env in config.environments.items():
        port = gateway_port(name, env)
        if port is None:
            continue
        if port in claimed:
            found.append(
                f"Port {port} is set for both environments.{claimed[port]} and "
                f"environments.{name}: give each environment its own port in shipyard.yaml."
            )
            continue
        claimed[port] = name
        holder = _holder(adapters, config.name, name, port)
        if holder is not None:
            found.append(
                f"Port {port} of environments.{name} is in use by {holder}: stop it, or set "
                f"environments.{name}.port in shipyard.yaml to a free port."
            )
    return found


def _holder(adapters: Adapters, project: str, environment: str, port: int) -> str | None:
    """Who holds ``port`` in a way that stops this environment's gateway; None when free or
    held by the environment's own gateway (a project already live runs again)."""
    if _free(port) or _gateway_on(adapters, project, environment, port):
        return None
    deployed = {(d.project, d.environment) for d in adapters.store.deployments()}
    for other in sorted(deployed - {(project, environment)}):
        if _gateway_on(adapters, *other, port):
            return f"this Shipyard's gateway of {other[0]}/{other[1]}"
    return "another program"


def _gateway_on(adapters: Adapters, project: str, environment: str, port: int) -> bool:
    """Whether the environment's own gateway listens on ``port`` and answers."""
    env_dir = adapters.state.environment_dir(project, environment)
    runtime = adapters.runtime
    return runtime.gateway_port(env_dir) == port and runtime.routes(env_dir) is not None


def _free(port: int) -> bool:
    """Whether a gateway could bind ``port`` now: bound as the gateway binds it (127.0.0.1,
    SO_REUSEADDR, so a port whose old connections linger is free), then let go at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
