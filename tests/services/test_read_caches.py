"""The dashboard's hot reads (projects, deployments) are kept until the store changes, and a
change shows at once; a deployment's health is asked anew on every read."""

from __future__ import annotations

import subprocess
import sys

from shipyard.adapters import Adapters
from shipyard.domain import Role
from shipyard.services import Services
from shipyard.services.deployments import Health

from .test_deployments import deployed


def test_a_new_project_shows_in_the_list_at_once(adapters: Adapters, found: Services) -> None:
    adapters.store.ensure_project("iris", "/repos/iris")
    assert [p.name for p in found.projects.list(every=True)] == ["iris"]
    adapters.store.ensure_project("wine", "/repos/wine")
    assert [p.name for p in found.projects.list(every=True)] == ["iris", "wine"]
    assert found.projects.list() == []  # neither is registered


def test_a_deployment_saved_shows_at_once_and_its_health_is_fresh(
    adapters: Adapters, found: Services
) -> None:
    adapters.store.ensure_project("iris", "/repos/iris")
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        deployed(adapters, "production", "1", Role.STABLE, 100, server.pid)
        assert [(d.version, d.health) for d in found.deployments.list("iris")] == [("1", Health.UP)]
        deployed(adapters, "production", "2", Role.STANDBY, 0, None)
        assert [d.version for d in found.deployments.list("iris")] == ["1", "2"]
    finally:
        server.kill()
        server.wait(timeout=30)
    # No store change since the last read: the rows are the kept ones, the health is not.
    assert [(d.version, d.health) for d in found.deployments.list("iris")] == [
        ("1", Health.DOWN),
        ("2", Health.IDLE),
    ]
