"""The schema revisions the migration files define, read without importing Alembic."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["MIGRATIONS", "head_revision"]

MIGRATIONS = Path(__file__).parent / "migrations"
REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?(\w+)", re.MULTILINE)


def head_revision() -> str | None:
    """The newest migration's revision id, read from the migration files' text.

    Importing Alembic costs more than a CLI command is worth; when the database is already at
    this revision (every open but the first after an upgrade), opening skips it entirely. None
    when the files do not name exactly one head; then Alembic decides.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in REVISION_LINE.findall(script.read_text()):
            (revisions if kind == "revision" else parents).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
