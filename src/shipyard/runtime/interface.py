"""The runtime seam: how deployments run.

``local.py`` supervises model-server processes on this machine behind a gateway per
environment; a Ray Serve runtime comes later; ``memory.py`` is the in-memory twin for fast
tests. The model server (the ``serving`` package, run as a script folder) runs inside the
artifact's own Python environment, so it imports nothing from Shipyard: only the standard
library and :data:`SERVING_REQUIREMENTS`, which the pipeline installs into every artifact
environment.

The gateway is configured through a routes file (desired state, written atomically) that it
re-reads; every change bumps ``generation`` and the runtime waits until the gateway reports it,
so a weight change is in force when :meth:`Runtime.set_routes` returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import RuntimeFailure

__all__ = [
    "PIN_TOKEN_HEADER",
    "SERVING_REQUIREMENTS",
    "VERSION_HEADER",
    "Backend",
    "Routes",
    "RunningServer",
    "Runtime",
    "RuntimeFailure",
    "ServerSpec",
    "Shadow",
    "VersionStats",
    "gateway_url",
]

# Installed into every artifact environment next to the project's own requirements.
# httptools and uvloop: uvicorn picks them up and answers about twice as many requests per core
# as with its pure-Python parser and loop.
SERVING_REQUIREMENTS: tuple[str, ...] = (
    "starlette>=0.37",
    # runtime/serving/connections.py extends uvicorn's httptools protocol (its head limits): a
    # release that reshapes that internal class must be tested before it is allowed in.
    "uvicorn>=0.30,<0.55",
    "httptools>=0.6",
    "uvloop>=0.19; sys_platform != 'win32'",
    "prometheus-client>=0.20",
)

# Names the version that served a response; on a request, pins the version.
VERSION_HEADER = "x-shipyard-version"
# On a request pinned to a version that is not the stable one: the environment's pin token.
PIN_TOKEN_HEADER = "x-shipyard-pin-token"


def gateway_url(port: int) -> str:
    """Where clients reach an environment whose gateway listens on ``port``."""
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class ServerSpec:
    version: str
    python: Path  # interpreter of the artifact's environment
    code_dir: Path  # the project's code at the artifact's commit (put on PYTHONPATH)
    model_dir: Path  # the trained model files
    serve: str | Mapping[str, str]  # "module:Class" or {"format": "skops", "path": "model.skops"}
    model_name: str
    log: Path
    env: Mapping[str, str] = field(
        default_factory=dict
    )  # SHIPYARD_CONFIG, SHIPYARD_ENVIRONMENT, ...
    workers: int = 1  # processes sharing the server's socket, each with the model loaded
    max_batch_size: int = 32  # rows per predict call; 1 turns batching off
    max_batch_wait_ms: float = 0.0  # how long a batch that is not full may wait for more rows
    allow_pickle: bool = False  # pickle-based formats load only from a trusted, scanned build


@dataclass(frozen=True)
class RunningServer:
    version: str
    pid: int
    endpoint: str  # "http://127.0.0.1:PORT"


@dataclass(frozen=True)
class Backend:
    version: str
    url: str
    weight: int  # percent of traffic; the weights of one route table add up to 100
    stable: bool = False  # the version clients may pin without the pin token


@dataclass(frozen=True)
class Shadow:
    """A version that gets a mirrored copy of ``percent`` of the requests; never answers."""

    version: str
    url: str
    percent: float


@dataclass(frozen=True)
class Routes:
    """The route table an environment serves now: what its gateway reports, not what was asked."""

    generation: int = 0
    window: str = ""
    backends: tuple[Backend, ...] = ()
    shadow: Shadow | None = None

    def serves(self, backends: Sequence[Backend], shadow: Shadow | None) -> bool:
        """Whether these are the versions, addresses, weights and shadow being served."""

        def entries(table: Sequence[Backend]) -> set[tuple[str, str, int]]:
            return {(b.version, b.url, b.weight) for b in table}

        return entries(self.backends) == entries(backends) and self.shadow == shadow


@dataclass
class VersionStats:
    """What one version did in one observation window."""

    requests: int = 0
    errors: int = 0  # responses with status >= 500, or no response at all
    latencies_ms: list[float] = field(default_factory=list)
    predictions: dict[str, int] = field(default_factory=dict)  # predicted value -> count

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latencies_ms": self.latencies_ms,
            "predictions": self.predictions,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VersionStats:
        return cls(
            requests=int(data.get("requests", 0)),
            errors=int(data.get("errors", 0)),
            latencies_ms=[float(x) for x in data.get("latencies_ms", [])],
            predictions={str(k): int(v) for k, v in data.get("predictions", {}).items()},
        )


class Runtime(ABC):
    @abstractmethod
    def start_server(self, spec: ServerSpec, *, ready_timeout: float = 120.0) -> RunningServer:
        """Start a model server and return once it answers ready; RuntimeFailure otherwise."""

    @abstractmethod
    def stop_server(self, pid: int) -> None:
        """Stop a model server (its whole process group); no error if it is already gone."""

    @abstractmethod
    def is_alive(self, pid: int) -> bool: ...

    @abstractmethod
    def ensure_gateway(self, environment_dir: Path, port: int) -> str:
        """The environment's gateway URL, starting the gateway when it is not running."""

    @abstractmethod
    def gateway_port(self, environment_dir: Path) -> int | None:
        """The port where clients reach the environment: its gateway's, running or crashed;
        None before its first start and after ``stop_gateway``."""

    @abstractmethod
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
        """Route traffic by weight; returns when the gateway serves the new table.

        A new ``window`` name resets the per-version statistics the gateway keeps; a ``shadow``
        gets a mirrored share of requests; a ``sticky_header`` keeps each of its values on one
        version while the weights stand; a client may pin a version other than the stable one
        only by presenting ``pin_token`` (without one, such pins are refused).
        """

    @abstractmethod
    def routes(self, environment_dir: Path) -> Routes | None:
        """The routes the environment's gateway serves now; None when no gateway answers."""

    @abstractmethod
    def gateway_stats(self, environment_dir: Path) -> dict[str, VersionStats]:
        """Per-version statistics of the current window."""

    @abstractmethod
    def stop_gateway(self, environment_dir: Path) -> None: ...
