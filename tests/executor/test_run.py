"""Commands run in their own process group: output, exit codes, timeouts, cancels, leftovers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shipyard.errors import ExecutorError, InvalidInput
from shipyard.executor import CommandResult, LocalExecutor, PythonEnv

# A regression here would hang on a process that never dies: fail fast instead.
pytestmark = pytest.mark.timeout(30)


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie waiting for a reaper counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with_state = stat.read_text().rsplit(")", 1)[-1].split() if stat.exists() else ["?"]
    return with_state[0] != "Z"


def gone_soon(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def run(executor: LocalExecutor, tmp_path: Path, command: str, **options: object) -> CommandResult:
    options.setdefault("timeout", 20.0)
    options.setdefault("env", executor.command_env(None, {}))
    return executor.run(command, cwd=tmp_path, log=tmp_path / "logs" / "stage.log", **options)  # type: ignore[arg-type]


def test_exit_codes(executor: LocalExecutor, tmp_path: Path) -> None:
    assert run(executor, tmp_path, "true").ok
    failed = run(executor, tmp_path, "exit 3")
    assert (failed.exit_code, failed.ok) == (3, False)
    assert not failed.timed_out and not failed.cancelled


def test_output_goes_to_log_and_listener(executor: LocalExecutor, tmp_path: Path) -> None:
    seen: list[str] = []
    run(executor, tmp_path, "echo one; echo two >&2; printf 'no newline'", on_output=seen.append)
    run(executor, tmp_path, "echo appended")

    assert seen == ["one", "two", "no newline"]
    log = (tmp_path / "logs" / "stage.log").read_text()
    assert log == "one\ntwo\nno newline\nappended\n"


def test_a_failing_listener_does_not_stall_the_command(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    def listener(line: str) -> None:
        raise RuntimeError("listener broke")

    command = "for i in $(seq 1 5000); do echo line $i; done"
    result = run(executor, tmp_path, command, on_output=listener)
    assert result.ok
    log = (tmp_path / "logs" / "stage.log").read_text()
    assert "line 5000" in log and "listener broke" in log


def test_environment_reaches_the_command(
    executor: LocalExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    venv = PythonEnv(tmp_path / "venv", key="k", reused=True, seconds=0.0)
    env = executor.command_env(venv, {"SHIPYARD_RUN": "7", "SHIPYARD_COMMIT": "abc"})

    seen: list[str] = []
    command = 'echo "$SHIPYARD_RUN $SHIPYARD_COMMIT ${PYTHONPATH:-unset} $VIRTUAL_ENV"; echo $PATH'
    run(executor, tmp_path, command, env=env, on_output=seen.append)

    assert seen[0] == f"7 abc unset {venv.path}"
    assert seen[1].split(os.pathsep)[0] == str(venv.bin)


def test_timeout_kills_the_command_and_its_children(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = run(executor, tmp_path, "sleep 60 & echo $! > pids; sleep 60", timeout=0.5)

    assert result.timed_out and not result.ok
    assert 0.5 <= result.duration < 3
    assert time.monotonic() - started < 4
    assert gone_soon(int((tmp_path / "pids").read_text()))
    log = (tmp_path / "logs" / "stage.log").read_text()
    assert log.endswith("[shipyard] killed after timeout of 0.5s\n")


def test_sigterm_is_followed_by_sigkill(executor: LocalExecutor, tmp_path: Path) -> None:
    command = "trap '' TERM; echo $$ > pids; while true; do sleep 0.1; done"
    result = run(executor, tmp_path, command, timeout=0.3)
    assert result.timed_out
    assert 5.0 <= result.duration < 8.0  # the grace period, then the kill
    assert gone_soon(int((tmp_path / "pids").read_text()))


def test_cancel_kills_the_command(executor: LocalExecutor, tmp_path: Path) -> None:
    deadline = time.monotonic() + 0.3

    def cancel() -> bool:
        return time.monotonic() > deadline

    result = run(executor, tmp_path, "sleep 60 & echo $! > pids; wait", should_cancel=cancel)

    assert result.cancelled and not result.timed_out and not result.ok
    assert result.duration < 3
    assert gone_soon(int((tmp_path / "pids").read_text()))
    assert "[shipyard] cancelled after" in (tmp_path / "logs" / "stage.log").read_text()


def test_background_leftovers_are_killed_after_a_normal_exit(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = run(executor, tmp_path, "sleep 60 & echo $! > pids; echo done")

    assert result.ok and result.duration < 2
    assert time.monotonic() - started < 3  # the leftover held the output pipe open
    assert gone_soon(int((tmp_path / "pids").read_text()))


def test_missing_working_directory(executor: LocalExecutor, tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="Could not start"):
        executor.run("true", cwd=tmp_path / "nope", env={}, log=tmp_path / "log", timeout=5)


def test_timeout_must_be_positive(executor: LocalExecutor, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="timeout"):
        run(executor, tmp_path, "true", timeout=0)
