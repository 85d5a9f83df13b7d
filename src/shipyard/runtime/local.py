"""The embedded runtime: model servers and a gateway as local processes.

Every process starts in its own session so it outlives the CLI that started it and can be
stopped as a group (the model's own subprocesses included). Ports never race: the runtime
binds the socket itself and hands the open file descriptor to the child.

Per environment directory:

    gateway.pid    the gateway's process id
    gateway.port   the port it listens on
    gateway.log    its log
    routes.json    the desired route table (written atomically, re-read by the gateway)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from shipyard.errors import RuntimeFailure
from shipyard.paths import private_file
from shipyard.processes import ProcessBook, ProcessKind, pid_alive
from shipyard.runtime.interface import (
    Backend,
    Routes,
    RunningServer,
    Runtime,
    ServerSpec,
    VersionStats,
    gateway_url,
)
from shipyard.runtime.routes import RouteTable, Shadow, check_routes, pin_digest, table_of

__all__ = ["MODEL_SERVER", "LocalRuntime"]

MODEL_SERVER = Path(__file__).with_name("serving")  # run as a script folder
POLL_SECONDS = 0.05
STOP_GRACE_SECONDS = 5.0
GATEWAY_START_SECONDS = 20.0
ROUTES_APPLY_SECONDS = 10.0
LOG_TAIL_LINES = 20


class LocalRuntime(Runtime):
    def __init__(self, book: ProcessBook | None = None) -> None:
        # Children started by this object: polling them reaps them, so a dead child is not
        # mistaken for a live zombie by is_alive.
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        # Where each server and gateway is recorded with its owner, for `down` and restarts.
        self.book = book

    # --- model servers -----------------------------------------------------------------------

    def start_server(self, spec: ServerSpec, *, ready_timeout: float = 120.0) -> RunningServer:
        check_spec(spec)
        sock = bind_server_socket(spec.workers)
        port = sock.getsockname()[1]
        try:
            command = server_command(spec, sock.fileno())
            process = self._spawn(command, spec.code_dir, server_environment(spec), spec.log, sock)
            self._record(ProcessKind.MODEL_SERVER, process.pid, spec.version, spec.code_dir)
        finally:
            sock.close()
        endpoint = f"http://127.0.0.1:{port}"
        what = f"the model server of version {spec.version}"
        try:
            wait_until(lambda: answers(f"{endpoint}/v2/health/ready"), process, ready_timeout, what)
        except RuntimeFailure as exc:
            self.stop_server(process.pid)
            raise RuntimeFailure(
                f"{exc.message}; last lines of {spec.log}:\n{log_tail(spec.log)}",
                hint="fix the model or its serve setting; the log above says why it failed",
            ) from None
        return RunningServer(version=spec.version, pid=process.pid, endpoint=endpoint)

    def _spawn(
        self,
        command: list[str],
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        sock: socket.socket,
    ) -> subprocess.Popen[bytes]:
        """A detached child in its own session, serving on ``sock``, logging to ``log_path``."""
        with private_file(log_path).open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[sock.fileno()],
                start_new_session=True,
                umask=0o077,  # what a server writes (an environment's SQLite file) is private
            )
        self._children[process.pid] = process
        return process

    def _record(self, kind: ProcessKind, pid: int, version: str | None, where: Path) -> None:
        if self.book is not None:
            self.book.started(kind, pid, version=version, detail={"dir": str(where)})

    def stop_server(self, pid: int) -> None:
        if self.book is not None:
            self.book.ended(pid)
        if not self.is_alive(pid):
            return
        signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self.is_alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if self.is_alive(pid):
            signal_group(pid, signal.SIGKILL)
            self._reap(pid, timeout=STOP_GRACE_SECONDS)
        self._children.pop(pid, None)

    def is_alive(self, pid: int) -> bool:
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        return pid_alive(pid)

    def _reap(self, pid: int, *, timeout: float) -> None:
        child = self._children.get(pid)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout)

    # --- gateway -----------------------------------------------------------------------------

    def ensure_gateway(self, environment_dir: Path, port: int) -> str:
        """The gateway on ``port``; one running elsewhere is replaced, never left dark.

        A move binds and starts the new gateway first; the old one stops only once the new
        one serves the current routes. When ``port`` cannot be bound the old gateway keeps
        serving and nothing changes.
        """
        environment_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(environment_dir / "gateway.lock"):
            pid = read_int(environment_dir / "gateway.pid")
            old = pid if pid is not None and self.is_alive(pid) else None
            if old is None or not is_gateway(old, environment_dir):
                return self._start_gateway(environment_dir, port)
            if gateway_pid_on(port) == old:
                return gateway_url(port)
            if read_int(environment_dir / "gateway.port") == port:
                self.stop_server(old)  # ours but deaf: it holds the port and serves nobody
                return self._start_gateway(environment_dir, port)
            url = self._start_gateway(environment_dir, port)
            self.stop_server(old)  # the environment has moved and the new gateway serves
            return url

    def gateway_port(self, environment_dir: Path) -> int | None:
        return read_int(environment_dir / "gateway.port")

    def _start_gateway(self, environment_dir: Path, port: int) -> str:
        """A new gateway on ``port``, recorded as the environment's once it serves the routes."""
        routes = environment_dir / "routes.json"
        if not routes.exists():
            write_atomically(routes, {"generation": 0, "window": "", "backends": []})
        sock = bind_gateway_socket(port, environment_dir.name)
        command = [sys.executable, "-m", "shipyard.runtime.gateway", "--routes", str(routes)]
        command += ["--fd", str(sock.fileno())]
        log = environment_dir / "gateway.log"
        try:
            process = self._spawn(command, environment_dir, dict(os.environ), log, sock)
            self._record(ProcessKind.GATEWAY, process.pid, None, environment_dir)
        finally:
            sock.close()
        generation = read_generation(routes)

        def ready() -> bool:
            health = get_json(f"{gateway_url(port)}/_shipyard/health")
            return (
                isinstance(health, dict)
                and health.get("pid") == process.pid
                and int(health.get("generation", -1)) >= generation
            )

        try:
            wait_until(ready, process, GATEWAY_START_SECONDS, "the gateway")
        except RuntimeFailure as exc:
            self.stop_server(process.pid)
            raise RuntimeFailure(f"{exc.message}; last lines of {log}:\n{log_tail(log)}") from None
        write_atomically(environment_dir / "gateway.port", port)
        write_atomically(environment_dir / "gateway.pid", process.pid)
        return gateway_url(port)

    def set_routes(
        self,
        environment_dir: Path,
        backends: Sequence[Backend],
        window: str,
        *,
        shadow: Shadow | None = None,
        sticky_header: str | None = None,
        pin_token: str | None = None,
    ) -> None:
        """Route by weight (see ``routes.py``); a ``shadow`` gets a mirrored share of requests,
        a ``sticky_header`` keeps each of its values on one version while weights stand, and
        ``pin_token`` (stored as its digest only) lets a client pin a version that is not stable.
        """
        check_routes(backends, shadow)
        routes = environment_dir / "routes.json"
        environment_dir.mkdir(parents=True, exist_ok=True)
        digest = pin_digest(pin_token.encode()) if pin_token else None
        with FileLock(environment_dir / "routes.lock"):
            generation = read_generation(routes) + 1
            table = RouteTable.of(generation, window, backends, shadow, sticky_header, digest)
            write_atomically(routes, table.to_dict())
        url = self._gateway_url(environment_dir)
        deadline = time.monotonic() + ROUTES_APPLY_SECONDS
        while time.monotonic() < deadline:
            health = get_json(f"{url}/_shipyard/health")
            if health is not None and int(health.get("generation", -1)) >= generation:
                return
            time.sleep(POLL_SECONDS)
        raise RuntimeFailure(
            f"the gateway of {environment_dir.name} did not take routes generation {generation} "
            f"within {ROUTES_APPLY_SECONDS:.0f} s",
            hint=f"see {environment_dir / 'gateway.log'}; the saved routes apply when it restarts",
        )

    def routes(self, environment_dir: Path) -> Routes | None:
        """The gateway's own health view: the table it has loaded, not the file it may not have
        read yet (a gateway that died or was replaced serves nothing the file says)."""
        try:
            url = self._gateway_url(environment_dir)
        except RuntimeFailure:
            return None
        health = get_json(f"{url}/_shipyard/health")
        return table_of(health).served if isinstance(health, dict) else None

    def gateway_stats(self, environment_dir: Path) -> dict[str, VersionStats]:
        url = self._gateway_url(environment_dir)
        stats = get_json(f"{url}/_shipyard/stats")
        if stats is None:
            raise RuntimeFailure(
                f"the gateway of {environment_dir.name} does not answer at {url}",
                hint=f"see {environment_dir / 'gateway.log'}",
            )
        return {
            version: VersionStats.from_dict(data) for version, data in stats["versions"].items()
        }

    def stop_gateway(self, environment_dir: Path) -> None:
        pid = read_int(environment_dir / "gateway.pid")
        if pid is not None and self.is_alive(pid) and is_gateway(pid, environment_dir):
            self.stop_server(pid)
        for name in ("gateway.pid", "gateway.port"):
            (environment_dir / name).unlink(missing_ok=True)

    def _gateway_url(self, environment_dir: Path) -> str:
        port = read_int(environment_dir / "gateway.port")
        pid = read_int(environment_dir / "gateway.pid")
        if port is None or pid is None or not self.is_alive(pid):
            raise RuntimeFailure(
                f"no gateway is running for {environment_dir.name}",
                hint="deploy to the environment first; that starts its gateway",
            )
        return gateway_url(port)


