"""A local repository's ``post-commit`` hook that queues each new commit for the server.

The hook runs ``shipyard run --detach`` for the new commit, with the interpreter and the state
directory it was installed with: the commit is queued (a run's first stage is the server's
job) and the commit itself is never held up by the pipeline. A hook Shipyard did not write is
never replaced without ``force``; installing again is a no-op.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from shipyard.errors import Conflict
from shipyard.git import hooks_dir

__all__ = ["MARKER", "install_hook"]

MARKER = "# shipyard post-commit hook"
HOOK = """#!/bin/sh
{marker}: queues each new commit for the Shipyard server.
# Written by `shipyard hook install`; remove this file to stop it.
exec {python} -m shipyard run --detach --state {state} --ref "$(git rev-parse HEAD)" \\
    "$(git rev-parse --show-toplevel)"
"""


def install_hook(repository: Path, state: Path, *, force: bool = False) -> tuple[Path, bool]:
    """Write the hook; returns its path and whether anything changed."""
    path = hooks_dir(repository) / "post-commit"
    text = HOOK.format(
        marker=MARKER,
        python=shlex.quote(sys.executable),
        state=shlex.quote(str(state.resolve())),
    )
    if path.is_file():
        current = path.read_text(errors="replace")
        if current == text and os.access(path, os.X_OK):
            return path, False
        if MARKER not in current and not force:
            raise Conflict(
                f"{path} is a post-commit hook Shipyard did not write.",
                hint="Merge it by hand, or run again with --force to replace it"
                " (it is kept as post-commit.before-shipyard).",
            )
        if MARKER not in current:
            path.replace(path.with_name("post-commit.before-shipyard"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path, True
