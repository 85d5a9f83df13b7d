"""The `shipyard artifacts` commands, in process and as real processes (killed, concurrent)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from typer.testing import CliRunner, Result

from shipyard.artifacts import KeyFile, LocalBlobStore, materialize
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.fsck import fsck
from shipyard.artifacts.signing import key_id, public_pem
from shipyard.artifacts.transfer import pull
from shipyard.cli.app import app
from shipyard.paths import StateDir
from shipyard.store.models import Artifact
from shipyard.store.store import Store

from .conftest import PASSING, Tree, publish_run

Cli = Callable[..., Result]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def home(state: Path) -> Iterator[tuple[Store, LocalBlobStore]]:
    paths = StateDir(state).ensure()
    store = Store(paths.database_url)
    yield store, LocalBlobStore(paths.blobs)
    store.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    for name in ("SHIPYARD_STATE", "SHIPYARD_ACTOR", "SHIPYARD_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def squeeze(text: str) -> str:
    """Rich wraps at the terminal width: compare text with its whitespace squeezed."""
    return " ".join(text.split())


def shipyard(*args: str | Path) -> subprocess.Popen[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SHIPYARD_") or k == "SHIPYARD_CACHE"
    }
    return subprocess.Popen(
        [sys.executable, "-m", "shipyard", *map(str, args)],
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def build(
    tree: Tree,
    tmp_path: Path,
    home: tuple[Store, LocalBlobStore],
    qa: str = "passed",
    **info: object,
) -> Artifact:
    store, blobs = home
    return publish_run(tree, tmp_path / "out", store, blobs, {**PASSING, "qa": qa}, **info)


def test_show_search_set_and_json(
    cli: Cli, tree: Tree, tmp_path: Path, state: Path, home: tuple[Store, LocalBlobStore]
) -> None:
    artifact = build(tree, tmp_path, home)
    ref = f"iris:{artifact.version}"
    assert cli("artifacts", "set", ref, "team=vision", "--state", state).exit_code == 0
    refused = cli("artifacts", "set", ref, "test.status=passed", "--state", state)
    assert refused.exit_code == 1 and "set by Shipyard's stages" in str(refused.exception)
    shown = json.loads(cli("artifacts", "show", ref, "--json", "--state", state).stdout)
    assert shown["digest"] == artifact.digest and shown["properties"]["team"] == "vision"
    assert shown["repositories"] == ["dev"] and shown["build_info"]["run"] == 1
    assert [a.split(" by ")[0] for a in shown["attestations"]] == ["build", "test", "analyze", "qa"]
    human = cli("artifacts", "show", ref, "--state", state)
    assert "vision" in human.stdout and '"run": 1' in human.stdout
    found = cli(
        "artifacts",
        "search",
        "iris",
        "--version",
        ">=1,<2",
        "-P",
        "team=vision",
        "--repo",
        "dev",
        "--json",
        "--state",
        state,
    )
    assert [a["version"] for a in json.loads(found.stdout)] == [artifact.version]
    none = cli("artifacts", "search", "-P", "team=search", "--json", "--state", state)
    assert json.loads(none.stdout) == []
    bad = cli("artifacts", "search", "--version", ">=x", "--state", state)
    assert bad.exit_code == 1 and "not a version range" in str(bad.exception)


def test_promote_dry_run_policy_and_audit(
    cli: Cli, tree: Tree, tmp_path: Path, state: Path, home: tuple[Store, LocalBlobStore]
) -> None:
    artifact = build(tree, tmp_path, home, qa="skipped")
    ref = f"iris:{artifact.version}"
    dry = cli("promote", ref, "--dry-run", "--state", state)
    assert dry.exit_code == 1
    assert "would be refused by release" in squeeze(dry.stdout)
    assert "qa: skipped (must be passed)" in squeeze(dry.stdout)
    refused = cli("promote", ref, "--state", state)
    assert "--allow-skipped qa" in (refused.exception.hint or "")  # type: ignore[union-attr]
    loosen = cli("artifacts", "policy", "release", "--allow-skipped", "qa", "--state", state)
    assert loosen.exit_code == 1 and "--reason" in (loosen.exception.hint or "")  # type: ignore[union-attr]
    loosen = cli(
        "artifacts",
        "policy",
        "release",
        "--allow-skipped",
        "qa",
        "--reason",
        "no staging yet",
        "--state",
        state,
    )
    assert loosen.exit_code == 0 and "skip allowed: qa" in squeeze(loosen.stdout)
    assert cli("promote", ref, "--dry-run", "--state", state).exit_code == 0
    done = cli("promote", ref, "--reason", "ship it", "--state", state)
    assert done.exit_code == 0
    assert f"{ref} promoted to release" in squeeze(done.stdout)
    assert "signed by ed25519:" in squeeze(done.stdout)
    key = cli("artifacts", "key", "--state", state)
    assert key.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert (state / "keys" / "signing.key").stat().st_mode & 0o077 == 0
    repos = json.loads(cli("artifacts", "repos", "--json", "--state", state).stdout)
    assert {r["name"]: r["allow_skipped"] for r in repos} == {"dev": [], "release": ["qa"]}


def test_retention_gc_dry_run_and_fsck_exit_codes(
    cli: Cli, tree: Tree, tmp_path: Path, state: Path, home: tuple[Store, LocalBlobStore]
) -> None:
    store, blobs = home
    old = publish_run(tree, tmp_path / "o1", store, blobs, PASSING, n=1)
    new = publish_run(tree, tmp_path / "o2", store, blobs, PASSING, n=2)
    assert (
        cli(
            "artifacts", "policy", "dev", "--keep-last", "1", "--max-age", "30d", "--state", state
        ).exit_code
        == 0
    )
    assert Catalog(store).repository("dev").max_age == 30 * 86400
    assert (
        cli(
            "artifacts", "policy", "dev", "--keep-last", "1", "--no-retention", "--state", state
        ).exit_code
        == 0
    )
    assert Catalog(store).repository("dev").max_age is None
    dry = json.loads(
        cli("artifacts", "gc", "--dry-run", "--grace", "0", "--json", "--state", state).stdout
    )
    assert dry["deleted"] == [f"iris:{old.version}"] and dry["blobs"][0]["digest"] == old.digest
    assert blobs.exists(old.digest)
    done = cli("artifacts", "gc", "--grace", "0", "--state", state)
    assert done.exit_code == 0 and f"removed artifact iris:{old.version}" in squeeze(done.stdout)
    assert not blobs.exists(old.digest) and blobs.exists(new.digest)
    assert cli("artifacts", "fsck", "--state", state).exit_code == 0
    stored = blobs.path(new.digest)
    stored.chmod(0o644)
    stored.write_bytes(b"overwritten")
    broken = cli("artifacts", "fsck", "--json", "--state", state)
    assert broken.exit_code == 1
    assert [p["kind"] for p in json.loads(broken.stdout)["problems"]] == ["corrupt"]


def test_fsck_names_a_deployed_file_that_changed(
    cli: Cli, tree: Tree, tmp_path: Path, state: Path, home: tuple[Store, LocalBlobStore]
) -> None:
    store, blobs = home
    artifact = publish_run(tree, tmp_path / "out", store, blobs, PASSING)
    dest = StateDir(state).deployment_dir("iris", "production", artifact.version)
    keys = KeyFile(StateDir(state).signing_key, create=True)
    materialize(store, blobs, "iris", artifact.version, dest, keys=keys)
    assert cli("artifacts", "fsck", "--state", state).exit_code == 0
    (dest / "model" / "model.skops").write_bytes(b"swapped weights")
    broken = cli("artifacts", "fsck", "--state", state)
    assert broken.exit_code == 1
    assert "model/model.skops was changed" in squeeze(broken.stdout)
    problems = json.loads(cli("artifacts", "fsck", "--json", "--state", state).stdout)["problems"]
    assert [(p["kind"], p["subject"]) for p in problems] == [("modified", str(dest))]


def test_pull_and_push_through_the_cli(
    cli: Cli, tree: Tree, tmp_path: Path, state: Path, home: tuple[Store, LocalBlobStore]
) -> None:
    artifact = build(tree, tmp_path, home)
    out = tmp_path / "export" / "iris.tar.gz"
    pulled = cli("artifacts", "pull", f"iris:{artifact.version}", "-o", out, "--state", state)
    assert pulled.exit_code == 0, pulled.output
    other = tmp_path / "other"
    pushed = cli("artifacts", "push", out, "--state", other)
    assert pushed.exit_code == 0
    assert "added in dev" in squeeze(pushed.stdout)
    assert "with its manifest" in squeeze(pushed.stdout)
    again = cli("artifacts", "push", out, "--state", other)
    assert "already known (nothing changed)" in squeeze(again.stdout)
    listed = json.loads(cli("artifacts", "--json", "--state", other).stdout)
    assert [(a["version"], a["digest"]) for a in listed] == [(artifact.version, artifact.digest)]


def test_two_concurrent_pushes_of_the_same_file_both_succeed(
    tree: Tree, tmp_path: Path, home: tuple[Store, LocalBlobStore], keys: KeyFile
) -> None:
    (tree.model / "weights.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    artifact = build(tree, tmp_path, home)
    out = tmp_path / "iris.tar.gz"
    pull(*home, "iris", artifact.version, out, keys=keys)
    other = tmp_path / "other"
    procs = [shipyard("artifacts", "push", out, "--state", other) for _ in range(2)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    assert sum("added in dev" in squeeze(out) for out, _ in results) >= 1
    blob_files = [p for p in (other / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert [p.name for p in blob_files] == [artifact.digest.removeprefix("sha256:")]
    paths = StateDir(other)
    store = Store(paths.database_url)
    try:
        assert [a.digest for a, _ in store.list_artifacts()] == [artifact.digest]
        assert fsck(store, LocalBlobStore(paths.blobs), keys=keys).ok
    finally:
        store.close()


def tar_header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


def endless_artifact_start(size: int) -> bytes:
    """The first bytes of a valid .tar.gz whose model file claims ``size`` bytes (uncompressed)."""
    build_info = json.dumps({"name": "iris", "version": "9-abcdef0"}).encode()
    info = tarfile.TarInfo("build-info.json")
    info.size = len(build_info)
    model = tarfile.TarInfo("model")
    model.type = tarfile.DIRTYPE
    big = tarfile.TarInfo("model/big.bin")
    big.size = size
    head = io.BytesIO()
    head.write(tar_header(info) + build_info + b"\0" * (-len(build_info) % 512))
    head.write(tar_header(model) + tar_header(big))
    return head.getvalue()


def test_a_push_killed_mid_write_leaves_nothing_and_fsck_is_clean(
    tmp_path: Path, keys: KeyFile
) -> None:
    fifo = tmp_path / "incoming.tar.gz"
    os.mkfifo(fifo)
    state = StateDir(tmp_path / "state")
    proc = shipyard("artifacts", "push", fifo, "--state", state.root)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    try:
        with open(fifo, "wb") as pipe:  # blocks until the push opens it
            pipe.write(compressor.compress(endless_artifact_start(300 * 1024 * 1024)))
            wait_for_partial_blob(pipe, compressor, state.blobs / "tmp", at_least=8 << 20)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
    except BrokenPipeError:  # the reader died between our last check and our last write
        pass
    finally:
        proc.kill()
        proc.communicate()
    blobs = LocalBlobStore(state.blobs)
    assert list(blobs.blobs()) == []
    assert [p.name.startswith(".blob-") for p, _ in blobs.temporary_files()] == [True]
    store = Store(state.database_url)
    try:
        assert store.list_artifacts() == []
        report = fsck(store, blobs, keys=keys)
        assert report.ok and report.blobs == 0 and len(report.temporaries) == 1
    finally:
        store.close()


def wait_for_partial_blob(pipe: BinaryIO, compressor: Any, temp_dir: Path, at_least: int) -> None:
    """Feed random model bytes until the push's temporary blob file holds ``at_least`` bytes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pipe.write(compressor.compress(os.urandom(1 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH))
        sizes = [p.stat().st_size for p in temp_dir.glob(".blob-*")] if temp_dir.exists() else []
        if sizes and max(sizes) >= at_least:
            return
    raise AssertionError("the push never wrote its temporary blob file")


