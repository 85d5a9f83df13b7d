"""The executor seam: where a run's commands execute.

The local executor (``local.py``) runs them as subprocesses on this machine; a Ray executor
will run them as Ray tasks. Both prepare a clean workspace at the run's exact commit, build the
project's Python environment (cached by the hash of lock + Python version) and run commands in
their own process group, killed with all their children on timeout or cancel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import ExecutorError

__all__ = ["CommandResult", "Executor", "ExecutorError", "PythonEnv"]


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    duration: float  # seconds
    timed_out: bool = False
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


@dataclass(frozen=True)
class PythonEnv:
    path: Path  # the venv folder
    key: str  # sha256 of (lock bytes, Python version, extra requirements)
    reused: bool  # True when the cache already held it
    seconds: float  # time spent getting it

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.path / "bin"


class Executor(ABC):
    @abstractmethod
    def prepare_workspace(self, repository: Path, sha: str, workspace: Path) -> Path:
        """A clean checkout of ``sha`` at ``workspace`` (which must not exist yet)."""

    @abstractmethod
    def release_workspace(self, repository: Path, workspace: Path) -> None:
        """Remove a workspace made by :meth:`prepare_workspace`."""

    @abstractmethod
    def python_env(
        self, lock_file: Path, python: str, extra_requirements: Sequence[str] = ()
    ) -> PythonEnv:
        """The environment for ``lock_file`` (requirements*.txt, *.lock or pyproject.toml)."""

    @abstractmethod
    def command_env(self, python_env: PythonEnv | None, extra: Mapping[str, str]) -> dict[str, str]:
        """The environment variables for a command: the Python env first on PATH, then ``extra``."""

    @abstractmethod
    def run(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
        timeout: float,
        should_cancel: Callable[[], bool] = lambda: False,
        on_output: Callable[[str], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> CommandResult:
        """Run a shell command; append its output to ``log`` and pass each line to ``on_output``.

        ``on_start`` gets the id of the process group leader once it runs, so the caller can
        record it (a restarted server finds and stops a command its dead owner left)."""
