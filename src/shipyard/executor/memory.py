"""The executor's in-memory twin: commands are Python callables, no subprocess ever starts.

A test registers what each command string does (``on``: a callable, or a scripted
:class:`CommandResult`); an unknown command fails with exit code 127, as a shell would say
"command not found". Workspaces are plain folders (no git), Python environments are records
keyed like the real ones, and every call is kept in ``calls`` for the test to look at.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import ExecutorError, InvalidInput
from shipyard.executor.interface import CommandResult, Executor, PythonEnv

__all__ = ["Call", "Handler", "MemoryExecutor"]


@dataclass(frozen=True)
class Call:
    """One command as the twin saw it; ``say`` appends a line to its log and output."""

    command: str
    cwd: Path
    env: Mapping[str, str]
    say: Callable[[str], None]
    should_cancel: Callable[[], bool]


# What a command does: returns its exit code (or a whole result), may write through ``say``.
Handler = Callable[[Call], "int | CommandResult"]


@dataclass
class MemoryExecutor(Executor):
    root: Path  # where the fake Python environments are said to live
    handlers: dict[str, Handler | CommandResult] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    workspaces: dict[Path, tuple[Path, str]] = field(default_factory=dict)  # -> (repo, sha)
    envs: dict[str, PythonEnv] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on(self, command: str, does: Handler | CommandResult | int) -> None:
        """What ``command`` does from now on: a callable, a result, or just an exit code."""
        self.handlers[command] = CommandResult(does, 0.0) if isinstance(does, int) else does

    def prepare_workspace(self, repository: Path, sha: str, workspace: Path) -> Path:
        if workspace.exists():
            raise ExecutorError(
                f"Workspace {workspace} already exists",
                hint="Release it first (a crashed run may have left it), or remove the folder.",
            )
        workspace.mkdir(parents=True)
        self.workspaces[workspace] = (repository, sha)
        return workspace

    def release_workspace(self, repository: Path, workspace: Path) -> None:
        shutil.rmtree(workspace, ignore_errors=True)
        self.workspaces.pop(workspace, None)

    def python_env(
        self, lock_file: Path, python: str, extra_requirements: Sequence[str] = ()
    ) -> PythonEnv:
        facts = [python, sorted(extra_requirements), lock_file.read_text(errors="replace")]
        key = hashlib.sha256(json.dumps(facts).encode()).hexdigest()
        with self._lock:
            known = self.envs.get(key)
            if known is None:
                self.envs[key] = PythonEnv(self.root / key[:20], key, False, 0.0)
                return self.envs[key]
        return PythonEnv(known.path, key, True, 0.0)

    def command_env(self, python_env: PythonEnv | None, extra: Mapping[str, str]) -> dict[str, str]:
        env = {"PATH": str(python_env.bin)} if python_env is not None else {}
        return {**env, **extra}

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
        on_start: Callable[[int], None] | None = None,  # no process starts here: never called
    ) -> CommandResult:
        if not timeout > 0:
            raise InvalidInput(f"A command's timeout must be positive, got {timeout}")
        log.parent.mkdir(parents=True, exist_ok=True)

        def say(line: str) -> None:
            with log.open("a") as out:
                out.write(f"{line}\n")
            if on_output is not None:
                on_output(line)

        call = Call(command, cwd, dict(env), say, should_cancel)
        with self._lock:
            self.calls.append(call)
        if should_cancel():
            return CommandResult(-15, 0.0, cancelled=True)
        handler = self.handlers.get(command)
        if handler is None:
            say(f"sh: {command}: command not found (no handler registered in the twin)")
            return CommandResult(127, 0.0)
        if isinstance(handler, CommandResult):
            return handler
        outcome = handler(call)
        return outcome if isinstance(outcome, CommandResult) else CommandResult(outcome, 0.0)
