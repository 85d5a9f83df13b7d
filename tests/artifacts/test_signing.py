"""Ed25519 keys on disk and signatures over (name, version, digest)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.artifacts import KeyFile, SignatureError
from shipyard.artifacts.signing import KEY_ENV_VAR, public_pem, statement, verify
from shipyard.errors import InvalidInput

DIGEST = "sha256:" + "e" * 64


def test_the_default_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "state" / "keys" / "signing.key", create=True)
    first = keys.signer()
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.path.parent.stat().st_mode) == 0o700
    assert keys.signer().key_id == first.key_id  # loaded, not replaced
    assert [p.name for p in keys.path.parent.iterdir()] == ["signing.key"]


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    code = (
        "import sys; from pathlib import Path; from shipyard.artifacts import KeyFile;"
        "print(KeyFile(Path(sys.argv[1]), create=True).signer().key_id)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    ids = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert len(ids) == 1 and ids.pop().startswith("ed25519:")
    assert [p.name for p in path.parent.iterdir()] == ["signing.key"]


def test_a_signature_binds_name_version_and_digest(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "k", create=True)
    record = keys.signer().sign("iris", "3-abc", DIGEST)
    trusted = keys.trusted()
    verify(record, trusted, "iris", "3-abc", DIGEST)
    for name, version, digest in [
        ("wine", "3-abc", DIGEST),
        ("iris", "4-abc", DIGEST),
        ("iris", "3-abc", "sha256:" + "f" * 64),
    ]:
        with pytest.raises(SignatureError, match="does not verify"):
            verify(record, trusted, name, version, digest)
    assert statement("iris", "3-abc", DIGEST) == (
        b'{"digest":"' + DIGEST.encode() + b'","name":"iris","type":"shipyard.artifact.v1",'
        b'"version":"3-abc"}'
    )


def test_an_explicit_key_must_exist_and_be_private_to_sign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    default = tmp_path / "default.key"
    missing = KeyFile.resolve(default, tmp_path / "nope.key")
    assert missing.create is False
    with pytest.raises(InvalidInput, match="Cannot read the signing key"):
        missing.signer()
    assert not (tmp_path / "nope.key").exists()
    real = KeyFile(tmp_path / "real.key", create=True)
    real.signer()
    monkeypatch.setenv(KEY_ENV_VAR, str(real.path))
    assert KeyFile.resolve(default).path == real.path
    public = tmp_path / "release.pub"
    public.write_text(public_pem(real.trusted()))
    with pytest.raises(InvalidInput, match="holds a public key only"):
        KeyFile(public, create=False).signer()


def test_a_readable_or_foreign_key_file_is_refused(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "k", create=True)
    keys.signer()
    os.chmod(keys.path, 0o644)
    with pytest.raises(InvalidInput, match="can be read by other users") as caught:
        keys.signer()
    assert caught.value.hint == f"chmod 600 {keys.path}"
    junk = tmp_path / "junk.key"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    junk.chmod(0o600)
    with pytest.raises(InvalidInput, match="is not a PEM key"):
        KeyFile(junk, create=False).trusted()
