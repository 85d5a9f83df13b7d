"""Python environments built by uv and cached by the hash of lock + Python + extras.

Every test makes its lock's bytes unique (see the ``lock`` fixture) so it gets its own env,
while all of them share one uv cache: the only package downloaded is ``six``, once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from uv import find_uv_bin

from shipyard.errors import ExecutorError
from shipyard.executor import LocalExecutor, PythonEnv
from shipyard.executor.local import COMPLETE_MARKER
from shipyard.paths import StateDir

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"


def imports(env: PythonEnv, module: str) -> bool:
    done = subprocess.run([str(env.python), "-c", f"import {module}"], capture_output=True)
    return done.returncode == 0


def prefix(env: PythonEnv) -> str:
    code = "import sys; print(sys.prefix)"
    done = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_empty_requirements_build_then_reuse(env_executor: LocalExecutor, lock: Path) -> None:
    built = env_executor.python_env(lock, RUNNING)
    again = env_executor.python_env(lock, RUNNING)

    assert not built.reused
    assert (built.path / COMPLETE_MARKER).is_file()
    assert built.path.parent == env_executor.state.envs
    assert prefix(built) == str(built.path)
    assert again.reused
    assert (again.path, again.key) == (built.path, built.key)
    assert again.seconds < 0.05


def test_installs_the_requirements_and_extras(env_executor: LocalExecutor, lock: Path) -> None:
    lock.write_text(lock.read_text() + "six\n")
    env = env_executor.python_env(lock, RUNNING)
    assert imports(env, "six")
    assert not imports(env, "pytest")  # nothing leaks in from Shipyard's own environment


def test_a_half_built_env_is_rebuilt(env_executor: LocalExecutor, lock: Path) -> None:
    first = env_executor.python_env(lock, RUNNING)
    (first.path / COMPLETE_MARKER).unlink()  # as if the build had died before finishing
    (first.path / "debris").write_text("left by a crash")

    second = env_executor.python_env(lock, RUNNING)

    assert not second.reused
    assert second.path == first.path
    assert (second.path / COMPLETE_MARKER).is_file()
    assert not (second.path / "debris").exists()


def test_the_key_follows_lock_python_and_extras(env_executor: LocalExecutor, lock: Path) -> None:
    base = env_executor.python_env(lock, RUNNING)
    with_extras = env_executor.python_env(lock, RUNNING, ["six"])
    lock.write_text(lock.read_text() + "# changed\n")
    changed = env_executor.python_env(lock, RUNNING)

    assert len({base.path, with_extras.path, changed.path}) == 3
    assert not changed.reused
    assert imports(with_extras, "six") and not imports(base, "six")


def test_extras_order_does_not_matter(env_executor: LocalExecutor, lock: Path) -> None:
    one = env_executor.python_env(lock, RUNNING, ["six", "six>=1"])
    other = env_executor.python_env(lock, RUNNING, ["six>=1", "six"])
    assert other.reused and other.key == one.key


def test_two_runs_build_one_env_once(env_executor: LocalExecutor, lock: Path) -> None:
    results: list[PythonEnv] = []
    threads = [
        threading.Thread(target=lambda: results.append(env_executor.python_env(lock, RUNNING)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(env.reused for env in results) == [False, True]
    assert results[0].path == results[1].path


def test_pyproject_with_uv_lock_installs_the_locked_versions(
    env_executor: LocalExecutor, env_state: StateDir, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\nrequires-python = ">=3.8"\n'
        'dependencies = ["six"]\n'
    )
    uv_env = {**os.environ, "UV_CACHE_DIR": str(env_state.uv_cache), "UV_PYTHON": sys.executable}
    lock_command = [find_uv_bin(), "lock", "--project", str(project)]
    subprocess.run(lock_command, env=uv_env, capture_output=True, check=True)

    env = env_executor.python_env(project / "pyproject.toml", RUNNING)

    assert imports(env, "six")
    assert "six==" in (env.path / ".shipyard-requirements.txt").read_text()
    assert not imports(env, "demo")  # the project's own code comes from the workspace


def test_pyproject_without_lock(env_executor: LocalExecutor, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "bare"\nversion = "0"\ndependencies = ["six"]\n'
    )
    env = env_executor.python_env(tmp_path / "pyproject.toml", RUNNING)
    assert imports(env, "six")


def test_missing_python_says_what_to_do(executor: LocalExecutor, lock: Path) -> None:
    with pytest.raises(ExecutorError) as caught:
        executor.python_env(lock, "3.99")
    assert "Python 3.99" in caught.value.message
    assert caught.value.hint and "shipyard.yaml" in caught.value.hint
    assert not any(executor.state.envs.glob(f"*/{COMPLETE_MARKER}"))


def test_unresolvable_requirements_quote_uv(executor: LocalExecutor, lock: Path) -> None:
    lock.write_text("this is not a requirement !!\n")
    with pytest.raises(ExecutorError, match="uv could not install") as caught:
        executor.python_env(lock, RUNNING)
    assert "requirements.txt" in caught.value.message
    assert len(caught.value.message.splitlines()) <= 22


def test_missing_lock_file(executor: LocalExecutor, tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="Cannot read") as caught:
        executor.python_env(tmp_path / "nope.txt", RUNNING)
    assert caught.value.hint and "install:" in caught.value.hint
