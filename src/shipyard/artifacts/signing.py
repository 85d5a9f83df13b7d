"""Release signatures: Ed25519 over an artifact's identity (name, version, digest).

The signed statement is canonical JSON (sorted keys, no spaces) of a type tag, the name, the
version and the digest, so a signature binds those exact bytes to that exact version and to
nothing else. The key is a PEM file: ``<state>/keys/signing.key`` by default, created on first
use with mode 0600; ``$SHIPYARD_SIGNING_KEY`` or ``--key`` name another (which must exist). A
file holding only a public key can verify but not sign (a production host needs no secret).

Trust lives in the key file, not in the database: a stored signature is checked against the
public half of the configured key, so whoever can edit the database (add a signature row, swap
its public key) still cannot make altered bytes deployable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shipyard.artifacts.interface import SignatureError
from shipyard.errors import InvalidInput

KEY_ENV_VAR = "SHIPYARD_SIGNING_KEY"
ALGORITHM = "ed25519"
STATEMENT_TYPE = "shipyard.artifact.v1"
TRUSTED_DIR = "trusted"  # beside the signing key: public keys of other instances


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The one byte form of a statement: JSON with sorted keys and no spaces."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def statement(name: str, version: str, digest: str) -> bytes:
    """The exact bytes that are signed for ``name:version`` with ``digest``."""
    return canonical({"digest": digest, "name": name, "type": STATEMENT_TYPE, "version": version})


@dataclass(frozen=True)
class SignatureRecord:
    algorithm: str
    key_id: str
    public_key: str  # base64 of the raw 32-byte public key
    value: str  # base64 of the 64-byte signature


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: its sha256, shortened."""
    return f"{ALGORITHM}:{hashlib.sha256(_raw(public)).hexdigest()[:16]}"


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class Signer:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, name: str, version: str, digest: str) -> SignatureRecord:
        return self.sign_bytes(statement(name, version, digest))

    def sign_bytes(self, data: bytes) -> SignatureRecord:
        value = self._private.sign(data)
        return SignatureRecord(
            ALGORITHM,
            self.key_id,
            base64.b64encode(_raw(self.public)).decode(),
            base64.b64encode(value).decode(),
        )


def verify(
    record: SignatureRecord | None,
    trusted: Ed25519PublicKey,
    name: str,
    version: str,
    digest: str,
) -> None:
    """SignatureError unless ``record`` signs (name, version, digest) with the ``trusted`` key.

    Messages are about "it", the artifact: callers put its NAME:VERSION in front.
    """
    if record is None:
        raise SignatureError(
            "it has no signature",
            hint="Only `shipyard promote` puts artifacts into an immutable repository; promote it again.",
        )
    if record.algorithm != ALGORITHM:
        raise SignatureError(f"its signature uses an unknown algorithm {record.algorithm!r}")
    if record.key_id != key_id(trusted):
        raise SignatureError(
            f"it is signed by key {record.key_id}, not by the trusted key {key_id(trusted)}",
            hint=f"Use the key that signed it (--key or ${KEY_ENV_VAR}), or promote it again.",
        )
    if not verifies(record, trusted, statement(name, version, digest)):
        raise SignatureError(
            f"its signature does not verify for digest {digest}"
            " (the signature or the artifact's record was altered)",
            hint="Do not deploy it; `shipyard artifacts fsck` checks every artifact.",
        )


