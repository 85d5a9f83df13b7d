"""`shipyard server`: the API, the workers and the controllers in one process.

The HTTP API (uvicorn) runs in the main thread; the workers, the reconciler, the poller of
remotes, the notifier and the approvals' clock run in threads beside it. The process holds
lease ``server:<owner>`` while it lives, so what it starts is known to be looked after; when it
dies the lease expires, and the next server settles what it left (``server/workers.py``).

SIGTERM and SIGINT stop it cleanly: the stage commands it runs are stopped, the runs it drives
go back to the queue at the interrupted stage with their leases released (so another server
takes them at once), and the model servers keep serving.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.adapters import Adapters
from shipyard.coordination import new_owner
from shipyard.coordination.interface import DEFAULT_TTL
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.processes import set_process_owner
from shipyard.server.workers import Workers
from shipyard.services import Services

__all__ = ["ServerOptions", "serve"]

Say = Callable[[str], None]
APPROVALS_EVERY = 2.0  # seconds between looks for approvals past their timeout
RECONCILE_EVERY = 2.0


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8700
    workers: int = 2
    lease_ttl: float = DEFAULT_TTL

    def check(self) -> None:
        if self.workers < 1:
            raise InvalidInput(f"--workers must be 1 or more, not {self.workers}.")
        if not 0 < self.port < 65536:
            raise InvalidInput(f"--port {self.port} is not a TCP port.", hint="Use 1-65535.")
        if self.lease_ttl < 1:
            raise InvalidInput(f"--lease-ttl must be at least 1 second, not {self.lease_ttl:g}.")


def serve(adapters: Adapters, options: ServerOptions, say: Say) -> None:
    """Run until SIGINT or SIGTERM; everything started here is stopped or handed on."""
    import uvicorn

    from shipyard.server.app import create_app

    options.check()
    owner = new_owner("server")
    set_process_owner(owner)  # what this process starts is recorded as this server's
    lease = adapters.leases.hold(f"server:{owner}", owner, options.lease_ttl)
    if lease is None:
        raise ShipyardError(f"Could not take the lease server:{owner}.")
    services = Services(adapters)
    stop = threading.Event()
    workers = Workers(adapters, options.workers, ttl=options.lease_ttl, owner=owner, say=say)
    config = uvicorn.Config(
        create_app(services),
        host=options.host,
        port=options.port,
        log_level="warning",
        # Open event streams (dashboards, log followers) end on shutdown, never hold it up.
        timeout_graceful_shutdown=3,
    )
    http = uvicorn.Server(config)
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Ours, not the default: uvicorn raises the signal again after its own shutdown, and
        # the process must live on to hand its runs back.
        signal.signal(signum, lambda *_: setattr(http, "should_exit", True))
    with lease:
        say(
            f"shipyard server {owner} on http://{options.host}:{options.port} "
            f"with {options.workers} worker(s)"
        )
        workers.start()
        url = f"http://{options.host}:{options.port}"
        loops = _loops(adapters, services, stop, say, url)
        threads = [_thread(name, work) for name, work in loops]
        try:
            http.run()  # returns on SIGINT/SIGTERM
        finally:
            say("stopping: runs in progress go back to the queue")
            stop.set()
            workers.stop()
            for thread in threads:
                thread.join(10)


def _thread(name: str, work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def _loops(
    adapters: Adapters, services: Services, stop: threading.Event, say: Say, base_url: str
) -> list[tuple[str, Callable[[], None]]]:
    """The server's background loops, each running until ``stop`` is set."""
    from shipyard.controllers import Reconciler
    from shipyard.notify import Notifier
    from shipyard.server.polling import Poller

    reconciler = Reconciler(adapters, say)
    notifier = Notifier(services, base_url=base_url)
    return [
        ("reconciler", lambda: reconciler.run_forever(RECONCILE_EVERY, stop)),
        ("poller", lambda: Poller(services).run(stop)),
        ("notifier", lambda: notifier.run(stop)),
        ("approvals", lambda: _every(APPROVALS_EVERY, stop, services, say)),
    ]


def _every(seconds: float, stop: threading.Event, services: Services, say: Say) -> None:
    """Fail the runs whose approval is past its timeout, every ``seconds``."""
    while not stop.wait(seconds):
        try:
            for expired in services.approvals.expire_overdue():
                say(f"approval expired: {expired}")
        except ShipyardError as exc:
            say(f"approvals: {exc.message}")
