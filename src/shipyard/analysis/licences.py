"""The licences of the installed distributions, read from their metadata, against a deny list.

A distribution's licence is, in order of trust: its PEP 639 ``License-Expression`` (an SPDX
expression); its older ``License`` field when that is short enough to be a name rather than
the licence's whole text or a copyright line; its ``License ::`` classifiers, mapped to SPDX ids and joined with
OR (several licence classifiers mean the user may pick one). None of those is ``UNKNOWN``.

``analyze.licences.deny`` holds SPDX ids or globs (``GPL-3.0*``, ``AGPL-*``, matched without
regard to case). An expression is denied as SPDX reads it: ``A OR B`` only when both are
denied (the user may choose the other), ``A AND B`` when either is. Text that is not an SPDX
expression is matched whole.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.analysis.interface import Distribution, Finding, ScanResult, Target
from shipyard.analysis.osv import normalize
from shipyard.config.schema import LicencesConfig

__all__ = ["LicenceScanner", "denied_by", "licence_of"]

UNKNOWN = "UNKNOWN"
_CLASSIFIERS = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "zlib/libpng License": "Zlib",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "GNU General Public License (GPL)": "GPL",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "Other/Proprietary License": "LicenseRef-Proprietary",
    "Public Domain": "LicenseRef-Public-Domain",
}
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def licence_of(dist: Distribution) -> tuple[str, str]:
    """(licence, where it was read): an SPDX expression when the metadata has one."""
    if dist.license_expression and dist.license_expression.strip():
        return dist.license_expression.strip(), "License-Expression"
    text = (dist.license or "").strip()
    if _names_a_licence(text):
        return text, "License"
    named = [
        _CLASSIFIERS.get(name, name)
        for name in (c.split("::")[-1].strip() for c in dist.classifiers)
        if name and name not in ("OSI Approved",)
    ]
    if named:
        return " OR ".join(dict.fromkeys(named)), "classifiers"
    return UNKNOWN, "none"


def _names_a_licence(text: str) -> bool:
    # The License field often holds the licence's whole text or a copyright line instead.
    lowered = text.lower()
    prose = ("copyright", "(c)", "http", "see ", "license.txt", "permission", "all rights")
    return (
        bool(text)
        and "\n" not in text
        and len(text) <= 80
        and text.upper() != UNKNOWN
        and not any(word in lowered for word in prose)
    )


# --- is it denied? -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    operator: str  # "AND", "OR", or "" for a licence
    children: tuple[_Node, ...] = ()
    licence: str = ""


def _parse(expression: str) -> _Node:
    tokens = _TOKEN.findall(expression)
    try:
        node, rest = _or(tokens)
    except (IndexError, ValueError):
        return _Node("", licence=expression)
    return node if not rest else _Node("", licence=expression)  # not SPDX: matched whole


def _or(tokens: list[str]) -> tuple[_Node, list[str]]:
    node, rest = _and(tokens)
    children = [node]
    while rest and rest[0].upper() == "OR":
        node, rest = _and(rest[1:])
        children.append(node)
    return (children[0] if len(children) == 1 else _Node("OR", tuple(children))), rest


def _and(tokens: list[str]) -> tuple[_Node, list[str]]:
    node, rest = _atom(tokens)
    children = [node]
    while rest and rest[0].upper() == "AND":
        node, rest = _atom(rest[1:])
        children.append(node)
    return (children[0] if len(children) == 1 else _Node("AND", tuple(children))), rest


def _atom(tokens: list[str]) -> tuple[_Node, list[str]]:
    if tokens[0] == "(":
        node, rest = _or(tokens[1:])
        if not rest or rest[0] != ")":
            raise ValueError("unbalanced parenthesis")
        return node, rest[1:]
    if tokens[0] in (")",) or tokens[0].upper() in ("AND", "OR", "WITH"):
        raise ValueError(f"unexpected {tokens[0]}")
    rest = tokens[1:]
    if rest and rest[0].upper() == "WITH":  # an exception narrows a licence, never widens it
        rest = rest[2:]
    return _Node("", licence=tokens[0]), rest


def _denied(node: _Node, deny: Sequence[str]) -> str | None:
    """The deny pattern that makes ``node`` denied, if any."""
    if not node.operator:
        lowered = node.licence.lower()
        return next((p for p in deny if fnmatch.fnmatchcase(lowered, p.lower())), None)
    verdicts = [_denied(child, deny) for child in node.children]
    if node.operator == "AND":
        return next((v for v in verdicts if v), None)
    return verdicts[0] if all(verdicts) else None


def denied_by(expression: str, deny: Sequence[str]) -> str | None:
    return _denied(_parse(expression), deny) if deny else None


class LicenceScanner:
    kind = "licence"

    def __init__(self, config: LicencesConfig) -> None:
        self.config = config

    def scan(self, target: Target) -> ScanResult:
        if target.distributions is None:
            return ScanResult(self.kind, [], "no environment", ["NOT CHECKED: no environment"])
        findings: list[Finding] = []
        licences: dict[str, str] = {}
        for dist in target.distributions:
            licence, _ = licence_of(dist)
            licences[dist.name] = licence
            pattern = denied_by(licence, self.config.deny)
            if pattern is not None:
                findings.append(_finding(dist, licence, pattern))
        unknown = sorted(name for name, licence in licences.items() if licence == UNKNOWN)
        notes = [f"no licence in the metadata of: {', '.join(unknown)}"] if unknown else []
        counts = Counter(licences.values())
        scope = f"{len(licences)} installed distributions"
        if self.config.deny:
            scope += f"; denied: {', '.join(self.config.deny)}"
        return ScanResult(
            self.kind, findings, scope, notes, data={"licences": licences, "counts": dict(counts)}
        )


def _finding(dist: Distribution, licence: str, pattern: str) -> Finding:
    return Finding(
        kind="licence",
        id="licence-denied",
        severity="high",
        title=f"licensed {licence}, denied by {pattern!r}",
        location=f"{dist.name}=={dist.version}",
        aliases=(f"licence-denied:{normalize(dist.name)}",),
        fix=f"replace {dist.name}, or allow-list licence-denied:{normalize(dist.name)} with a reason",
        details={"package": dist.name, "version": dist.version, "licence": licence},
    )
