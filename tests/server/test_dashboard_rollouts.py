"""The rollout page: its steps on a timeline, each judgement with its numbers, the charts' data,
and the commands a releaser may give in the rollout's status, against a real store and the
real judge."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from shipyard.canary import judge_canary, records
from shipyard.config.schema import AnalysisConfig, Threshold
from shipyard.domain import TokenRole
from shipyard.runtime.interface import VersionStats
from shipyard.server.auth import Require
from shipyard.services import Services
from shipyard.store.models import Rollout

from .test_auth import api_routes
from .test_dashboard_session import sign_in

ANALYSIS = AnalysisConfig(
    error_rate=Threshold(max=0.02),
    latency={"max_increase": 1.0},
    prediction_drift={"psi_max": 0.5},
    min_requests=20,
)
STEPS: list[dict[str, Any]] = [{"weight": 20, "pause": 6.0}, {"weight": 50, "pause": "manual"}]


def window(errors: int, mean_ms: float, setosa: int, seed: int) -> VersionStats:
    latencies = np.random.default_rng(seed).normal(mean_ms, 1.0, size=100).clip(min=0.1)
    return VersionStats(
        100, errors, latencies.tolist(), {"setosa": setosa, "virginica": 100 - setosa}
    )


def judged(step: int, at: float, canary_errors: int) -> dict[str, Any]:
    """A verdict as the controller stores it, by the real judge on a known window."""
    stable = window(0, 10.0, 50, seed=step)
    canary = window(canary_errors, 12.0, 60, seed=step + 100)
    verdict = judge_canary(stable, canary, ANALYSIS)
    return {
        "step": step,
        "weight": STEPS[step]["weight"],
        "extension": 0,
        "at": at,
        **verdict.to_dict(),
    }


def rollout(
    services: Services, status: str, verdicts: Sequence[dict[str, Any]] = (), **fields: Any
) -> int:
    store = services.adapters.store
    store.ensure_project("iris", "/repos/iris")
    defaults: dict[str, Any] = {
        "project": "iris",
        "environment": "production",
        "stable_version": "1-aaaaaaa",
        "canary_version": "2-bbbbbbb",
        "steps": STEPS,
        "step_index": 0,
        "weight": 20,
    }
    row = Rollout(**{**defaults, **fields}, status=status, verdicts=list(verdicts))
    return store.save_rollout(row, "started").id


def rolled_back(services: Services) -> int:
    """A rollout that passed step 1 and was rolled back at step 2 by a failed judgement."""
    number = rollout(services, records.RUNNING)
    store = services.adapters.store
    store.rollouts.update(number, "step", lambda row: None, step=0)
    verdicts = [judged(0, 1_700_000_000.0, 0), judged(1, 1_700_000_006.0, 30)]

    def fail(row: Rollout) -> None:
        row.step_index, row.weight, row.verdicts = 1, 50, verdicts

    store.rollouts.update(number, "step", fail, step=1)

    def end(row: Rollout) -> None:
        row.status, row.weight = records.ROLLED_BACK, 0

    store.rollouts.update(number, "rolled-back", end, reason="step 2 (50%): the judge failed it")
    return number


def chart_json(text: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="rollout-data">(.*?)</script>', text, re.S
    )
    assert found, "the page carries no chart data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def buttons(text: str) -> list[str]:
    return re.findall(r'<form class="inline" method="post" action="/rollouts/\d+/(\w+)"', text)


def test_a_rolled_back_rollout_shows_its_steps_and_the_failed_judgement_with_its_numbers(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = rolled_back(services)
    sign_in(api, tokens[TokenRole.VIEWER])
    answer = api.get(f"/rollouts/{number}")
    assert answer.status_code == 200
    text = html.unescape(answer.text)
    assert f"Rollout {number}: iris 2-bbbbbbb in production" in text
    assert "Why: step 2 (50%): the judge failed it" in text  # the reason it ended
    assert 'data-live="project=iris"' in answer.text
    steps = re.findall(r'<li class="rollout-step step-([\w-]+)" id="step-(\d)">', answer.text)
    assert steps == [("passed", "1"), ("rolled-back", "2")]
    timeline = text[text.index('<ol class="rollout-steps">') : text.index("</ol>")]
    assert timeline.count("started <time") == 2 and timeline.count(", took ") == 2
    # The failed judgement, newest first and open, with the error rate as numbers.
    opening = '<details class="judgement judgement-fail" id="judgement-2" open>'
    failed = text[text.index(opening) : text.index('id="judgement-1"')]
    assert "step 2 at 50%" in failed and "100 canary / 100 stable requests" in failed
    row = failed[failed.index("error_rate") :]
    assert re.match(
        r'error_rate</th>\s*<td><span class="verdict verdict-fail">fail</span></td>\s*'
        r'<td class="num">30\.0%</td>\s*<td class="num">0\.0%</td>\s*<td class="num">2\.0%</td>',
        row,
    ), row[:400]
    assert "canary 30.0% vs stable 0.0% > max 2.0%, significant (p=" in row
    assert "latency" in failed and "ms" in failed and "prediction_drift" in failed


def test_the_charts_carry_canary_and_stable_per_judgement(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = rolled_back(services)
    sign_in(api, tokens[TokenRole.VIEWER])
    answer = api.get(f"/rollouts/{number}")
    assert '<script src="/static/vendor/uPlot.iife.min.js" defer></script>' in answer.text
    assert '<script src="/static/rollout.js" defer></script>' in answer.text
    data = chart_json(answer.text)
    assert data["times"] == [1_700_000_000.0, 1_700_000_006.0]
    charts = {chart["key"]: chart for chart in data["charts"]}
    assert charts["error-rate"]["lines"] == {"stable": [0.0, 0.0], "canary": [0.0, 30.0]}
    assert all(10 < ms < 20 for ms in charts["latency"]["lines"]["canary"])
    assert charts["predictions"]["lines"] == {
        "stable setosa": [0.5, 0.5],
        "stable virginica": [0.5, 0.5],
        "canary setosa": [0.6, 0.6],
        "canary virginica": [0.4, 0.4],
    }
    # Each chart's text alternative names its last numbers.
    assert 'aria-label="Error rate over 2 judgement(s); at the last: stable 0%, canary 30%."' in (
        answer.text
    )


def test_a_rollout_judged_before_the_judge_kept_each_side_still_shows(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    verdict = judged(0, 1_700_000_000.0, 0)
    old = {key: value for key, value in verdict.items() if key not in ("stable", "canary")}
    number = rollout(services, records.PASSED, [old])
    sign_in(api, tokens[TokenRole.VIEWER])
    answer = api.get(f"/rollouts/{number}")
    assert answer.status_code == 200 and "verdict-pass" in answer.text
    assert chart_json(answer.text)["times"] == []
    assert "Error rate: no judgement with numbers yet." in answer.text


def test_buttons_follow_the_role_and_what_the_status_allows(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    running = rollout(services, records.RUNNING)
    paused = rollout(services, records.PAUSED, environment="staging")
    done = rolled_back(services)
    sign_in(api, tokens[TokenRole.DEVELOPER])
    assert buttons(api.get(f"/rollouts/{running}").text) == []
    sign_in(api, tokens[TokenRole.RELEASER])
    page = api.get(f"/rollouts/{running}").text
    assert buttons(page) == ["promote", "pause", "abort"]
    assert buttons(api.get(f"/rollouts/{paused}").text) == ["promote", "resume", "abort"]
    assert buttons(api.get(f"/rollouts/{done}").text) == []


def test_a_releaser_pauses_and_resumes_and_each_command_is_audited(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = rollout(services, records.RUNNING)
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    done = api.post(f"/rollouts/{number}/pause", data={"csrf": csrf}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, f"/rollouts/{number}")
    assert services.rollouts.by_id(number).status == records.PAUSED
    api.post(f"/rollouts/{number}/resume", data={"csrf": csrf})
    assert services.rollouts.by_id(number).status == records.RUNNING
    events = services.adapters.store.events("iris/production/2-bbbbbbb")
    assert [(e.action, e.actor) for e in events][:2] == [
        ("rollout.resume", "releaser-token"),
        ("rollout.pause", "releaser-token"),
    ]


def test_a_refused_command_shows_the_services_message_and_changes_nothing(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = rolled_back(services)
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    answer = api.post(f"/rollouts/{number}/pause", data={"csrf": csrf})
    assert answer.status_code == 409
    message = (
        f"Rollout {number} is rolled-back; `pause` applies to a rollout that is running or waiting."
    )
    assert '<div class="card refused" role="alert">' in answer.text
    assert message in html.unescape(answer.text)
    assert services.rollouts.by_id(number).status == records.ROLLED_BACK


def test_a_developer_cannot_steer_nor_can_a_form_without_its_csrf_token(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = rollout(services, records.RUNNING)
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    assert api.post(f"/rollouts/{number}/pause", data={"csrf": csrf}).status_code == 403
    sign_in(api, tokens[TokenRole.RELEASER])
    assert api.post(f"/rollouts/{number}/pause", data={"csrf": "forged"}).status_code == 403
    assert services.rollouts.by_id(number).status == records.RUNNING


def test_an_unknown_or_malformed_rollout_gets_a_page_that_says_what_to_do(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    number = rollout(services, records.RUNNING)
    csrf = sign_in(api, tokens[TokenRole.RELEASER])
    missing = api.get("/rollouts/99")
    assert missing.status_code == 404
    assert "There is no rollout 99." in missing.text and "rollouts page" in missing.text
    malformed = api.get("/rollouts/latest")
    assert malformed.status_code == 400 and "is not a rollout id" in malformed.text
    unknown = api.post(f"/rollouts/{number}/restart", data={"csrf": csrf})
    assert unknown.status_code == 400
    assert "Use one of promote, abort, pause, resume." in html.unescape(unknown.text)


def test_the_rollouts_list_shows_the_newest_first(
    api: TestClient, services: Services, tokens: dict[TokenRole, str]
) -> None:
    first = rolled_back(services)
    second = rollout(services, records.RUNNING, environment="staging")
    sign_in(api, tokens[TokenRole.VIEWER])
    text = api.get("/rollouts").text
    assert re.findall(r'<tr id="rollout-(\d+)">', text) == [str(second), str(first)]
    assert f'href="/rollouts/{first}"' in text


def test_reading_needs_a_viewer_and_steering_a_releaser_each_declared_once(
    api: TestClient,
) -> None:
    routes = api_routes(api.app.routes)  # type: ignore[attr-defined]
    declared = {
        (method, route.path): [
            d.call.role for d in route.dependant.dependencies if isinstance(d.call, Require)
        ]
        for route in routes
        if route.path.startswith("/rollouts")
        for method in route.methods
    }
    assert declared == {
        ("GET", "/rollouts"): [TokenRole.VIEWER],
        ("GET", "/rollouts/{raw}"): [TokenRole.VIEWER],
        ("POST", "/rollouts/{raw}/{action}"): [TokenRole.RELEASER],
    }
