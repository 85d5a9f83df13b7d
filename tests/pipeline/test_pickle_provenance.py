"""Which artifacts the model server may unpickle: the ``allow_pickle`` that `deploy.start` passes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.adapters import Adapters
from shipyard.artifacts import KeyFile, PackedArtifact, pack, publish
from shipyard.artifacts.transfer import push
from shipyard.pipeline import deploy
from shipyard.wiring import open_adapters

SCAN_PASSED = {
    "analyze.status": "passed",
    "analyze.counts.model.found": "1",
    "analyze.counts.model.blocking": "0",
}


@pytest.fixture
def adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Adapters]:
    monkeypatch.delenv("SHIPYARD_SIGNING_KEY", raising=False)
    found = open_adapters(tmp_path / "state")
    yield found
    found.store.close()


def _packed(tmp_path: Path, version: str) -> PackedArtifact:
    model, code = tmp_path / "model", tmp_path / "code"
    model.mkdir(exist_ok=True)
    code.mkdir(exist_ok=True)
    (model / "model.pkl").write_bytes(b"\x80\x04N.")  # pickle of None
    (code / "serve.py").write_text("x = 1\n")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    info = {"name": "tiny", "version": version}
    out = tmp_path / f"{version}.tar.gz"
    return pack(
        out,
        model_dir=model,
        code_dir=code,
        lock_file=tmp_path / "requirements.txt",
        build_info=info,
    )


def test_an_artifact_pushed_from_elsewhere_is_started_without_allow_pickle(
    adapters: Adapters, tmp_path: Path
) -> None:
    packed = _packed(tmp_path, "1.0.0")
    push(adapters.store, adapters.blobs, packed.path)  # no manifest: no build signature
    assert deploy.pickle_allowed(adapters, "tiny", "1.0.0") is False


def test_a_build_signed_here_whose_model_scan_passed_may_load_pickle_in_any_environment(
    adapters: Adapters, tmp_path: Path
) -> None:
    packed = _packed(tmp_path, "2.0.0")
    keys = KeyFile.resolve(adapters.state.signing_key)
    info = {"name": "tiny", "version": "2.0.0"}
    publish(
        adapters.store,
        adapters.blobs,
        packed,
        info,
        run_id=None,
        keys=keys,
        results={"analyze": SCAN_PASSED},
    )
    assert not adapters.store.in_repository("release", "tiny", "2.0.0")  # dev, as in staging
    assert deploy.pickle_allowed(adapters, "tiny", "2.0.0") is True
