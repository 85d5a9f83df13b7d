"""Imports point down: deploying knows nothing of canaries, and SQL lives in the store."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import shipyard

SOURCE = Path(shipyard.__file__).parent


def modules_loaded_by(module: str) -> set[str]:
    """What a fresh interpreter has imported after importing ``module``."""
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_deploying_does_not_import_the_canary_package() -> None:
    # Not even lazily, inside a function: the canary package builds on deploying, not back.
    named = imports_of(SOURCE / "pipeline" / "deploy.py")
    assert not {m for m in named if m.startswith("shipyard.canary")}
    loaded = modules_loaded_by("shipyard.pipeline.deploy")
    assert "shipyard.pipeline.deploy" in loaded
    assert not {m for m in loaded if m.startswith("shipyard.canary")}


def test_the_catalog_fsck_and_rollout_records_leave_sql_to_the_store() -> None:
    for module in ("artifacts/catalog.py", "artifacts/fsck.py", "canary/records.py"):
        speaks_sql = {m for m in imports_of(SOURCE / module) if m.startswith("sqlalchemy")}
        assert speaks_sql == set(), module
        assert "store.session()" not in (SOURCE / module).read_text(), module
