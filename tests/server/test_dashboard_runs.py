"""The run page in process: the stage view, the log pane, the JUnit counts and failed tests, the
findings, the report files (only the known ones), the approvals, and cancelling by role."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from gitrepos import commit
from shipyard.domain import STAGES, Gate, Status, TokenRole
from shipyard.services import Services
from shipyard.store import acting_as

from .conftest import SHA, Seed
from .forges import make_remote
from .test_dashboard_session import sign_in

JUNIT = """\
<testsuite name="unit">
  <testcase classname="tests.test_model" name="test_shape"/>
  <testcase classname="tests.test_model" name="test_accuracy">
    <failure message="accuracy 0.70 is below 0.90">trace</failure>
  </testcase>
  <testcase classname="tests.test_io" name="test_slow"><skipped/></testcase>
</testsuite>
"""
ANALYSIS = {
    "passed": True,
    "fail_on": "high",
    "findings": [
        {
            "kind": "vulnerability",
            "id": "GHSA-aaaa-bbbb",
            "severity": "critical",
            "title": "request smuggling",
            "location": "h11==0.13.0",
            "fix": "upgrade h11 to 0.14.0",
            "status": "allowed",
            "allowed": {"id": "GHSA-aaaa-bbbb", "reason": "not reachable", "until": "2099-01-01"},
        },
        {
            "kind": "code",
            "id": "B101",
            "severity": "low",
            "title": "assert used",
            "location": "app/model.py:7",
            "fix": "",
            "status": "below",
        },
    ],
    "expired": [],
    "failures": [],
}


def reports(services: Services, project: str, number: int) -> Path:
    folder = services.adapters.state.run_dir(project, number) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_run_page_shows_the_stages_left_to_right_with_status_and_the_selected_log(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number = seed("tiny", upto="analyze")
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get(f"/projects/tiny/runs/{number}")
    assert page.status_code == 200
    text = page.text
    boxes = re.findall(r'<li class="stage status-([a-z-]+)[^"]*" id="stage-(\w+)"', text)
    assert [name for _, name in boxes] == list(STAGES)
    assert dict((name, status) for status, name in boxes) == {
        **{stage: "passed" for stage in STAGES[:3]},
        **{stage: "skipped" for stage in STAGES[3:]},
    }
    assert "trigger" in text and "webhook" in text and SHA[:12] in text and "main" in text
    # no stage asked for: the last that ran is shown, its log followed by run.js
    assert f'data-log="/api/v1/runs/tiny/{number}/stages/analyze/log"' in text
    assert 'id="log-analyze" hx-preserve' in text
    assert '<script src="/static/run.js" defer>' in text
    assert 'data-live="project=tiny"' in text
    picked = api.get(f"/projects/tiny/runs/{number}?stage=build").text
    assert f'data-log="/api/v1/runs/tiny/{number}/stages/build/log"' in picked
    assert 'aria-current="true"' in picked


def test_the_running_stage_is_selected_while_the_run_goes_on(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="test", finished=False)
    services.adapters.store.set_stage_status("tiny", number, "analyze", Status.RUNNING)
    sign_in(api, tokens[TokenRole.VIEWER])
    text = api.get(f"/projects/tiny/runs/{number}").text
    assert "/stages/analyze/log" in text
    assert re.search(r'<li class="stage status-running selected" id="stage-analyze"', text)


def test_the_run_page_counts_the_junit_results_and_names_each_failed_test(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="test")
    (reports(services, "tiny", number) / "junit.xml").write_text(JUNIT)
    sign_in(api, tokens[TokenRole.VIEWER])
    text = api.get(f"/projects/tiny/runs/{number}").text
    counts = re.search(r'<p class="counts" id="test-counts">(.*?)</p>', text, re.S)
    assert counts is not None
    shown = re.findall(r"<strong>(\d+)</strong> (\w+)", counts.group(1))
    assert shown == [
        ("3", "tests"),
        ("1", "passed"),
        ("1", "failures"),
        ("0", "errors"),
        ("1", "skipped"),
    ]
    assert "<code>tests.test_model::test_accuracy</code>" in text
    assert "accuracy 0.70 is below 0.90" in text


def test_the_run_page_lists_findings_by_severity_with_the_allow_list_and_report_links(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="analyze")
    folder = reports(services, "tiny", number)
    (folder / "analyze.json").write_text(json.dumps(ANALYSIS))
    (folder / "analysis.sarif").write_text('{"version": "2.1.0"}')
    (folder / "sbom.cdx.json").write_text('{"bomFormat": "CycloneDX"}')
    sign_in(api, tokens[TokenRole.VIEWER])
    text = api.get(f"/projects/tiny/runs/{number}").text
    critical, low = text.index(">critical (1)<"), text.index(">low (1)<")
    assert critical < text.index("GHSA-aaaa-bbbb") < low < text.index("B101")
    assert "allowed by <code>GHSA-aaaa-bbbb</code>: not reachable (until 2099-01-01)" in text
    assert "below high" in text
    base = f"/projects/tiny/runs/{number}/files"
    assert f'href="{base}/analysis.sarif"' in text and f'href="{base}/sbom.cdx.json"' in text
    sarif = api.get(f"{base}/analysis.sarif")
    assert sarif.status_code == 200 and sarif.json() == {"version": "2.1.0"}
    assert sarif.headers["content-disposition"].startswith("attachment;")
    assert f"tiny-{number}-analysis.sarif" in sarif.headers["content-disposition"]


def test_the_files_route_refuses_unknown_names_and_paths_out_of_the_run(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="analyze")
    (reports(services, "tiny", number) / "analysis.sarif").write_text("{}")
    base = f"/projects/tiny/runs/{number}/files"
    assert api.get(f"{base}/analysis.sarif", follow_redirects=False).status_code == 303
    sign_in(api, tokens[TokenRole.VIEWER])
    assert api.get(f"{base}/analysis.sarif").status_code == 200
    escapes = ("..%2F..%2F..%2Fshipyard.db", "%2E%2E", "%2E%2E%2F%2E%2E%2Fsecrets.key")
    for name in ("secrets.key", *escapes, "qa.json"):
        answer = api.get(f"{base}/{name}")
        assert answer.status_code == 404, name
    unknown = api.get(f"{base}/passwords.txt")
    assert "There is no report file" in unknown.text and "analysis.sarif" in unknown.text


def test_an_unknown_run_or_stage_gets_an_error_page_that_says_what_to_do(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    seed("tiny")
    sign_in(api, tokens[TokenRole.VIEWER])
    missing = api.get("/projects/tiny/runs/42")
    assert missing.status_code == 404
    assert "There is no run tiny#42." in missing.text and "shipyard status" in missing.text
    wrong = api.get("/projects/tiny/runs/1?stage=deploy")
    assert wrong.status_code == 400 and "There is no stage" in wrong.text
    assert api.get("/projects/nope/runs/1").status_code == 404


def test_the_run_page_says_who_approved_what(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="qa", finished=False)
    from shipyard.store.models import Approval, utcnow

    run_id = services.adapters.store.get_run("tiny", number).id
    with services.adapters.store.session() as s:
        s.add(
            Approval(
                run_id=run_id,
                gate=Gate.RELEASE.value,
                status="approved",
                requested_at=utcnow(),
                decided_at=utcnow(),
                actor="quinn",
                reason="metrics hold",
            )
        )
    sign_in(api, tokens[TokenRole.VIEWER])
    text = api.get(f"/projects/tiny/runs/{number}").text
    row = re.search(r'<tr id="approval-release">(.*?)</tr>', text, re.S)
    assert row is not None
    assert "approved" in row.group(1) and "quinn" in row.group(1)
    assert "metrics hold" in row.group(1)


def test_a_developer_cancels_a_running_run_from_its_page(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="build", finished=False)
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    page = api.get(f"/projects/tiny/runs/{number}").text
    assert f'action="/projects/tiny/runs/{number}/cancel"' in page
    done = api.post(
        f"/projects/tiny/runs/{number}/cancel", data={"csrf": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/projects/tiny/runs/{number}"
    run = services.runs.get("tiny", number)
    assert run.status is Status.CANCELLED
    events = services.adapters.store.events(f"tiny#{number}", limit=50)
    assert any(e.action == "run.cancel-requested" and e.actor == "developer-token" for e in events)
    after = api.get(f"/projects/tiny/runs/{number}").text
    assert "/cancel" not in after  # a finished run has nothing to cancel


def test_a_viewer_sees_no_cancel_button_and_a_forged_cancel_is_refused(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="build", finished=False)
    csrf = sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get(f"/projects/tiny/runs/{number}").text
    assert "/cancel" not in page and "Cancel run" not in page
    forged = api.post(f"/projects/tiny/runs/{number}/cancel", data={"csrf": csrf})
    assert forged.status_code == 403
    assert services.runs.get("tiny", number).status is Status.RUNNING
    assert not services.adapters.store.cancel_requested("tiny", number)


def test_a_cancel_without_the_csrf_token_is_refused(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed("tiny", upto="build", finished=False)
    sign_in(api, tokens[TokenRole.DEVELOPER])
    refused = api.post(f"/projects/tiny/runs/{number}/cancel", data={})
    assert refused.status_code == 403
    assert services.runs.get("tiny", number).status is Status.RUNNING


def test_the_run_form_is_shown_to_a_developer_and_refuses_an_unregistered_project(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    seed("tiny")  # only ever run from a CLI: not registered, so it cannot be run from here
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    assert 'action="/runs"' not in api.get("/projects").text  # nothing registered to run
    answer = api.post("/runs", data={"csrf": csrf, "project": "tiny", "ref": "main"})
    assert answer.status_code == 404
    assert "There is no registered project 'tiny'" in html.unescape(answer.text)
    assert "shipyard project add" in answer.text
    assert len(services.runs.list("tiny")) == 1


def test_a_viewer_may_not_start_a_run(
    api: TestClient, tokens: dict[TokenRole, str], services: Services
) -> None:
    csrf = sign_in(api, tokens[TokenRole.VIEWER])
    with acting_as("root"):
        assert services.runs.list() == []
    refused = api.post("/runs", data={"csrf": csrf, "project": "tiny", "ref": "main"})
    assert refused.status_code == 403


def test_a_developer_runs_a_commit_of_a_registered_project_and_lands_on_its_page(
    api: TestClient, tokens: dict[TokenRole, str], services: Services, tmp_path: Path
) -> None:
    remote = make_remote(tmp_path)
    first = remote.commit("one")
    with acting_as("root"):
        services.projects.add("tiny", str(remote.bare))
    csrf = sign_in(api, tokens[TokenRole.DEVELOPER])
    form = api.get("/projects").text
    assert 'action="/runs"' in form and '<option value="tiny">tiny</option>' in form
    done = api.post(
        "/runs", data={"csrf": csrf, "project": "tiny", "ref": ""}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/projects/tiny/runs/1"
    run = services.runs.get("tiny", 1)
    assert (run.sha, run.ref, run.trigger, run.actor) == (
        first,
        "main",
        "dashboard",
        "developer-token",
    )
    second = remote.commit("two", branch="feature")
    api.post("/runs", data={"csrf": csrf, "project": "tiny", "ref": "feature"})
    assert services.runs.get("tiny", 2).sha == second
    bad = api.post("/runs", data={"csrf": csrf, "project": "tiny", "ref": "no-such-branch"})
    assert bad.status_code == 404
    assert "has no branch or tag 'no-such-branch'" in html.unescape(bad.text)
    viewer = TestClient(api.app)
    sign_in(viewer, tokens[TokenRole.VIEWER])
    assert 'action="/runs"' not in viewer.get("/projects").text


QA_CONFIG = """\
name: tiny
build: {train: "true"}
model: {serve: "tiny_model:Model"}
qa:
  load: {max_error_rate: 0.01}
  performance: {p95_ms: 100, p99_ms: 200}
  quality:
    data: holdout.csv
    label: y
    metrics: {accuracy: {min: 0.9}}
    vs_production: {accuracy: {max_drop: 0.02}}
