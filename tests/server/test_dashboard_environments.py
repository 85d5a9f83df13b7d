"""The environments page: per project and environment the deployments with their traffic
weights, health, the stable and the standby, the newest rollout; and rolling back from it.

The page's content is checked on stored deployments whose health the service observes (a live
pid is up, a reaped one down); rolling back is checked end to end on two commits of a tiny
project taken to live by the real pipeline, with real model servers behind a real gateway."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.policy import change_policy
from shipyard.canary import records
from shipyard.domain import Role, TokenRole
from shipyard.pipeline import deploy
from shipyard.services import Services

from ..services.conftest import rollout_in
from ..services.test_deployments import deployed, exited_pid
from ..services.test_going_live import MODEL, answer_on, free_port, git, release
from .test_dashboard_session import sign_in


@pytest.fixture
def iris(services: Services) -> Services:
    """iris in production: 2 stable at 80 %, canary 3 at 20 % (its server died), 1 standby;
    in staging a candidate still starting."""
    adapters = services.adapters
    adapters.store.ensure_project("iris", "/repos/iris")
    deployed(adapters, "production", "1-aaaaaaa", Role.STANDBY, 0, os.getpid())
    deployed(adapters, "production", "2-bbbbbbb", Role.STABLE, 80, os.getpid())
    deployed(adapters, "production", "3-ccccccc", Role.CANARY, 20, exited_pid())
    deployed(adapters, "staging", "4-ddddddd", Role.CANDIDATE, 0, None)
    return services


def section(html: str, environment: str) -> str:
    return html.split(f'<section class="card environment" id="env-iris-{environment}"')[1].split(
        "</section>"
    )[0]


def row(html: str, environment: str, version: str) -> str:
    return html.split(f'id="deployment-iris-{environment}-{version}">')[1].split("</tr>")[0]


def test_each_environment_shows_its_weights_health_stable_and_standby(
    api: TestClient, tokens: dict[TokenRole, str], iris: Services
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/environments")
    assert page.status_code == 200
    assert 'data-live=""' in page.text and 'hx-trigger="shipyard:change from:body"' in page.text
    production = section(page.text, "production")
    assert '<strong class="stable">2-bbbbbbb</strong>' in production
    assert '<strong class="standby">1-aaaaaaa</strong>' in production
    stable = row(page.text, "production", "2-bbbbbbb")
    assert 'style="width: 80%"' in stable and '<span class="weight-text">80%</span>' in stable
    assert 'class="health health-up">up<' in stable
    canary = row(page.text, "production", "3-ccccccc")
    assert "canary" in canary and 'class="health health-down">down<' in canary
    assert 'style="width: 20%"' in canary
    # The traffic bar, and the same in words for a screen reader.
    bar = re.findall(r'class="segment role-(\w+)" style="width: (\d+)%"', production)
    assert bar == [("stable", "80"), ("canary", "20")]
    assert "Traffic: 2-bbbbbbb (stable) 80%, 3-ccccccc (canary) 20%." in production
    staging = section(page.text, "staging")
    candidate = row(page.text, "staging", "4-ddddddd")
    assert 'class="health health-idle">idle<' in candidate and "starting" in candidate
    assert '<strong class="standby">none</strong>' in staging and "Traffic: none." in staging


def test_the_newest_rollout_of_an_environment_is_linked(
    api: TestClient, tokens: dict[TokenRole, str], iris: Services
) -> None:
    rollout = rollout_in(iris.adapters, records.PAUSED)
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get("/environments").text
    production = section(page, "production")
    assert f'<a class="rollout-link" href="/rollouts/{rollout.id}">' in production
    assert "Rollout:" in production and "status-paused" in production
    assert "rollout-link" not in section(page, "staging")


def test_only_a_releaser_sees_roll_back_and_only_where_there_is_a_standby(
    api: TestClient, tokens: dict[TokenRole, str], iris: Services
) -> None:
    action = 'action="/environments/iris/production/rollback"'
    sign_in(api, tokens[TokenRole.RELEASER])
    page = api.get("/environments").text
    assert action in section(page, "production")
    assert "Roll back production to 1-aaaaaaa" in page
    assert "/rollback" not in section(page, "staging")
    for role in (TokenRole.VIEWER, TokenRole.DEVELOPER, TokenRole.QA):
        sign_in(api, tokens[role])
        assert "/rollback" not in api.get("/environments").text, role


def test_a_developer_s_forged_rollback_is_refused(
    api: TestClient, tokens: dict[TokenRole, str], iris: Services
) -> None:
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    refused = api.post(
        "/environments/iris/production/rollback", data={"csrf": csrf}, follow_redirects=False
    )
    assert refused.status_code == 403 and "this needs releaser" in refused.text
    [production, _] = iris.deployments.environments("iris")
    assert (production.stable, production.standby) == ("2-bbbbbbb", "1-aaaaaaa")


def test_rolling_back_during_a_rollout_is_refused_with_what_to_do(
    api: TestClient, tokens: dict[TokenRole, str], iris: Services
) -> None:
    rollout_in(iris.adapters, records.PAUSED)
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    refused = api.post(
        "/environments/iris/production/rollback", data={"csrf": csrf}, follow_redirects=False
    )
    assert refused.status_code == 409 and "is still going" in refused.text
    [production, _] = iris.deployments.environments("iris")
    assert production.stable == "2-bbbbbbb"


@pytest.fixture
def tiny_live(services: Services, tmp_path: Path) -> Iterator[tuple[str, str, int]]:
    """Two commits of the tiny project taken to live in production: (first, second, port)."""
    adapters = services.adapters
    repo = tmp_path / "tiny"
    repo.mkdir()
    (repo / "requirements.txt").write_text("")
    (repo / "tiny_model.py").write_text(MODEL)
    git(repo, "init", "-q", "-b", "main")
    catalog = Catalog(adapters.store)  # tiny has no test, analyze or qa: release may skip them
    loosened = change_policy(catalog.policy("release"), allow_skipped=["test", "analyze", "qa"])
    catalog.set_policy("release", loosened, "tiny test project")
    port = free_port()
    try:
        first = release(repo, adapters, "1", port)
        second = release(repo, adapters, "2", port)
        yield first, second, port
    finally:
        deploy.stop_all(adapters)


def test_a_releaser_rolls_production_back_from_the_page(
    api: TestClient,
    services: Services,
    tokens: dict[TokenRole, str],
    tiny_live: tuple[str, str, int],
) -> None:
    first, second, port = tiny_live
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    before = api.get("/environments").text
    assert f"Roll back production to {first}" in before
    done = api.post(
        "/environments/tiny/production/rollback", data={"csrf": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/environments#env-tiny-production"
    assert answer_on(port) == "1"
    after = api.get("/environments").text
    assert f'<strong class="stable">{first}</strong>' in after
    assert f"Roll back production to {second}" in after  # the two swapped roles
    event = services.adapters.store.events(f"tiny/production/{first}")[0]
    assert (event.action, event.actor) == ("deployment.rolled-back-to", "releaser-token")
