"""Every command explains itself: a help text, and every option listed with its own help.

Typer builds the commands on its own copy of click, so they are walked by their attributes.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shipyard.cli.app import app

ROOT: Any = typer.main.get_command(app)


def walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The command paths under ``command``, groups included (``("artifacts", "show")``)."""
    found = [path] if path else []
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, (*path, name))
    return found


COMMANDS = walk(ROOT)


def lookup(path: tuple[str, ...]) -> Any:
    command = ROOT
    for name in path:
        command = command.commands[name]
    return command


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert names >= {"init", "schema", "run", "status", "logs", "cancel", "promote", "deploy"}
    assert names >= {"rollback", "envs", "down", "demo", "artifacts", "artifacts show"}


def test_the_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for path in COMMANDS:
        if len(path) == 1:
            assert f" {path[0]} " in result.stdout
    assert squeeze(ROOT.help) in squeeze(result.stdout)


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_of_each_command_lists_its_options(path: tuple[str, ...]) -> None:
    command = lookup(path)
    name = " ".join(path)
    assert command.help and command.help.strip(), f"`{name}` has no help text"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    shown = squeeze(result.stdout)
    assert squeeze(command.help.splitlines()[0]) in shown
    options = [p for p in command.params if p.param_type_name == "option"]
    # Every other command takes at least one option (a group's are on its subcommands).
    assert options or name == "schema" or hasattr(command, "commands")
    for param in options:
        assert param.help, f"`{name}` {param.opts[0]} has no help text"
        for opt in (*param.opts, *param.secondary_opts):
            assert opt in shown, f"{opt} missing from `{name} --help`"
