"""The command line, and worker processes sharing one port.

``--workers N`` forks N workers from a small supervising process *before* anything heavy is
imported; each worker loads the model itself. Forking after the model loaded would share its
memory copy-on-write, but onnxruntime sessions, OpenMP and BLAS thread pools, and whatever
threads a project's class starts are not safe across fork, and the model server must serve any
of them. The price is N loads: in parallel, so little time, but memory (iris model, 2 workers:
128 MB PSS per loading worker, 41 MB per worker forked after one load).

All workers serve the port of the socket the runtime passed (``--fd``): each on a socket of its
own when that port allows SO_REUSEPORT (the kernel then spreads connections evenly), else all
on the passed socket. A worker that dies after it was ready is replaced; one that dies before (the model
cannot load) stops the whole server with its exit code, so the runtime sees the failure rather
than a server that is never ready. The runtime stops a server by signalling its process group:
the workers drain their requests themselves, and the supervisor only signals a worker that is
still there after a grace period (a second signal would make uvicorn drop open requests).

One client must not take a worker down: the request head is limited in size, header count and
time (:mod:`.connections`), an idle keep-alive connection closes after
:data:`KEEP_ALIVE_SECONDS`, and past ``--max-connections`` open connections a worker answers
503 instead of taking on more work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:  # imported for real in main(), once the metrics mode is set
    from .app import Readiness

log = logging.getLogger("shipyard.model_server")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # metrics.MULTIPROCESS_ENV: read before importing it
POLL_SECONDS = 0.05
MAX_CONNECTIONS = 1000  # per worker; each costs a file descriptor and a little memory
KEEP_ALIVE_SECONDS = 5  # an idle connection between requests is closed after this
MAX_HEAD_BYTES = 64 * 1024  # connections.MAX_HEAD_BYTES, for h11 when httptools is missing
STOP_GRACE_SECONDS = 8.0
PR_SET_PDEATHSIG = 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="shipyard-model-server", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--serve", required=True, help='"module:Class" or a JSON loader spec')
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the socket")
    parser.add_argument("--max-batch-size", type=int, default=32, help="rows per predict; 1: off")
    parser.add_argument("--max-batch-wait-ms", type=float, default=0.0, help="wait to fill a batch")
    parser.add_argument("--allow-pickle", action="store_true", help="load pickle-based formats")
    parser.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help="open connections per worker; a request past them is answered 503",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="serve on this already-bound socket")
    where.add_argument("--port", type=int, help="bind 127.0.0.1 on this port")
    args = parser.parse_args(argv)
    if min(args.workers, args.max_batch_size, args.max_connections) < 1:
        parser.error("--workers, --max-batch-size and --max-connections must be >= 1")
    if args.max_batch_wait_ms < 0:
        parser.error("--max-batch-wait-ms must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    log.info(
        "serving %s version %s from %s with %d worker(s)",
        args.model_name,
        args.version,
        args.model_dir,
        args.workers,
    )
    metrics_dir = None
    if args.workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="shipyard-metrics-")
        os.environ[MULTIPROCESS_ENV] = metrics_dir
    # Only now: prometheus_client picks its multiprocess mode when it is first imported.
    from .app import Readiness, Settings, build_app

    settings = Settings(
        model_dir=args.model_dir,
        serve=args.serve,
        model_name=args.model_name,
        version=args.version,
        max_batch_size=args.max_batch_size,
        max_batch_wait=args.max_batch_wait_ms / 1000,
        allow_pickle=args.allow_pickle,
    )
    sock = listening_socket(args.fd, args.port)
    readiness = Readiness(args.workers)

    def serve_worker(index: int) -> None:
        readiness.index = index
        app = build_app(settings, readiness)
        serve(app, worker_socket(sock) if args.workers > 1 else sock, args.max_connections)

    if args.workers == 1:
        serve_worker(0)
        return
    try:
        code = Supervisor(args.workers, serve_worker, readiness).run()
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(code)


def listening_socket(fd: int | None, port: int | None) -> socket.socket:
    if fd is not None:
        return socket.socket(fileno=fd)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port or 0))
    return sock


def worker_socket(shared: socket.socket) -> socket.socket:
    """A listening socket of the worker's own on the shared port, when the port allows it.

    With one shared socket, the worker that wakes first accepts every queued connection (uvloop
    accepts in a loop): wrk's 16 connections landed 16 to 0 or 13 to 3. With SO_REUSEPORT the
    kernel spreads new connections across the workers' sockets instead. The shared socket
    stays bound in the supervisor, never listening, so the port stays reserved.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        return shared
    if not shared.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return shared  # bound without it: another socket cannot join the port
    own = socket.socket(shared.family, socket.SOCK_STREAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(shared.getsockname()[:2])
    return own


def serve(app: Any, sock: socket.socket, max_connections: int = MAX_CONNECTIONS) -> None:
    # Not uvicorn.run(fd=...): it wraps the fd as AF_UNIX, so asyncio never sets TCP_NODELAY
    # and every keep-alive response waits ~40 ms on Nagle + delayed ACK. Hand it the socket.
    # uvicorn picks uvloop when the environment has it (SERVING_REQUIREMENTS).
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=http_protocol(),
        limit_concurrency=max_connections,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
    uvicorn.Server(config).run(sockets=[sock])


def http_protocol() -> type[asyncio.Protocol] | str:
    """httptools with the head limits of :mod:`.connections`, else h11 with its own limit."""
    try:
        from .connections import LimitedHttpToolsProtocol
    except ImportError:  # no httptools here: h11 answers 400 past MAX_HEAD_BYTES of head
        return "h11"
    return LimitedHttpToolsProtocol


class Supervisor:
    """Forks the workers, replaces one that dies after it was ready, and waits for them."""

    def __init__(self, count: int, work: Callable[[int], None], readiness: Readiness) -> None:
        self.count = count
        self.work = work
        self.readiness = readiness
        self.workers: dict[int, int] = {}  # pid -> worker index
        self.stopping_since: float | None = None
        self.signalled = False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.on_stop)
        for index in range(self.count):
            self.spawn(index)
        while self.workers:
            ended = self.reap()
            if ended is None:
                self.escalate()
                time.sleep(POLL_SECONDS)
                continue
            index, code = ended
            if self.stopping_since is not None:
                continue
            if not self.readiness.is_ready(index):
                log.error(
                    "worker %d exited with code %s before it was ready; stopping", index, code
                )
                self.stop_all()
                return code or 3
            log.warning("worker %d exited with code %s; starting a new one", index, code)
            self.spawn(index)
        return 0

    def on_stop(self, signum: int, frame: Any) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()

    def spawn(self, index: int) -> None:
        self.readiness.flags[index] = 0
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                die_with_parent()
                self.work(index)
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = index

    def reap(self) -> tuple[int, int] | None:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            self.workers.clear()
            return None
        if pid == 0 or pid not in self.workers:
            return None
        return self.workers.pop(pid), os.waitstatus_to_exitcode(status)

    def escalate(self) -> None:
        """Workers still there long after the stop signal get one of their own, then a kill."""
        if self.stopping_since is None:
            return
        waited = time.monotonic() - self.stopping_since
        if waited > 2 * STOP_GRACE_SECONDS:
            self.signal_all(signal.SIGKILL)
        elif waited > STOP_GRACE_SECONDS and not self.signalled:
            self.signal_all(signal.SIGTERM)
            self.signalled = True

    def signal_all(self, sig: signal.Signals) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop_all(self) -> None:
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self.workers and time.monotonic() < deadline:
            if self.reap() is None:
                time.sleep(POLL_SECONDS)
        self.signal_all(signal.SIGKILL)


def die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if the supervisor dies, so no worker outlives it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
