"""Managing the keys: trusting another instance's key, and rotating this instance's own.

Trusting copies a public PEM key into ``<state>/keys/trusted/<key id>.pub``; from then on the
stage results and build signatures that key made count here as this instance's own do.

Rotating replaces the signing key without orphaning a signature: every release signature and
every attestation this instance made is first verified with the old key, then re-signed with a
new one, in one transaction (a single one that does not verify stops it all, changing nothing);
each artifact's re-signing is in the audit log. The old key is kept beside the new one as
``retired/<key id>.key``, no longer used or trusted. The new key is written first, as
``.<name>.new`` beside the key, and moved into place after the transaction: a process killed
in between leaves it there, and moving it over the key file finishes the rotation.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.artifacts.interface import SignatureError
from shipyard.artifacts.signing import (
    KeyFile,
    SignatureRecord,
    key_id,
    public_pem,
    verifies,
)
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.artifacts.catalog import Catalog
    from shipyard.store.models import Artifact

RETIRED_DIR = "retired"


def trust_key(keys: KeyFile, file: Path) -> str:
    """Add the public key in ``file`` to the trusted keys; returns its id."""
    public = KeyFile(Path(file), create=False).trusted()
    ident = key_id(public)
    keys.trusted_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = keys.trusted_dir / f"{ident.replace(':', '-')}.pub"
    target.write_text(public_pem(public))
    return ident


@dataclass(frozen=True)
class Rotation:
    old: str
    new: str
    artifacts: int  # artifacts whose signatures were re-made
    retired: Path  # where the old key is kept


def rotate_key(catalog: Catalog, keys: KeyFile) -> Rotation:
    """Re-sign everything the current key signed with a new key, then make the new one current."""
    if not keys.path.exists():
        raise InvalidInput(
            f"There is no signing key at {keys.path} to rotate from.",
            hint="Rotating verifies every signature with the old key: put it back first"
            " (or point --key at it).",
        )
    old = keys.signer()
    fresh = KeyFile(keys.path.with_name(f".{keys.path.name}.new"), create=True)
    fresh.path.unlink(missing_ok=True)
    new = fresh.signer()

    def re_sign(artifact: Artifact, data: bytes, stored: SignatureRecord) -> SignatureRecord:
        if not verifies(stored, old.public, data):
            raise SignatureError(
                f"The signature of {artifact.name}:{artifact.version} by {old.key_id} does not"
                " verify: nothing was re-signed.",
                hint="`shipyard artifacts fsck` lists what was altered; fix that first.",
            )
        return new.sign_bytes(data)

    try:
        count = catalog.re_sign(old.key_id, re_sign)
    except BaseException:
        fresh.path.unlink(missing_ok=True)
        raise
    retired = keys.path.parent / RETIRED_DIR / f"{old.key_id.replace(':', '-')}.key"
    retired.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy2(keys.path, retired)
    os.replace(fresh.path, keys.path)
    catalog.record_rotation(old.key_id, new.key_id, count)
    return Rotation(old.key_id, new.key_id, count, retired)