def test_override_trust_list_and_rotate_through_the_cli(
    cli: Cli, tree: Tree, tmp_path: Path, state: Path, home: tuple[Store, LocalBlobStore]
) -> None:
    store, _ = home
    packed = tree.pack(tmp_path / "forged.tar.gz", version="6.6.6")
    claims = {f"{s}.status": "passed" for s in ("test", "analyze", "qa")}
    manifest = {
        "format": "shipyard.artifact-manifest.v1",
        "name": "iris",
        "version": "6.6.6",
        "digest": packed.digest,
        "properties": claims,
        "signatures": [],
    }
    Path(f"{packed.path}.manifest.json").write_text(json.dumps(manifest))
    assert cli("artifacts", "push", packed.path, "--state", state).exit_code == 0
    refused = cli("promote", "iris:6.6.6", "--state", state)
    assert refused.exit_code == 1
    assert "not signed by a key this Shipyard trusts" in str(refused.exception)
    assert "--override" in (refused.exception.hint or "")  # type: ignore[union-attr]
    done = cli("promote", "iris:6.6.6", "--override", "--reason", "audited", "--state", state)
    assert done.exit_code == 0 and "iris:6.6.6 promoted to release" in squeeze(done.stdout)
    actions = [e.action for e in store.events("iris:6.6.6")]
    assert "artifact.promotion-overridden" in actions

    other = KeyFile(tmp_path / "elsewhere" / "signing.key", create=True)
    pem = tmp_path / "elsewhere.pub"
    pem.write_text(public_pem(other.signer().public))
    trusted = cli("artifacts", "key", "trust", pem, "--state", state)
    assert trusted.exit_code == 0, trusted.output
    listed = squeeze(cli("artifacts", "key", "list", "--state", state).stdout)
    own = key_id(KeyFile(state / "keys" / "signing.key", create=False).trusted())
    assert f"{own} this instance" in listed
    assert f"{key_id(other.trusted())} trusted" in listed
    rotated = cli("artifacts", "key", "rotate", "--state", state)
    assert rotated.exit_code == 0, rotated.output
    assert f"rotated {own} ->" in squeeze(rotated.stdout)
    assert "1 artifact(s) re-signed" in squeeze(rotated.stdout)