def verifies(record: SignatureRecord, public: Ed25519PublicKey, data: bytes) -> bool:
    """Whether ``record`` is ``public``'s Ed25519 signature of exactly ``data``."""
    if record.algorithm != ALGORITHM or record.key_id != key_id(public):
        return False
    try:
        public.verify(base64.b64decode(record.value, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_of(record: SignatureRecord) -> Ed25519PublicKey:
    """The public key a record carries (it proves nothing until that key is trusted)."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(record.public_key))
    except ValueError:
        raise SignatureError(f"the key {record.key_id} it names is not an Ed25519 key") from None


class KeyFile:
    """Where the signing key lives, whether Shipyard may create it there, and the keys it trusts.

    The keys other Shipyard instances sign with are trusted by listing their public PEM files
    in ``trusted_dir`` (``<state>/keys/trusted``, filled by `shipyard artifacts key trust`).
    """

    def __init__(self, path: Path, *, create: bool, trusted_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.create = create
        self.trusted_dir = Path(trusted_dir) if trusted_dir else self.path.parent / TRUSTED_DIR

    def __repr__(self) -> str:
        return f"KeyFile({str(self.path)!r}, create={self.create})"

    @classmethod
    def resolve(cls, default: Path, explicit: Path | None = None) -> KeyFile:
        """``explicit`` (``--key``), else ``$SHIPYARD_SIGNING_KEY``, else ``default`` (creatable)."""
        chosen = explicit or os.environ.get(KEY_ENV_VAR)
        trusted_dir = default.parent / TRUSTED_DIR
        if chosen:
            return cls(Path(chosen).expanduser(), create=False, trusted_dir=trusted_dir)
        return cls(default, create=True, trusted_dir=trusted_dir)

    def signer(self, in_use: Collection[str] = ()) -> Signer:
        """The private key, created first when this is the default location and it is missing.

        ``in_use`` are the ids of keys whose signatures the store holds: while any exists, a
        missing key is lost, not new, and a fresh one would silently orphan every signature.
        """
        if self.create and not self.path.exists():
            if in_use:
                raise self._lost(in_use)
            _create(self.path)
        key = self._load()
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInput(
                f"{self.path} holds a public key only: it can verify signatures but not sign.",
                hint="Promote on the machine that has the private key.",
            )
        return Signer(key)

    def _lost(self, in_use: Collection[str]) -> InvalidInput:
        names = ", ".join(sorted(in_use))
        return InvalidInput(
            f"The signing key {self.path} is missing, and the store holds signatures by {names}."
            " Shipyard does not make a new key in its place: every release, build signature and"
            " stage result signed by the lost one would stop verifying.",
            hint=f"Put the key file back at {self.path}, or point --key or ${KEY_ENV_VAR} at it."
            " To change keys on purpose, `shipyard artifacts key rotate` re-signs everything"
            " (it needs the old key).",
        )

    def trusted(self) -> Ed25519PublicKey:
        """The public key that signatures must verify with."""
        if not self.path.exists():
            raise SignatureError(
                f"there is no signing key at {self.path} to verify signatures with",
                hint="Point --key or $SHIPYARD_SIGNING_KEY at the key that signed the release.",
            )
        key = self._load()
        return key.public_key() if isinstance(key, Ed25519PrivateKey) else key

    def trusted_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every key whose signatures count, by id: this instance's (if it exists) and the listed."""
        found = {}
        for path in sorted(self.trusted_dir.glob("*.pub")):
            public = KeyFile(path, create=False).trusted()
            found[key_id(public)] = public
        if self.path.exists():
            own = self.trusted()
            found[key_id(own)] = own
        return found

    def _load(self) -> Ed25519PrivateKey | Ed25519PublicKey:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise InvalidInput(
                f"Cannot read the signing key {self.path}: {exc.strerror}."
            ) from None
        if b"PRIVATE KEY" in data:
            _check_private(self.path)
        try:
            key: object = (
                serialization.load_pem_private_key(data, password=None)
                if b"PRIVATE KEY" in data
                else serialization.load_pem_public_key(data)
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidInput(f"{self.path} is not a PEM key ({exc}).", hint=_KEY_HINT) from None
        if not isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
            raise InvalidInput(f"{self.path} is not an Ed25519 key.", hint=_KEY_HINT)
        return key


_KEY_HINT = "Remove it to let Shipyard create one, or name an Ed25519 PEM key with --key."


def _check_private(path: Path) -> None:
    if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(
            f"The signing key {path} can be read by other users.",
            hint=f"chmod 600 {path}",
        )


def _create(path: Path) -> None:
    """Write a new key without ever overwriting one: a concurrent creator's key wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(name, path)
    finally:
        os.unlink(name)
