"""Finding artifacts: by name, version range, git sha prefix, properties and repository.

Versions are ``<run>-<sha7>`` (``3-1a2b3c4``), which no PEP 440 range understands, so a range
compares the run number in front: ``>=3,<7`` is runs 3 to 6, ``5`` or ``==5`` is run 5, and
``!=4`` every run but 4. Clauses are joined by commas and all must hold. Anything that is not
such a range (``1.0.0``, ``3-1a2b3c4``) matches that exact version. A version that does not
start with a run number never falls in a range.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.errors import InvalidInput

_CLAUSE = re.compile(r"\s*(>=|<=|==|!=|>|<)?\s*(\d+)\s*")
_RUN = re.compile(r"(\d+)(?:-|$)")
_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
RANGE_HINT = "A range compares the run number: '>=3,<7', '5', '!=4'; or give an exact version."


@dataclass(frozen=True)
class VersionFilter:
    """An exact version, or comparisons on the run number."""

    exact: str | None
    clauses: tuple[tuple[str, int], ...] = ()

    def matches(self, version: str) -> bool:
        if self.exact is not None:
            return version == self.exact
        match = _RUN.match(version)
        if match is None:
            return False
        run = int(match.group(1))
        return all(_OPERATORS[op](run, bound) for op, bound in self.clauses)


def parse_versions(text: str) -> VersionFilter:
    """``">=3,<7"`` -> comparisons on the run number; ``"1.0.0"`` -> that exact version."""
    text = text.strip()
    if not text:
        raise InvalidInput("An empty version filter matches nothing.", hint=RANGE_HINT)
    parts = text.split(",")
    matches = [_CLAUSE.fullmatch(part) for part in parts]
    if all(matches):
        return VersionFilter(
            None, tuple((m.group(1) or "==", int(m.group(2))) for m in matches if m)
        )
    if any(ch in text for ch in "<>=!,"):
        raise InvalidInput(f"{text!r} is not a version range.", hint=RANGE_HINT)
    return VersionFilter(text)


def parse_sha(prefix: str) -> str:
    value = prefix.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{4,64}", value):
        raise InvalidInput(
            f"{prefix!r} is not a git sha prefix.", hint="Give at least 4 hex characters."
        )
    return value
