"""Running deployments: model servers behind a traffic-splitting gateway.

The seam is :class:`Runtime` (``interface.py``); :class:`LocalRuntime` (``local.py``) runs
everything as local processes. ``serving/`` is a standalone package run by the artifact's
own interpreter and ``gateway.py`` runs with ``python -m shipyard.runtime.gateway``.
"""

from typing import TYPE_CHECKING

from shipyard.lazy import exports

if TYPE_CHECKING:
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

__getattr__ = exports(
    __name__,
    {
        "SERVING_REQUIREMENTS": "interface",
        "VERSION_HEADER": "interface",
        "Backend": "interface",
        "RunningServer": "interface",
        "Runtime": "interface",
        "RuntimeFailure": "interface",
        "ServerSpec": "interface",
        "VersionStats": "interface",
        "LocalRuntime": "local",
    },
)

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
