"""Reading the audit log: by who, by project, by action or its family, since when, how many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shipyard.adapters import Adapters
from shipyard.errors import InvalidInput
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.store.models import Event


def logged(adapters: Adapters, actor: str, action: str, subject: str, at: datetime) -> None:
    with adapters.store.session() as s:
        s.add(Event(actor=actor, action=action, subject=subject, detail={}, at=at))


@pytest.fixture
def start() -> datetime:
    return datetime(2026, 1, 1, 12, 0)


@pytest.fixture
def history(adapters: Adapters, start: datetime) -> None:
    for minute, (actor, action, subject) in enumerate(
        [
            ("ci", "run.created", "iris#1"),
            ("ci", "stage.passed", "iris#1/build"),
            ("rita", "artifact.promoted", "iris:1-ab12cd3"),
            ("olga", "rollout.pause", "iris/production/1-ab12cd3"),
            ("olga", "rollout.abort", "iris/production/1-ab12cd3"),
            ("ci", "run.created", "iris2#1"),  # another project whose name starts alike
            ("admin", "project.created", "iris"),
            ("ci", "run.created", "a_b#1"),
        ]
    ):
        logged(adapters, actor, action, subject, start + timedelta(minutes=minute))


@pytest.mark.usefixtures("history")
def test_each_filter_narrows_the_events_newest_first(found: Services, start: datetime) -> None:
    def subjects(**filters: object) -> list[str]:
        return [e.subject for e in found.audit.events(**filters)]  # type: ignore[arg-type]

    assert subjects(actor="olga") == ["iris/production/1-ab12cd3"] * 2
    assert [e.action for e in found.audit.events(project="iris")] == [
        "project.created",
        "rollout.abort",
        "rollout.pause",
        "artifact.promoted",
        "stage.passed",
        "run.created",
    ]
    assert subjects(project="a_b") == ["a_b#1"]
    assert subjects(project="a%b") == []  # wildcards are only characters
    assert [e.action for e in found.audit.events(action="rollout")] == [
        "rollout.abort",
        "rollout.pause",
    ]
    assert [e.action for e in found.audit.events(action="rollout.pause")] == ["rollout.pause"]
    assert found.audit.events(action="roll") == []  # a family is a whole word
    assert subjects(since=start + timedelta(minutes=6)) == ["a_b#1", "iris"]
    aware = (start + timedelta(minutes=6)).replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert subjects(since=aware) == ["a_b#1", "iris"]  # the same moment, written in Paris
    assert subjects(actor="ci", limit=2) == ["a_b#1", "iris2#1"]


@pytest.mark.usefixtures("history")
def test_pages_of_older_events_follow_one_another_by_id(found: Services) -> None:
    first = found.audit.events(limit=3)
    second = found.audit.events(limit=3, before=first[-1].id)
    rest = found.audit.events(limit=3, before=second[-1].id)
    assert [e.id for e in first + second + rest] == [e.id for e in found.audit.events()]
    assert [e.subject for e in found.audit.events(actor="olga", before=first[0].id)] == [
        "iris/production/1-ab12cd3"
    ] * 2
    assert found.audit.events(before=rest[-1].id) == []


def test_an_event_names_who_acted(adapters: Adapters, found: Services) -> None:
    with acting_as("tok-releaser"):
        adapters.store.ensure_project("iris", "/repos/iris")
    [event] = found.audit.events(project="iris")
    assert (event.actor, event.action, event.detail) == (
        "tok-releaser",
        "project.created",
        {"repository": "/repos/iris"},
    )


@pytest.mark.parametrize("limit", [0, 1001])
def test_a_limit_out_of_range_is_refused(found: Services, limit: int) -> None:
    with pytest.raises(InvalidInput, match=f"limit {limit} is out of range"):
        found.audit.events(limit=limit)
