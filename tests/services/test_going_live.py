"""Deploying and rolling back through the service with real model servers behind a real
gateway on 127.0.0.1: two commits of a tiny project taken to live by the pipeline, then the
service moves production between them, each move named after who asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gitrepos import commit, git
from servers import free_port
from shipyard.adapters import Adapters
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.policy import change_policy
from shipyard.canary import records
from shipyard.controllers.reconcile import load_deployed_config
from shipyard.domain import Role, RolloutAction, Status
from shipyard.pipeline import deploy
from shipyard.pipeline.engine import Pipeline
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.store.models import Rollout

CONFIG = """\
name: tiny
install: requirements.txt
build:
  train: python -c "import os; open(os.environ['SHIPYARD_MODEL_DIR'] + '/answer.txt', 'w').write('{answer}')"
model:
  serve: tiny_model:Model
environments:
  production:
    port: {port}
"""
MODEL = """\
class Model:
    def __init__(self, model_dir):
        self.answer = open(f"{model_dir}/answer.txt").read()

    def predict(self, records):
        return [self.answer for _ in records]
"""


def release(repo: Path, adapters: Adapters, answer: str, port: int, *, extra: str = "") -> str:
    """Commit a version that answers ``answer`` and run it to live; its version."""
    (repo / "shipyard.yaml").write_text(CONFIG.format(answer=answer, port=port) + extra)
    commit(repo, answer)
    pipeline = Pipeline(adapters)
    run = pipeline.queue(repo)
    assert pipeline.execute(run) is Status.PASSED
    live = deploy.stable(adapters, "tiny", "production")
    assert live is not None
    return live.version


def answer_on(port: int) -> str:
    body = {"dataframe_records": [{"x": 1}]}
    response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return str(response.json()["predictions"][0])


@pytest.fixture
def production(adapters: Adapters, tmp_path: Path) -> Iterator[tuple[Path, Adapters]]:
    repo = tmp_path / "tiny"
    repo.mkdir()
    (repo / "requirements.txt").write_text("")
    (repo / "tiny_model.py").write_text(MODEL)
    git(repo, "init", "-q", "-b", "main")
    # The tiny project has no test, analyze or qa: let `release` take it, explicitly.
    catalog = Catalog(adapters.store)
    loosened = change_policy(catalog.policy("release"), allow_skipped=["test", "analyze", "qa"])
    catalog.set_policy("release", loosened, "tiny test project")
    try:
        yield repo, adapters
    finally:
        deploy.stop_all(adapters)


def test_rollback_and_deploy_move_production_and_name_who_asked(
    production: tuple[Path, Adapters], found: Services
) -> None:
    repo, adapters = production
    port = free_port()
    first = release(repo, adapters, "1", port)
    second = release(repo, adapters, "2", port)
    assert answer_on(port) == "2"

    with acting_as("the-releaser"):
        back = found.deployments.rollback("tiny")
    assert (back.version, back.role, back.weight, back.standby) == (first, Role.STABLE, 100, second)
    assert answer_on(port) == "1"
    event = adapters.store.events(f"tiny/production/{first}")[0]
    assert (event.action, event.actor) == ("deployment.rolled-back-to", "the-releaser")

    with acting_as("the-admin"):
        live = found.deployments.deploy("tiny", second, "production")
    assert (live.version, live.standby, live.url) == (second, first, f"http://127.0.0.1:{port}")
    assert answer_on(port) == "2"
    event = adapters.store.events(f"tiny/production/{second}")[0]
    assert (event.action, event.actor) == ("deployment.live", "the-admin")
    [environment] = found.deployments.environments("tiny")
    assert (environment.stable, environment.standby) == (second, first)
    assert environment.routes is not None


def test_aborting_a_rollout_nobody_drives_rolls_it_back_at_once(
    production: tuple[Path, Adapters], found: Services
) -> None:
    """A rollout whose driver died: its canary takes all traffic, nothing drives it; abort
    through the service moves everything back to stable here and stops the canary."""
    repo, adapters = production
    port = free_port()
    # The first release goes straight to live, so its `canary:` section is not used then.
    canary = release(repo, adapters, "1", port, extra="canary:\n  steps: [50]\n")
    stable = release(repo, adapters, "2", port)
    rows = {d.version: d for d in deploy.running(adapters, "tiny", "production")}
    rows[canary].role = Role.CANARY
    adapters.store.save_deployment(rows[canary], "canary")
    config = load_deployed_config(adapters, "tiny", "production", stable)
    deploy.route(adapters, config, "production", [(rows[stable], 0), (rows[canary], 100)], "t")
    row = Rollout(
        project="tiny",
        environment="production",
        stable_version=stable,
        canary_version=canary,
        steps=[{"weight": 50, "pause": 60.0}],
        weight=100,
        status=records.RUNNING,
    )
    rollout = adapters.store.save_rollout(row, "started")
    assert answer_on(port) == "1"

    with acting_as("the-releaser"):
        view = found.rollouts.steer("tiny", "production", RolloutAction.ABORT)
    assert (view.id, view.status, view.weight, view.driven) == (
        rollout.id,
        records.ABORTED,
        0,
        False,
    )
    assert answer_on(port) == "2"
    assert [d.version for d in deploy.running(adapters, "tiny", "production")] == [stable]
    events = [(e.action, e.actor) for e in adapters.store.events(f"tiny/production/{canary}")]
    assert ("rollout.abort", "the-releaser") in events
    assert events[0] == ("rollout.aborted", "the-releaser")
