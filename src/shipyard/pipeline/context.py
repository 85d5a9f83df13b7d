"""What a stage gets: the run, its workspace and the adapters, plus a way to run commands."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shipyard.adapters import Adapters
from shipyard.config.schema import ProjectConfig
from shipyard.coordination import HeldLease
from shipyard.domain import Status
from shipyard.errors import Cancelled, StageFailed, StageTimeout
from shipyard.executor.interface import CommandResult, PythonEnv
from shipyard.paths import StateDir, private_file
from shipyard.processes import ProcessBook, ProcessKind
from shipyard.store import Store, current_actor


class Reporter(Protocol):
    """Receives a run's progress; the CLI renders it with Rich, tests collect it."""

    def stage_started(self, stage: str) -> None: ...

    def line(self, stage: str, text: str) -> None: ...

    def stage_finished(self, stage: str, status: Status, message: str, seconds: float) -> None: ...


class NullReporter:
    def stage_started(self, stage: str) -> None:
        pass

    def line(self, stage: str, text: str) -> None:
        pass

    def stage_finished(self, stage: str, status: Status, message: str, seconds: float) -> None:
        pass


@dataclass(frozen=True)
class StageOutcome:
    """How a stage ended when it did not raise."""

    status: Status
    message: str
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, message: str, **summary: Any) -> StageOutcome:
        return cls(Status.PASSED, message, summary)

    @classmethod
    def skipped(cls, message: str, **summary: Any) -> StageOutcome:
        return cls(Status.SKIPPED, message, summary)


@dataclass
class RunContext:
    adapters: Adapters
    project: str
    number: int
    sha: str
    ref: str | None
    repository: Path
    config: ProjectConfig
    reporter: Reporter = field(default_factory=NullReporter)
    # Filled in as the stages go.
    workspace: Path | None = None
    env: PythonEnv | None = None
    artifact_path: Path | None = None
    build_info: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    results: dict[str, StageOutcome] = field(default_factory=dict)
    # Set by the engine while it drives the run: its lease, and the worker's shutdown signal.
    lease: HeldLease | None = None
    stopping: threading.Event | None = None

    @property
    def state(self) -> StateDir:
        return self.adapters.state

    @property
    def store(self) -> Store:
        return self.adapters.store

    @property
    def run_dir(self) -> Path:
        return self.state.run_dir(self.project, self.number)

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"

    @property
    def reports_dir(self) -> Path:
        return self.run_dir / "reports"

    @property
    def version(self) -> str:
        """The artifact version this run builds: run number and short sha."""
        return f"{self.number}-{self.sha[:7]}"

    @property
    def code_dir(self) -> Path:
        if self.workspace is None:
            raise StageFailed("The workspace is not ready: the build stage did not run.")
        return self.workspace

    def log_path(self, stage: str) -> Path:
        return self.state.stage_log(self.project, self.number, stage)

    def cancelled(self) -> bool:
        """Stop what runs now: the run was cancelled, its worker stops, or it lost the run."""
        if self.stopping is not None and self.stopping.is_set():
            return True
        if self.lease is not None and self.lease.lost.is_set():
            return True
        return self.store.cancel_requested(self.project, self.number)

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise Cancelled(f"Run {self.project}#{self.number} was cancelled.")

    def say(self, stage: str, text: str) -> None:
        """A line from Shipyard itself into the stage's log and the terminal."""
        line = f"[shipyard] {text}"
        with private_file(self.log_path(stage)).open("a", encoding="utf-8") as log:
            log.write(line + "\n")
        self.reporter.line(stage, line)

    def shipyard_env(self, stage: str, **extra: str) -> dict[str, str]:
        """The SHIPYARD_* variables (README.md, "The stages") for one command."""
        variables = {
            "SHIPYARD_RUN": str(self.number),
            "SHIPYARD_COMMIT": self.sha,
            "SHIPYARD_PROJECT": self.project,
            "SHIPYARD_STAGE": stage,
            "SHIPYARD_MODEL_DIR": str(self.model_dir),
            "SHIPYARD_REPORTS_DIR": str(self.reports_dir),
            "SHIPYARD_ACTOR": current_actor(),
        }
        variables.update(extra)
        return variables

    def run_command(
        self, stage: str, command: str, *, timeout: float, env: Mapping[str, str] | None = None
    ) -> CommandResult:
        """Run a project command in the workspace's environment; raise when it did not succeed."""
        self.say(stage, f"$ {command}")
        executor = self.adapters.executor
        # The project's root is importable, as it is for the model server.
        variables = {**self.shipyard_env(stage), "PYTHONPATH": str(self.code_dir), **(env or {})}
        full_env = executor.command_env(self.env, variables)
        book, started = ProcessBook(self.store, self.adapters.leases), []

        def record(pid: int) -> None:
            started.append(pid)
            book.started(
                ProcessKind.COMMAND,
                pid,
                project=self.project,
                version=self.version,
                run_id=self.store.get_run(self.project, self.number).id,
                detail={"stage": stage, "command": command},
            )

        try:
            result = executor.run(
                command,
                cwd=self.code_dir,
                env=full_env,
                log=self.log_path(stage),
                timeout=timeout,
                should_cancel=self.cancelled,
                on_output=lambda text: self.reporter.line(stage, text),
                on_start=record,
            )
        finally:
            for pid in started:
                book.ended(pid)
        if result.cancelled:
            raise Cancelled(f"Run {self.project}#{self.number} was cancelled during {stage}.")
        if result.timed_out:
            raise StageTimeout(
                f"`{command}` ran past the {stage} timeout of {timeout:g}s and was stopped.",
                hint=f"Make it faster or raise `{stage}.timeout` in shipyard.yaml.",
            )
        return result

    def wait(
        self, seconds: float, *, poll: float = 0.2, until: Callable[[], bool] | None = None
    ) -> None:
        """Sleep, but notice a cancel (and an optional condition) within ``poll`` seconds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_cancelled()
            if until is not None and until():
                return
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
