"""Package facades whose names are imported on first use (PEP 562).

A package's ``__init__`` re-exports its public names; importing them all at once would make
``from shipyard.canary import records`` pay for the judge's scipy, and every CLI command pay
for what only some of them use. :func:`exports` gives a package a module ``__getattr__`` that
imports the submodule holding a name when the name is first asked for. The package keeps its
eager imports under ``TYPE_CHECKING``, so type checkers see the same names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps each name to its submodule."""

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return getattr_
