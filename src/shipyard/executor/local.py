"""Run a stage's commands as local subprocesses.

Three jobs, each built to survive the machine it runs on:

* Workspaces are ``git worktree``s detached at the run's exact commit: cheap (objects are
  shared with the repository) and immune to later commits on the branch.
* Python environments are built by uv and cached by the sha256 of (lock, Python version,
  extra requirements). A venv cannot be moved once built, so it is built in place and a marker
  file written last tells a finished env from one a crash left half-built; a file lock keeps
  two runs from building the same env at once. A reused env costs one ``stat``.
* Commands run in their own process group, so a timeout or a cancel kills the command *and*
  everything it started, and nothing it left in the background outlives it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from filelock import FileLock
from uv import find_uv_bin

from shipyard.errors import ExecutorError, GitError, InvalidInput
from shipyard.executor.interface import CommandResult, Executor, PythonEnv
from shipyard.paths import StateDir, private_file

__all__ = ["COMPLETE_MARKER", "LocalExecutor"]

ENV_FORMAT = "shipyard-env-v1"  # bump when the way envs are built changes: old ones get rebuilt
COMPLETE_MARKER = ".shipyard-complete"
TERMINATE_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
POLL_INTERVAL = 0.1
READER_GRACE = 2.0  # how long to wait for the output pipe to drain once the group is dead
OUTPUT_TAIL = 20  # lines of uv's or git's output quoted in an error

# Variables that would make a command's Python ignore its environment or import foreign code.
SCRUBBED_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")
_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")

Stop = Literal["timeout", "cancel"]


class LocalExecutor(Executor):
    def __init__(self, state: StateDir) -> None:
        self.state = state

    # -- workspaces ---------------------------------------------------------------------------

    def prepare_workspace(self, repository: Path, sha: str, workspace: Path) -> Path:
        sha, workspace = sha.lower(), workspace.absolute()  # git would resolve it from repository
        _require_commit(repository, sha)
        if workspace.exists():
            raise ExecutorError(
                f"Workspace {workspace} already exists",
                hint="Release it first (a crashed run may have left it), or remove the folder.",
            )
        workspace.parent.mkdir(parents=True, exist_ok=True)
        _git(repository, "worktree", "add", "--detach", str(workspace), sha)
        return workspace

    def release_workspace(self, repository: Path, workspace: Path) -> None:
        workspace = workspace.absolute()
        if workspace.exists():
            with contextlib.suppress(GitError):
                _git(repository, "worktree", "remove", "--force", str(workspace))
            shutil.rmtree(workspace, ignore_errors=True)  # not a worktree (any more): just files
        with contextlib.suppress(GitError):
            _git(repository, "worktree", "prune")

    # -- Python environments ------------------------------------------------------------------

    def python_env(
        self, lock_file: Path, python: str, extra_requirements: Sequence[str] = ()
    ) -> PythonEnv:
        started = time.monotonic()
        spec = EnvSpec.of(lock_file, python, extra_requirements)
        path = self.state.envs / spec.key[:20]
        reused = (path / COMPLETE_MARKER).exists() or self._build_once(spec, path)
        return PythonEnv(path, spec.key, reused, time.monotonic() - started)

    def _build_once(self, spec: EnvSpec, path: Path) -> bool:
        """Build the env unless another run finishes it while we wait; True when reused."""
        self.state.env_locks.mkdir(parents=True, exist_ok=True)
        with FileLock(self.state.env_locks / f"env-{spec.key[:20]}.lock"):
            if (path / COMPLETE_MARKER).exists():
                return True
            shutil.rmtree(path, ignore_errors=True)  # half-built by a run that died
            _build_env(self.state, spec, path)
            return False

    def command_env(self, python_env: PythonEnv | None, extra: Mapping[str, str]) -> dict[str, str]:
        """The variables a stage command runs with: ours minus foreign Python, plus ``extra``."""
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_VARIABLES}
        env["PYTHONUNBUFFERED"] = "1"  # so the log shows a Python command's output as it comes
        if python_env is not None:
            env["PATH"] = os.pathsep.join([str(python_env.bin), env.get("PATH", os.defpath)])
            env["VIRTUAL_ENV"] = str(python_env.path)
        env.update(extra)
        return env

    # -- commands -----------------------------------------------------------------------------

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
        if not timeout > 0:
            raise InvalidInput(f"A command's timeout must be positive, got {timeout}")
        started = time.monotonic()
        with _LogSink(log) as sink:
            process = _spawn(command, cwd, env)
            if on_start is not None:
                _report_start(process, on_start)
            reader = threading.Thread(
                target=_pump, args=(process.stdout, sink, on_output), daemon=True
            )
            reader.start()
            stop = _supervise(process, started + timeout, should_cancel)
            duration = time.monotonic() - started
            reader.join(READER_GRACE)
            if reader.is_alive():
                sink.write("[shipyard] a process outside the command's group holds its output")
            if stop is not None:
                sink.write(_trailer(stop, timeout, duration))
        timed_out, cancelled = stop == "timeout", stop == "cancel"
        return CommandResult(process.returncode, duration, timed_out, cancelled)


# -- workspaces -------------------------------------------------------------------------------


def _require_commit(repository: Path, sha: str) -> None:
    if not _FULL_SHA.match(sha):
        raise GitError(
            f"{sha!r} is not a full commit sha (repository {repository})",
            hint="Pass the full 40-character sha, e.g. from `git rev-parse HEAD`.",
        )
    _git(repository, "rev-parse", "--git-dir")  # "not a git repository" beats "no such commit"
    try:
        _git(repository, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitError as error:
        raise GitError(
            f"Commit {sha} does not exist in {repository}",
            hint="Check the sha (`git log` lists them) or fetch the commit into that repository.",
        ) from error


def _git(repository: Path, *args: str) -> str:
    # Hooks are off: checking out a commit to build it must not run the repository's code.
    argv = ["git", "-c", "core.hooksPath=/dev/null", "-C", str(repository), *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise GitError("git is not installed", hint="Install git and put it on PATH.") from error
    if done.returncode != 0:
        raise GitError(f"`git {args[0]}` failed in {repository}:\n{_tail(done.stderr)}")
    return done.stdout


# -- Python environments ----------------------------------------------------------------------


@dataclass(frozen=True)
class EnvSpec:
    """What an environment is built from, and the cache key that names it."""

    lock_file: Path
    sources: tuple[Path, ...]  # every file whose bytes decide the env's content
    python: str
    extras: tuple[str, ...]
    key: str

    @classmethod
    def of(cls, lock_file: Path, python: str, extras: Iterable[str]) -> EnvSpec:
        sources = _lock_sources(lock_file)
        extras = tuple(sorted(extras))
        facts = {
            "format": ENV_FORMAT,
            "python": python,
            "extras": extras,
            "locks": [hashlib.sha256(_read(path)).hexdigest() for path in sources],
        }
        key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
        return cls(lock_file, sources, python, extras, key)

    @property
    def uv_lock(self) -> Path | None:
        return next((path for path in self.sources if path.name == "uv.lock"), None)


def _lock_sources(lock_file: Path) -> tuple[Path, ...]:
    """A ``uv.lock`` (named, or beside the named pyproject.toml) pins what pyproject asks for."""
    if lock_file.name == "pyproject.toml" and (lock_file.parent / "uv.lock").is_file():
        return (lock_file, lock_file.parent / "uv.lock")
    if lock_file.name == "uv.lock":
        return (lock_file.parent / "pyproject.toml", lock_file)
    return (lock_file,)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ExecutorError(
            f"Cannot read {path}: {error.strerror}",
            hint="Check `install:` in shipyard.yaml; it names the lock or requirements file.",
        ) from error


def _build_env(state: StateDir, spec: EnvSpec, path: Path) -> None:
    _create_venv(state, spec.python, path)
    requirements = _requirements_file(state, spec, path)
    python = str(path / "bin" / "python")
    done = _uv(state, "pip", "install", "--python", python, "-r", str(requirements), *spec.extras)
    if done.returncode != 0:
        raise ExecutorError(
            f"uv could not install {spec.lock_file} into {path}:\n{_tail(done.stdout)}",
            hint="Check that the requirements resolve for this Python and the index is reachable.",
        )
    _write_marker(spec, path)


def _create_venv(state: StateDir, python: str, path: Path) -> None:
    done = _uv(state, "venv", "--python", _interpreter(python), str(path))
    if done.returncode != 0:
        raise ExecutorError(
            f"No usable Python {python} interpreter to build the environment with:\n"
            f"{_tail(done.stdout)}",
            hint=f"Install Python {python} on this machine, or change `python:` in shipyard.yaml "
            f"to {sys.version_info.major}.{sys.version_info.minor} (the one Shipyard runs on).",
        )


def _interpreter(python: str) -> str:
    """The running interpreter when it fits: no discovery, and the same build as Shipyard's."""
    if python != f"{sys.version_info.major}.{sys.version_info.minor}":
        return python  # uv finds an installed one
    base = getattr(sys, "_base_executable", None) or sys.executable
    return str(Path(base).resolve())


