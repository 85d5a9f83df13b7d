"""Deployment trees are verified, not trusted: what an unpack wrote is recorded and re-checked.

A materialized tree carries a marker, ``.shipyard-artifact``: JSON with the digest the tree was
unpacked from and, for every path below it, what it was::

    {"digest": "sha256:...", "files": {"code": "folder", "code/x.py": "sha256:...",
                                       "code/link.py": "symlink:x.py", ...}}

Before a tree is reused (every start and restart goes through ``materialize``) it is walked
again and compared: a changed, added or missing path is named and the tree is unpacked again
from its verified blob. ``__pycache__`` folders are the one exception: Python writes them when
the model server imports the code, so they are never recorded and are deleted before reuse,
which means bytecode nobody verified is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

MARKER = ".shipyard-artifact"
CACHE = "__pycache__"
FOLDER = "folder"


@dataclass(frozen=True)
class TreeRecord:
    digest: str  # the artifact the tree was unpacked from
    files: dict[str, str]  # relative path -> "folder", "symlink:<target>" or "sha256:<hex>"


def contents(tree: Path) -> dict[str, str]:
    """Every path below ``tree`` (but the marker and ``__pycache__``) and what it holds."""
    found: dict[str, str] = {}
    _walk(tree, "", found)
    found.pop(MARKER, None)
    return found


def _walk(folder: Path, prefix: str, found: dict[str, str]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name == CACHE and entry.is_dir(follow_symlinks=False):
                continue
            relative = prefix + entry.name
            found[relative] = _describe(entry)
            if found[relative] == FOLDER:
                _walk(Path(entry.path), relative + "/", found)


def _describe(entry: os.DirEntry[str]) -> str:
    mode = entry.stat(follow_symlinks=False).st_mode
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISLNK(mode):
        return f"symlink:{os.readlink(entry.path)}"
    if not stat.S_ISREG(mode):
        return "other"  # a fifo or socket someone put there: never what an archive held
    with open(entry.path, "rb") as stream:
        return "sha256:" + hashlib.file_digest(stream, "sha256").hexdigest()


def write_marker(tree: Path, digest: str) -> TreeRecord:
    """Record what ``tree`` holds now, as unpacked from ``digest``."""
    record = TreeRecord(digest, contents(tree))
    data = json.dumps({"digest": record.digest, "files": record.files}, sort_keys=True)
    fd = os.open(tree / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(data + "\n")
    return record


def read_marker(tree: Path) -> TreeRecord | None:
    """The tree's record; None without a readable one (an older plain-digest marker included)."""
    try:
        value = json.loads((tree / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    digest, files = value.get("digest"), value.get("files")
    if not isinstance(digest, str) or not isinstance(files, dict):
        return None
    return TreeRecord(digest, {str(k): str(v) for k, v in files.items()})


def differences(tree: Path, record: TreeRecord) -> list[str]:
    """What changed in ``tree`` since ``record``, one phrase per path; empty when nothing did."""
    now = contents(tree)
    found = [f"{path} was removed" for path in record.files if path not in now]
    found += [f"{path} was added" for path in now if path not in record.files]
    found += [
        f"{path} was changed"
        for path, what in now.items()
        if path in record.files and record.files[path] != what
    ]
    return sorted(found)


def clear_caches(tree: Path) -> None:
    """Delete the bytecode caches Python wrote into ``tree``: they were never verified."""
    for cache in sorted(tree.rglob(CACHE), reverse=True):
        if cache.is_dir() and not cache.is_symlink():
            shutil.rmtree(cache, ignore_errors=True)
