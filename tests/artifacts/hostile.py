"""Hostile archives, built member by member with tarfile, for the push, unpack and deploy tests.

Each archive starts like a real artifact (build-info.json, model/m.bin) and then tries one way
out of the unpack folder. ``outside`` is a folder around the unpack folder: absolute names and
links aim there, so a test can check that nothing new ever appears in it.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

BUILD_INFO = b'{"name": "iris", "version": "6.6.6"}'


@dataclass(frozen=True)
class Entry:
    name: str
    type: bytes = tarfile.REGTYPE
    link: str = ""
    data: bytes = b""


def _cve_2025_4517() -> list[Entry]:
    """The public PoC's shape: 16 nested symlinks whose expansion exceeds PATH_MAX, then ``..``."""
    folder = "d" * 247
    steps = "abcdefghijklmnop"
    entries, path = [], ""
    for step in steps:
        entries.append(Entry(f"{path}{folder}", tarfile.DIRTYPE))
        entries.append(Entry(f"{path}{step}", tarfile.SYMTYPE, folder))
        path += f"{folder}/"
    deep = "/".join(steps) + "/" + "l" * 254
    entries.append(Entry(deep, tarfile.SYMTYPE, "../" * len(steps)))
    entries.append(Entry("escape", tarfile.SYMTYPE, deep + "/" + "../" * 3))
    entries.append(Entry("escape/escaped.txt", data=b"pwned"))
    return entries


def cases(outside: Path) -> dict[str, list[Entry]]:
    return {
        "cve-2025-4517": _cve_2025_4517(),
        "link a -> ..": [Entry("a", tarfile.SYMTYPE, ".."), Entry("a/escaped.txt", data=b"x")],
        "link a/b -> ..": [
            Entry("a", tarfile.DIRTYPE),
            Entry("a/b", tarfile.SYMTYPE, ".."),
            Entry("a/b/b/b/escaped.txt", data=b"x"),
        ],
        "link chain": [
            Entry("model/one", tarfile.SYMTYPE, "two"),
            Entry("model/two", tarfile.SYMTYPE, "m.bin"),
        ],
        "absolute name": [Entry(str(outside / "escaped.txt"), data=b"x")],
        "../ name": [Entry("model/../../escaped.txt", data=b"x")],
        "absolute symlink": [
            Entry("model/out", tarfile.SYMTYPE, str(outside)),
            Entry("model/out/escaped.txt", data=b"x"),
        ],
        "hard link out": [Entry("model/h", tarfile.LNKTYPE, "../../outside.txt")],
        "device": [Entry("model/null", tarfile.CHRTYPE)],
    }


def build(path: Path, entries: list[Entry]) -> Path:
    """A .tar.gz of a real artifact's first members followed by ``entries``."""
    first = [Entry("build-info.json", data=BUILD_INFO), Entry("model/m.bin", data=b"1")]
    with (
        gzip.open(path, "wb") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry in first + entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.linkname, info.size = entry.type, entry.link, len(entry.data)
            tar.addfile(info, io.BytesIO(entry.data) if entry.data else None)
    return path


def snapshot(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))
