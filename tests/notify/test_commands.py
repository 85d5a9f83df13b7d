"""`shipyard notify add|list|remove` on a real state directory."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from shipyard.cli.app import app
from shipyard.services import Services


def shipyard(state: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--state", str(state)], env={"COLUMNS": "200"})


def test_a_target_is_added_listed_and_removed(services: Services) -> None:
    state = services.adapters.state.root
    added = shipyard(
        state,
        "notify",
        "add",
        "https://chat.example/hook",
        "--event",
        "run.failed",
        "--event",
        "live",
        "--project",
        "tiny",
    )
    assert added.exit_code == 0, added.output
    assert "notification target 1 added: run.failed, live of tiny" in added.output
    [target] = json.loads(shipyard(state, "notify", "list", "--json").output)
    assert target["url"] == "https://chat.example/hook"
    assert target["events"] == ["run.failed", "live"] and target["project"] == "tiny"
    assert "chat.example/hook" in shipyard(state, "notify", "list").output
    assert "target 1 removed" in shipyard(state, "notify", "remove", "1").output
    assert services.notifications.list() == []


def test_a_bad_url_or_event_is_refused_with_what_to_fix(services: Services) -> None:
    state = services.adapters.state.root
    bad_url = shipyard(state, "notify", "add", "ftp://chat.example/hook")
    assert bad_url.exit_code != 0 and "is not an http(s) URL" in str(bad_url.exception)
    bad_event = shipyard(state, "notify", "add", "https://x.example", "--event", "deployed")
    assert bad_event.exit_code == 2 and "run.failed" in bad_event.output
    missing = shipyard(state, "notify", "remove", "9")
    assert missing.exit_code != 0 and "no notification target 9" in str(missing.exception)
    assert services.notifications.list() == []
