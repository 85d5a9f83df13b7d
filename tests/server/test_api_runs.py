"""/api/v1/runs on a real state directory: reading runs, cancelling one, and following a stage's
log as Server-Sent Events over a real socket while the stage writes it."""

from __future__ import annotations

import threading

import httpx
from fastapi.testclient import TestClient

from shipyard.domain import Status, TokenRole
from shipyard.services import Services
from shipyard.services.remote import iter_events

from .conftest import SHA, Live, Seed, bearer


def test_runs_are_listed_newest_first_and_filtered_by_project(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    seed("iris"), seed("wine"), seed("iris")
    viewer = bearer(tokens[TokenRole.VIEWER])
    runs = api.get("/api/v1/runs", headers=viewer).json()
    assert [(r["project"], r["number"]) for r in runs] == [("iris", 2), ("wine", 1), ("iris", 1)]
    only = api.get("/api/v1/runs", params={"project": "iris", "limit": 1}, headers=viewer).json()
    assert [(r["project"], r["number"]) for r in only] == [("iris", 2)]


def test_one_run_shows_its_stages_and_latest_is_the_newest(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    seed(), seed(upto="staging")
    viewer = bearer(tokens[TokenRole.VIEWER])
    one = api.get("/api/v1/runs/tiny/2", headers=viewer).json()
    assert (one["sha"], one["status"], one["trigger"]) == (SHA, "passed", "webhook")
    assert [s["status"] for s in one["stages"]][:6] == ["passed"] * 5 + ["skipped"]
    assert api.get("/api/v1/runs/tiny/latest", headers=viewer).json()["number"] == 2


def test_an_unknown_run_is_404_with_what_to_do(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    answer = api.get("/api/v1/runs/tiny/9", headers=bearer(tokens[TokenRole.VIEWER]))
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "There is no run tiny#9.",
        "hint": "`shipyard status` lists the runs.",
    }


def test_a_limit_out_of_range_is_refused_naming_the_field(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    answer = api.get("/api/v1/runs?limit=0", headers=bearer(tokens[TokenRole.VIEWER]))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "limit"]


def test_cancelling_a_run_nobody_drives_ends_it_and_a_finished_one_is_a_conflict(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number = seed(finished=False)
    developer = bearer(tokens[TokenRole.DEVELOPER])
    answer = api.post(f"/api/v1/runs/tiny/{number}/cancel", headers=developer)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    again = api.post(f"/api/v1/runs/tiny/{number}/cancel", headers=developer)
    assert again.status_code == 409
    assert "already finished" in again.json()["error"]


def test_without_follow_the_log_stream_sends_what_there_is_and_ends(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number = seed()
    answer = api.get(
        f"/api/v1/runs/tiny/{number}/stages/build/log",
        params={"follow": "false"},
        headers=bearer(tokens[TokenRole.VIEWER]),
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    (chunk,) = iter_events(answer.text)
    assert (chunk.text, chunk.finished) == (f"build of tiny#{number}\n", True)
    assert f"id: {chunk.offset}\n" in answer.text


def test_a_log_of_an_unknown_stage_or_run_is_a_plain_error_not_a_stream(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number, viewer = seed(), bearer(tokens[TokenRole.VIEWER])
    stage = api.get(f"/api/v1/runs/tiny/{number}/stages/deploy/log", headers=viewer)
    assert stage.status_code == 400 and "There is no stage 'deploy'" in stage.json()["error"]
    run = api.get("/api/v1/runs/tiny/9/stages/build/log", headers=viewer)
    assert run.status_code == 404


def test_following_a_log_streams_lines_as_the_stage_writes_them_until_it_ends(
    live: Live, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number = seed(upto="build", finished=False)
    store, state = live.services.adapters.store, live.services.adapters.state
    store.set_stage_status("tiny", number, "test", Status.RUNNING)
    log = state.stage_log("tiny", number, "test")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("collecting\n")
    url = f"{live.url}/api/v1/runs/tiny/{number}/stages/test/log"
    received: list[str] = []
    first = threading.Event()
    with httpx.stream("GET", url, headers=bearer(tokens[TokenRole.VIEWER]), timeout=30) as answer:
        for line in answer.iter_lines():
            received.append(line)
            if line.startswith("data:") and not first.is_set():
                first.set()  # the stream is open: the stage goes on writing, then passes
                with log.open("a") as handle:
                    handle.write("3 passed\n")
                store.set_stage_status("tiny", number, "test", Status.PASSED, "3 passed")
    chunks = iter_events("\n".join(received))
    assert "".join(c.text for c in chunks) == "collecting\n3 passed\n"
    assert chunks[0].finished is False and chunks[-1].finished is True


def test_a_reconnecting_client_goes_on_from_its_last_event_id(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed, services: Services
) -> None:
    number = seed()
    log = services.adapters.state.stage_log("tiny", number, "build")
    log.write_text("line one\nline two\n")
    answer = api.get(
        f"/api/v1/runs/tiny/{number}/stages/build/log",
        headers={**bearer(tokens[TokenRole.VIEWER]), "last-event-id": str(len("line one\n"))},
    )
    assert [c.text for c in iter_events(answer.text)] == ["line two\n"]


def test_numbers_past_what_the_store_or_a_file_holds_are_refused_not_a_500(
    api: TestClient, tokens: dict[TokenRole, str], seed: Seed
) -> None:
    number, viewer = seed(), bearer(tokens[TokenRole.VIEWER])
    huge = str(2**70)
    assert api.get(f"/api/v1/runs/tiny/{huge}", headers=viewer).status_code == 422
    log = f"/api/v1/runs/tiny/{number}/stages/build/log"
    assert api.get(log, params={"offset": huge}, headers=viewer).status_code == 422
    resumed = api.get(log, headers={**viewer, "last-event-id": huge})
    assert resumed.status_code == 422
