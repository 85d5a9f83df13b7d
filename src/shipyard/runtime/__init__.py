"""Running deployments: model servers behind a traffic-splitting gateway.

The seam is :class:`Runtime` (``interface.py``); :class:`LocalRuntime` (``local.py``) runs
everything as local processes. ``serving/`` is a standalone package run by the artifact's
own interpreter and ``gateway.py`` runs with ``python -m shipyard.runtime.gateway``.
"""

from shipyard.runtime.interface import (
    SERVING_REQUIREMENTS,
    VERSION_HEADER,
    Backend,
    RunningServer,
    Runtime,
    RuntimeFailure,
    ServerSpec,
    VersionStats,
)
from shipyard.runtime.local import LocalRuntime

__all__ = [
    "SERVING_REQUIREMENTS",
    "VERSION_HEADER",
    "Backend",
    "LocalRuntime",
    "RunningServer",
    "Runtime",
    "RuntimeFailure",
    "ServerSpec",
    "VersionStats",
]
