"""Session-wide: one environment cache for every test, so each lock is built once per run.

Set through ``$SHIPYARD_CACHE`` so subprocesses (the CLI, servers) see the same cache, and the
developer's own ``~/.cache/shipyard`` is never touched by the tests. Under pytest-xdist the
workers share it too (it sits in the folder above each worker's own temporary folder): the
cache takes a file lock per environment, so two workers never build the same one twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from shipyard.paths import CACHE_ENV_VAR


@pytest.fixture(scope="session", autouse=True)
def shipyard_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    previous = os.environ.get(CACHE_ENV_VAR)
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    (shared / "shipyard-cache").mkdir(exist_ok=True)
    path = str(shared / "shipyard-cache")
    os.environ[CACHE_ENV_VAR] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(CACHE_ENV_VAR, None)
        else:
            os.environ[CACHE_ENV_VAR] = previous