def _requirements_file(state: StateDir, spec: EnvSpec, path: Path) -> Path:
    """The file to hand to ``uv pip install -r``; a uv.lock is exported to one first."""
    if spec.uv_lock is None:
        return spec.lock_file
    exported = path / ".shipyard-requirements.txt"
    options = ["--frozen", "--no-hashes", "--no-emit-project", "--no-header"]
    project = ["--project", str(spec.uv_lock.parent), "--output-file", str(exported)]
    done = _uv(state, "export", *options, *project)
    if done.returncode != 0:
        raise ExecutorError(
            f"uv could not export {spec.uv_lock}:\n{_tail(done.stdout)}",
            hint="Run `uv lock` in the project and commit the updated uv.lock.",
        )
    return exported


def _uv(state: StateDir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_VARIABLES}
    env.update(UV_CACHE_DIR=str(state.uv_cache), UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
    return subprocess.run(
        [find_uv_bin(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def _write_marker(spec: EnvSpec, path: Path) -> None:
    facts = {
        "key": spec.key,
        "python": spec.python,
        "sources": [str(source) for source in spec.sources],
        "extras": list(spec.extras),
        "built_at": time.time(),
    }
    partial = path / f"{COMPLETE_MARKER}.partial"
    partial.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path / COMPLETE_MARKER)  # the marker appears whole or not at all


def _tail(text: str, lines: int = OUTPUT_TAIL) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# -- commands ---------------------------------------------------------------------------------


class _LogSink:
    """The stage log, written by the reader thread and the trailer; flushed per line."""

    def __init__(self, path: Path) -> None:
        self._file = private_file(path).open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            if not self._file.closed:  # a reader left behind must not write after the end
                self._file.write(line + "\n")
                self._file.flush()

    def __enter__(self) -> _LogSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._file.close()


def _spawn(command: str, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            ["/bin/bash", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: one signal reaches every child
        )
    except OSError as error:
        raise ExecutorError(
            f"Could not start `{command}` in {cwd}: {error.strerror}",
            hint="Check that the working directory exists and /bin/bash is installed.",
        ) from error


def _report_start(process: subprocess.Popen[bytes], on_start: Callable[[int], None]) -> None:
    """Pass the pid on; if recording it fails, the command must not run unaccounted for."""
    try:
        on_start(process.pid)
    except BaseException:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        raise


def _pump(stream: IO[bytes], sink: _LogSink, on_output: Callable[[str], None] | None) -> None:
    listener = on_output
    with stream:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            sink.write(line)
            if listener is None:
                continue
            try:
                listener(line)
            except Exception as error:  # a broken listener must not stop draining the pipe
                sink.write(f"[shipyard] stopped passing output on after: {error!r}")
                listener = None


def _supervise(
    process: subprocess.Popen[bytes], deadline: float, should_cancel: Callable[[], bool]
) -> Stop | None:
    """Wait for the command; stop it on timeout or cancel; in any case kill what it left."""
    stop: Stop | None = None
    try:
        stop = _wait(process, deadline, should_cancel)
        if stop is not None:
            _terminate(process)
    finally:
        # The leader is still unreaped here, so its pid (= the group id) cannot be reused.
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
    return stop


def _wait(
    process: subprocess.Popen[bytes], deadline: float, should_cancel: Callable[[], bool]
) -> Stop | None:
    delay = 0.005  # short commands should not pay a full poll interval
    while not _exited(process):
        if time.monotonic() >= deadline:
            return "timeout"
        if should_cancel():
            return "cancel"
        time.sleep(delay)
        delay = min(delay * 2, POLL_INTERVAL)
    return None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + TERMINATE_GRACE
    while not _exited(process) and time.monotonic() < deadline:
        time.sleep(0.05)


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """True once the leader has exited, without reaping it (see :func:`_supervise`)."""
    if not hasattr(os, "waitid"):  # macOS: reaping early leaves a tiny pid-reuse window
        return process.poll() is not None
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    return os.waitid(os.P_PID, process.pid, flags) is not None


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _trailer(stop: Stop, timeout: float, duration: float) -> str:
    if stop == "timeout":
        return f"[shipyard] killed after timeout of {timeout:.1f}s"
    return f"[shipyard] cancelled after {duration:.1f}s"
