"""Artifact properties: ``key=value`` pairs set by the stages and by users.

Keys are 1 to 128 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit;
values are up to 1024 printable characters. Keys under the stages' namespaces (``build.``,
``git.``, ``test.``, ``analyze.``, ``qa.``, ``release.``, ``origin.``) are written by Shipyard
only: a stage's ``<stage>.*`` properties are what its signed result says, and promotion refuses
an artifact whose properties differ from the signature (:mod:`shipyard.artifacts.attestations`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.errors import InvalidInput

KEY_RULE = "1 to 128 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
MAX_VALUE = 1024
RESERVED = ("build.", "git.", "test.", "analyze.", "qa.", "release.", "origin.")


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput(f"Invalid property key {key!r}.", hint=f"A key is {KEY_RULE}.")
    return key


def validate_value(key: str, value: str) -> str:
    if len(value) > MAX_VALUE or not value.isprintable():
        raise InvalidInput(
            f"The value of property {key!r} is too long or holds control characters.",
            hint=f"A value is at most {MAX_VALUE} printable characters on one line.",
        )
    return value


def user_key(key: str) -> str:
    """``key`` when a user may set it; InvalidInput for the stages' own namespaces."""
    validate_key(key)
    if key.startswith(RESERVED):
        raise InvalidInput(
            f"Property {key!r} is set by Shipyard's stages, not by hand.",
            hint=f"Choose a key outside {', '.join(RESERVED)}, e.g. team.owner.",
        )
    return key


def parse_assignment(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")``, both checked."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"{text!r} is not key=value.", hint="For example: team.owner=vision")
    return validate_key(key.strip()), validate_value(key, value)


def flatten(prefix: str, values: Mapping[str, Any]) -> dict[str, str]:
    """Scalar entries of a stage summary as properties: ``{"passed": 12}`` -> ``test.passed=12``."""
    found: dict[str, str] = {}
    for name, value in values.items():
        key = f"{prefix}.{str(name).lower()}"
        if isinstance(value, Mapping):
            found.update(flatten(key, value))
        elif isinstance(value, bool | int | float | str) and _KEY.fullmatch(key):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if len(text) <= MAX_VALUE and text.isprintable():
                found[key] = text
    return found


def stage_properties(stage: str, status: str, summary: Mapping[str, Any]) -> dict[str, str]:
    """What a stage's result says about the artifact: its status and its scalar figures."""
    return {f"{stage}.status": status, **flatten(stage, summary)}


def keys_of(assignments: Iterable[tuple[str, str]]) -> list[str]:
    return sorted(key for key, _ in assignments)
