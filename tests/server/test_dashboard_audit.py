"""The audit log page in process: each filter narrows the list, subjects link to their run or
artifact, older pages follow one another, and a filter the page cannot read is an error page
that says how to write it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from shipyard.domain import TokenRole
from shipyard.services import Services
from shipyard.store.models import Event

from .test_dashboard_session import sign_in

START = datetime(2026, 1, 1, 12, 0)
HISTORY = [
    ("ci", "run.created", "iris#1", {"trigger": "webhook"}),
    ("ci", "stage.passed", "iris#1/build", {}),
    ("rita", "artifact.promoted", "iris:1-ab12cd3", {"to": "release"}),
    ("olga", "rollout.pause", "iris/production/1-ab12cd3", {}),
    ("olga", "rollout.abort", "iris/production/1-ab12cd3", {"reason": "p95 up"}),
    ("ci", "run.created", "iris2#1", {}),  # another project whose name starts alike
    ("admin", "project.created", "wine", {}),
]
# Only the seeded history: signing in writes events of its own, now.
WINDOW = {"since": "2026-01-01T00:00", "until": "2026-01-02T00:00"}
ROW = re.compile(r'<tr id="event-\d+">(.*?)</tr>', re.S)
ACTION = re.compile(r"<code>([^<]+)</code>")


@pytest.fixture
def history(services: Services) -> None:
    with services.adapters.store.session() as s:
        for minute, (actor, action, subject, detail) in enumerate(HISTORY):
            at = START + timedelta(minutes=minute)
            s.add(Event(actor=actor, action=action, subject=subject, detail=detail, at=at))


def actions(api: TestClient, **filters: str) -> list[str]:
    page = api.get("/audit", params={**WINDOW, **filters})
    assert page.status_code == 200, page.text
    return [ACTION.search(row).group(1) for row in ROW.findall(page.text)]  # type: ignore[union-attr]


@pytest.mark.usefixtures("history")
def test_each_filter_narrows_the_log_newest_first(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    everything = [action for _, action, _, _ in reversed(HISTORY)]
    assert actions(api) == everything
    assert actions(api, actor="olga") == ["rollout.abort", "rollout.pause"]
    assert actions(api, project="iris") == everything[2:]  # not iris2, not wine
    assert actions(api, kind="rollout") == ["rollout.abort", "rollout.pause"]
    assert actions(api, kind="run.created") == ["run.created", "run.created"]
    assert actions(api, since="2026-01-01T12:04") == everything[:3]
    assert actions(api, until="2026-01-01T12:02") == everything[-2:]
    assert actions(api, actor="ci", project="iris") == ["stage.passed", "run.created"]
    assert actions(api, actor="nobody") == []
    assert "No event matches these filters." in api.get("/audit?actor=nobody").text


@pytest.mark.usefixtures("history")
def test_the_page_shows_who_did_what_and_links_runs_and_artifacts(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    html = api.get("/audit", params=WINDOW).text
    assert '<a href="/projects/iris/runs/1">iris#1</a>' in html
    assert '<a href="/projects/iris/runs/1">iris#1/build</a>' in html
    assert '<a href="/artifacts/iris/1-ab12cd3">iris:1-ab12cd3</a>' in html
    assert "<td>iris/production/1-ab12cd3</td>" in html  # names no run or artifact
    assert "reason=p95 up" in html and "to=release" in html
    assert "2026-01-01 12:04:00" in html
    assert 'value="2026-01-01T00:00"' in html  # the filter shown back in its form
    # The whole log follows changes live; a project's log, that project's changes only.
    assert 'data-live=""' in api.get("/audit").text
    assert 'data-live="project=iris"' in api.get("/audit?project=iris").text


@pytest.mark.usefixtures("history")
def test_older_pages_follow_one_another_without_overlap(
    api: TestClient, tokens: dict[TokenRole, str]
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    seen: list[str] = []
    url: str | None = "/audit?" + "&".join(f"{k}={v}" for k, v in {**WINDOW, "limit": "3"}.items())
    pages = 0
    while url is not None:
        html = api.get(url).text
        seen += [ACTION.search(row).group(1) for row in ROW.findall(html)]  # type: ignore[union-attr]
        older = re.search(r'<a href="(/audit\?[^"]+)" rel="next">Older</a>', html)
        url = older.group(1).replace("&amp;", "&") if older else None
        pages += 1
        assert pages < 5, "the pages never end"
    assert seen == [action for _, action, _, _ in reversed(HISTORY)]
    assert pages == 3  # 3 + 3 + 1
    assert "Newest" in html and "data-live" not in html  # an older page stays still


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("since=yesterday", "since 'yesterday' is not a date and time"),
        ("until=2026-13-01T00:00", "until '2026-13-01T00:00' is not a date and time"),
        ("limit=many", "limit 'many' is not a number"),
        ("limit=0", "limit 0 is out of range"),
        ("limit=5000", "limit 5000 is out of range"),
        ("before=latest", "before 'latest' is not an event id"),
    ],
)
def test_a_filter_that_cannot_be_read_is_an_error_page_saying_how_to_write_it(
    api: TestClient, tokens: dict[TokenRole, str], query: str, says: str
) -> None:
    sign_in(api, tokens[TokenRole.VIEWER])
    page = api.get(f"/audit?{query}")
    assert page.status_code == 400
    assert says in page.text.replace("&#39;", "'")
    hints = ("YYYY-MM-DDTHH:MM", "Ask for 1 to 1000 events", "Follow the page's Older link")
    assert any(hint in page.text.replace("&#39;", "'") for hint in hints)
