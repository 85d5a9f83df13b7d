"""The example projects Shipyard ships (``examples/`` in the repository, packaged in wheels)."""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import NotFound


def example_path(name: str) -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_examples" / name, here.parents[1] / "examples" / name):
        if (candidate / "shipyard.yaml").is_file():
            return candidate
    raise NotFound(
        f"The example {name!r} is not installed.",
        hint="Reinstall Shipyard, or run from a clone of its repository.",
    )
