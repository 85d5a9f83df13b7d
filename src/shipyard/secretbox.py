"""Secrets Shipyard must read back (a project's webhook secret), sealed with Fernet.

API tokens are only compared, so a digest of them is enough; checking a webhook's HMAC needs
the secret itself. The key lives in the state directory (``keys/secrets.key``, 0600) and is
made on first use; the database holds only sealed text, so a copy of the database alone
reveals no secret.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from shipyard.errors import ShipyardError
from shipyard.paths import PRIVATE_FILE, private_dir

__all__ = ["SecretBox"]


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Fernet | None = None

    def seal(self, text: str) -> str:
        return self._key().encrypt(text.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._key().decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ShipyardError(
                f"A stored secret does not open with {self.key_file}.",
                hint="The key was replaced; register the project again with a new secret.",
            ) from exc

    def _key(self) -> Fernet:
        if self._fernet is None:
            if not self.key_file.is_file():
                _create(self.key_file)
            self._fernet = Fernet(self.key_file.read_bytes().strip())
        return self._fernet


def _create(key_file: Path) -> None:
    """Write a new key; when another process got there first, theirs stands."""
    private_dir(key_file.parent)
    draft = key_file.with_name(f".{key_file.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        os.write(fd, Fernet.generate_key())
    finally:
        os.close(fd)
    try:
        os.link(draft, key_file)  # atomic, and never over an existing key
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            draft.unlink()
