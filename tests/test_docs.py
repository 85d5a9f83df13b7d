"""The README documents every command and every shipyard.yaml key (Datasette's rule)."""

from __future__ import annotations

from pathlib import Path

import typer.main

from shipyard.cli.app import app
from shipyard.config import reference_markdown

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def command_paths() -> list[str]:
    group = typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        paths.append(name)
        for sub in getattr(command, "commands", {}):
            paths.append(f"{name} {sub}")
    return paths


def test_every_command_is_in_the_readme() -> None:
    paths = command_paths()
    assert len(paths) >= 13
    missing = [path for path in paths if f"`shipyard {path}" not in README]
    assert missing == []


def test_the_config_reference_in_the_readme_is_current() -> None:
    # Regenerate with: python -c "from shipyard.config import reference_markdown; print(reference_markdown())"
    assert reference_markdown().strip() in README


def test_the_readme_gives_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
