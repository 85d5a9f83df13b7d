"""Fixtures for the service tests: the embedded adapters of a fresh state directory (real
SQLite, real blob folder, the store's leases), and the rows the services read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters import Adapters
from shipyard.artifacts import KeyFile, pack, publish
from shipyard.artifacts.attestations import ATTESTED_STAGES
from shipyard.artifacts.properties import stage_properties
from shipyard.canary import records
from shipyard.domain import Status
from shipyard.services import Services
from shipyard.store.models import Artifact, Rollout
from shipyard.wiring import open_adapters

STEPS = [{"weight": 20, "pause": 60.0}, {"weight": 50, "pause": "manual"}]
PASSING = {"build": "passed", "test": "passed", "analyze": "passed", "publish": "passed"}


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[Adapters]:
    # The environment cache is the session's (tests/conftest.py sets $SHIPYARD_CACHE).
    opened = open_adapters(tmp_path / "state")
    try:
        yield opened
    finally:
        opened.store.close()


@pytest.fixture
def found(adapters: Adapters) -> Services:
    return Services(adapters)


def rollout_in(adapters: Adapters, status: str = records.RUNNING, **fields: Any) -> Rollout:
    """A stored rollout of iris 1-aaaaaaa -> 2-bbbbbbb in production, at its first step."""
    adapters.store.ensure_project("iris", "/repos/iris")
    defaults: dict[str, Any] = {
        "project": "iris",
        "environment": "production",
        "stable_version": "1-aaaaaaa",
        "canary_version": "2-bbbbbbb",
        "steps": STEPS,
        "step_index": 0,
        "weight": 20,
        "verdicts": [],
    }
    row = Rollout(**{**defaults, **fields}, status=status)
    return adapters.store.save_rollout(row, "started")


def published(
    adapters: Adapters,
    tmp_path: Path,
    statuses: dict[str, str],
    build_info: dict[str, Any] | None = None,
) -> Artifact:
    """An artifact of a real run of iris whose stages ended with ``statuses``, published into
    `dev` as the pipeline does: the build and each attested result signed with the state
    directory's key. ``build_info`` adds to what the build records (an ``sbom``, say)."""
    store = adapters.store
    store.ensure_project("iris", "/repos/iris")
    run = store.create_run("iris", "ab12cd34" * 5, "main")
    for stage, status in statuses.items():
        store.set_stage_status("iris", run.number, stage, Status(status))
    model, code = tmp_path / "src" / "model", tmp_path / "src" / "code"
    model.mkdir(parents=True, exist_ok=True)
    code.mkdir(parents=True, exist_ok=True)
    (model / "weights.bin").write_bytes(b"\x01" * 1000)
    (code / "serve.py").write_text("class Model: ...\n")
    lock = tmp_path / "src" / "requirements.lock"
    lock.write_text("scikit-learn==1.5.0\n")
    info = {"name": "iris", "version": f"{run.number}-ab12cd3", "run": run.number}
    info |= build_info or {}
    packed = pack(tmp_path / "out", model_dir=model, code_dir=code, lock_file=lock, build_info=info)
    results = {
        stage: stage_properties(stage, status, {})
        for stage, status in statuses.items()
        if stage in ATTESTED_STAGES
    }
    keys = KeyFile.resolve(adapters.state.signing_key)
    return publish(store, adapters.blobs, packed, info, run_id=run.id, keys=keys, results=results)