# --- helpers: commands, sockets, files -------------------------------------------------------


def check_spec(spec: ServerSpec) -> None:
    for what, path in (
        ("interpreter", spec.python),
        ("code", spec.code_dir),
        ("model", spec.model_dir),
    ):
        if not path.exists():
            raise RuntimeFailure(
                f"cannot start version {spec.version}: its {what} {path} does not exist",
                hint="rebuild the artifact's environment or deploy the version again",
            )


def bind_server_socket(workers: int) -> socket.socket:
    """A free port for a model server; with SO_REUSEPORT when its workers should each listen.

    One socket shared by several workers sends most connections to whichever worker accepts
    first; with SO_REUSEPORT every worker binds a socket of its own and the kernel spreads them.
    """
    if workers == 1 or not hasattr(socket, "SO_REUSEPORT"):
        return bind_socket(0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(("127.0.0.1", 0))
    except OSError:
        sock.close()
        raise
    return sock


def server_command(spec: ServerSpec, fd: int) -> list[str]:
    serve = spec.serve if isinstance(spec.serve, str) else json.dumps(dict(spec.serve))
    return [
        str(spec.python),
        str(MODEL_SERVER),
        "--model-dir",
        str(spec.model_dir),
        "--serve",
        serve,
        "--model-name",
        spec.model_name,
        "--version",
        spec.version,
        "--fd",
        str(fd),
        "--workers",
        str(spec.workers),
        "--max-batch-size",
        str(spec.max_batch_size),
        "--max-batch-wait-ms",
        str(spec.max_batch_wait_ms),
        *(["--allow-pickle"] if spec.allow_pickle else []),
    ]


def server_environment(spec: ServerSpec) -> dict[str, str]:
    """Shipyard's own environment minus what would make the artifact's Python find Shipyard's."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(spec.code_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(spec.env)
    return env


def bind_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR: a restarted gateway may rebind while old connections sit in TIME_WAIT; a
    # socket that still *listens* on the port is refused all the same.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_gateway_socket(port: int, environment: str) -> socket.socket:
    try:
        return bind_socket(port)
    except OSError as exc:
        raise RuntimeFailure(
            f"port {port} is in use by another program ({exc.strerror})",
            hint=f"stop it or set environments.{environment}.port in shipyard.yaml",
        ) from None


def wait_until(ready: Callable[[], bool], process: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeFailure(
                f"{what} exited with code {process.returncode} before it was ready"
            )
        if ready():
            return
        time.sleep(POLL_SECONDS)
    raise RuntimeFailure(f"{what} was not ready within {timeout:g} s")


def answers(url: str) -> bool:
    import httpx  # here, not at the top: the CLI opens this runtime for commands that never call

    try:
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def get_json(url: str) -> Any:
    import httpx

    try:
        response = httpx.get(url, timeout=2.0, trust_env=False)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def gateway_pid_on(port: int) -> int | None:
    """The pid the gateway on ``port`` reports, None when nothing (or no gateway) answers."""
    health = get_json(f"{gateway_url(port)}/_shipyard/health")
    return health.get("pid") if isinstance(health, dict) else None


def signal_group(pid: int, sig: signal.Signals) -> None:
    """The whole group (the model's own subprocesses too); the lone process if it leads none."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    except PermissionError:
        pass


def is_gateway(pid: int, environment_dir: Path) -> bool:
    """Whether ``pid`` is this environment's gateway, not a process that inherited a stale pid."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        command = ps_command(pid)
    routes = str(environment_dir / "routes.json").encode()
    return b"shipyard.runtime.gateway" in command and routes in command


def ps_command(pid: int) -> bytes:
    try:
        return subprocess.run(
            ["ps", "-p", str(pid), "-o", "command="], capture_output=True, check=False
        ).stdout
    except OSError:
        return b""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_generation(routes: Path) -> int:
    try:
        return int(json.loads(routes.read_text()).get("generation", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def write_atomically(path: Path, value: Any) -> None:
    """Readers see the old file or the new one, never half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)
