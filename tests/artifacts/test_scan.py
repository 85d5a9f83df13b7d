"""ArchiveScan: whole artifacts pass in any chunking; damaged, foreign and hostile ones do not."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from shipyard.artifacts.scan import ArchiveScan
from shipyard.errors import InvalidInput

from . import hostile
from .conftest import Tree
from .test_archive import GOOD, hand_made


def scan(data: bytes, chunk: int = 65536) -> dict[str, object]:
    scanner = ArchiveScan("the file")
    for start in range(0, len(data), chunk):
        scanner.feed(data[start : start + chunk])
    return scanner.finish()


@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 1 << 20])
def test_a_packed_artifact_passes_in_any_chunking(tree: Tree, tmp_path: Path, chunk: int) -> None:
    packed = tree.pack(tmp_path / "out", run=3)
    data = packed.path.read_bytes()
    if chunk == 1:
        data = data[:5000]  # byte by byte only through the headers and build-info
        with pytest.raises(InvalidInput, match="truncated"):
            scan(data, chunk)
        return
    assert scan(data, chunk) == {"name": "iris", "version": "1.0.0", "run": 3}


def refused(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=f"the file is not a Shipyard artifact: .*{reason}"):
        scan(data)


def test_truncated_archives_are_refused(tree: Tree, tmp_path: Path) -> None:
    data = tree.pack(tmp_path / "out").path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 4):
        refused(data[:cut], "it is truncated")


def test_corrupt_and_trailing_bytes_are_refused(tree: Tree, tmp_path: Path) -> None:
    data = bytearray(tree.pack(tmp_path / "out").path.read_bytes())
    refused(bytes(data) + b"extra", "it has data after the end of the compressed stream")
    data[len(data) // 2] ^= 0xFF
    refused(bytes(data), "it is not a gzip file or its data is corrupt")


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    refused(os.urandom(4096), "it is not a gzip file")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/model.skops", b"weights")
    refused(buffer.getvalue(), "it is not a gzip file")
    refused(gzip.compress(b"just some text\n" * 100), "it is not a valid tar archive")
    refused(gzip.compress(b"\0" * 1024), "it has no build-info.json")


def test_hostile_members_are_refused(tmp_path: Path) -> None:
    cases = {
        "traversal": ({**GOOD, "model/../../escaped.txt": b"x"}, None, "unsafe member"),
        "absolute": ({**GOOD, "/tmp/abs.txt": b"x"}, None, "unsafe member"),
        "link": (GOOD, {"model/up": "../../.."}, "which leaves the archive"),
        "first": ({"model/m.bin": b"1", **GOOD}, None, "its first member is 'model/m.bin'"),
        "no model": ({"build-info.json": b"{}", "code/x.py": b""}, None, "no model/ folder"),
        "not json": ({**GOOD, "build-info.json": b"{oops"}, None, "not valid JSON"),
    }
    for name, (members, links, reason) in cases.items():
        data = hand_made(tmp_path / f"{name}.tar.gz", members, links).read_bytes()
        refused(data, reason)


def test_a_device_member_is_refused() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in GOOD.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        device = tarfile.TarInfo("model/null")
        device.type = tarfile.CHRTYPE
        tar.addfile(device)
    refused(gzip.compress(buffer.getvalue()), "which is not a file, folder or link")


def test_long_names_through_pax_headers_are_followed(tmp_path: Path) -> None:
    long_name = "model/" + "d" * 150 + "/weights.bin"
    data = hand_made(tmp_path / "long.tar.gz", {**GOOD, long_name: b"w"}).read_bytes()
    assert scan(data)["name"] == "x"
    evil = hand_made(tmp_path / "evil.tar.gz", {**GOOD, "model/" + "../" * 60 + "x": b"w"})
    refused(evil.read_bytes(), "unsafe member")


@pytest.mark.parametrize("case", list(hostile.cases(Path("/tmp/outside"))))
def test_every_way_out_of_the_tree_is_refused_naming_the_member(tmp_path: Path, case: str) -> None:
    entries = hostile.cases(tmp_path / "outside")[case]
    data = hostile.build(tmp_path / "evil.tar.gz", entries).read_bytes()
    refused(data, "it holds an unsafe member '")
