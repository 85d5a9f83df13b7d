"""The root command builds a subcommand only when it is named, and lists the same commands,
with the same help, as Typer's own conversion of the whole app."""

from __future__ import annotations

from typing import Any

import typer.main

from shipyard.cli.app import app
from shipyard.cli.ondemand import OnDemandGroup, click_command


def test_help_lists_every_command_with_typers_short_help_and_builds_none() -> None:
    eager: Any = typer.main.get_command(app)
    lazy = click_command(app)
    ctx = lazy.make_context("shipyard", [], resilient_parsing=True)
    text = lazy.get_help(ctx)
    assert lazy.commands == {}  # the listing came from the registrations
    assert lazy.list_commands(ctx) == list(eager.commands)
    for name, command in eager.commands.items():
        if command.hidden:
            continue
        short = command.get_short_help_str(limit=150)
        first_line = short.split(". ")[0][:40]
        assert f"  {name} " in text, name
        assert first_line in " ".join(text.split()), (name, short)


def test_a_command_is_built_when_it_is_named_and_only_it() -> None:
    lazy = click_command(app)
    ctx = lazy.make_context("shipyard", [], resilient_parsing=True)
    status = lazy.get_command(ctx, "status")
    assert status is not None and status.name == "status"
    artifacts = lazy.get_command(ctx, "artifacts")
    assert artifacts is not None and "show" in artifacts.list_commands(ctx)
    assert set(lazy.commands) == {"status", "artifacts"}
    assert lazy.get_command(ctx, "no-such-command") is None


def test_the_app_is_declared_for_building_on_demand() -> None:
    assert isinstance(typer.main.get_command(app), OnDemandGroup)
    # Built eagerly (as Typer's test runner does), nothing is left pending.
    assert typer.main.get_command(app).pending == {}  # type: ignore[attr-defined]