"""


def test_the_qa_figures_stand_beside_their_thresholds_and_production(
    api: TestClient, tokens: dict[TokenRole, str], services: Services, tmp_path: Path
) -> None:
    remote = make_remote(tmp_path)
    (remote.work / "shipyard.yaml").write_text(QA_CONFIG)
    commit(remote.work, "qa")
    services.adapters.store.ensure_project("tiny", str(remote.work))
    number = services.adapters.store.create_run("tiny", remote.git_head(), "main").number
    qa = {
        "load": {"requests": 100, "errors": 0, "error_rate": 0.0, "throughput_rps": 49.5}
        | {"p50_ms": 9.5, "p95_ms": 42.0, "p99_ms": 230.0},
        "quality": {
            "metrics": {"accuracy": 0.95},
            "failures": [],
            "production": {"version": "4-0a1b2c3", "metrics": {"accuracy": 0.96}},
        },
    }
    (reports(services, "tiny", number) / "qa.json").write_text(json.dumps(qa))
    sign_in(api, tokens[TokenRole.VIEWER])
    text = api.get(f"/projects/tiny/runs/{number}").text
    rows = {
        name: re.sub(r"<[^>]+>|\s+", " ", row).split()
        for name, row in re.findall(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', text, re.S)
    }
    assert rows["p95 latency"] == ["42.0", "ms", "≤", "100.0", "ms", "passed"]
    assert rows["p99 latency"] == ["230.0", "ms", "≤", "200.0", "ms", "failed"]
    assert rows["error rate"] == ["0.00%", "(0)", "≤", "1.00%", "passed"]
    assert rows["accuracy"][:4] == ["0.9500", "≥", "0.9", "0.9600"]
    assert rows["accuracy"][-1] == "passed"  # a drop of 0.01 against production is allowed
    assert "Production (4-0a1b2c3)" in text and "may drop 0.02" in text
