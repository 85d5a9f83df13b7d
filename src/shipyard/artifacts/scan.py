"""Checking an archive while its bytes stream past, so a push reads the file exactly once.

:class:`ArchiveScan` takes the raw ``.tar.gz`` bytes chunk by chunk (``feed``) and says at the
end (``finish``) whether they are a whole Shipyard artifact: a single gzip member whose trailer
(CRC and length) checks out, holding a tar stream that ends with its end marker, whose first
member is ``build-info.json`` (a JSON object), with a ``model/`` folder, and every member proven
safe by the same :class:`~shipyard.artifacts.members.TreeModel` that unpacking runs (nothing
absolute, no ``..``, no link out of the tree or to another link, no device, nothing too long).
Only headers and build-info are kept; file data is counted and dropped, and decompression is
bounded per call, so memory stays flat for any size or compression ratio.

:class:`ScanningReader` wraps a binary stream so that whoever reads it (the blob store's
``put``) drives the scan, and its final read raises instead of returning EOF when the archive
is not whole: the blob store then makes nothing visible.
"""

from __future__ import annotations

import json
import re
import tarfile
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from shipyard.artifacts.archive import BUILD_INFO, UNSAFE_HINT
from shipyard.artifacts.local import CHUNK
from shipyard.artifacts.members import TreeModel, UnsafeMember
from shipyard.errors import InvalidInput

BLOCK = tarfile.BLOCKSIZE
_KEPT_LIMIT = 16 * 1024 * 1024  # build-info and pax headers are small; more is not an artifact
_PAX_RECORD = re.compile(rb"(\d+) ")
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
HINT = "Artifacts are the .tar.gz files `shipyard artifacts pull` writes; copy it again."


class ArchiveScan:
    def __init__(
        self, label: str, on_build_info: Callable[[dict[str, Any]], object] | None = None
    ) -> None:
        self.label = label
        self.on_build_info = on_build_info  # may raise: the stream stops there
        self.build_info: dict[str, Any] | None = None
        self._gzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._buffer = bytearray()
        self._skip = 0  # data bytes of the current member still to drop
        self._keep: tuple[int, bytes] | None = None  # (bytes to keep, header type) being gathered
        self._kept = bytearray()
        self._overrides: dict[str, str] = {}
        self._members = 0
        self._has_model = False
        self._tree = TreeModel()
        self._ended = False

    # -- the gzip layer ------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._gzip.eof:
            if data:
                raise self._refuse("it has data after the end of the compressed stream")
            return
        try:
            while data:
                self._tar(self._gzip.decompress(data, CHUNK))
                data = self._gzip.unconsumed_tail
                if self._gzip.eof:
                    self.feed(self._gzip.unused_data)
                    return
        except zlib.error as exc:
            raise self._refuse(f"it is not a gzip file or its data is corrupt ({exc})") from None

    def finish(self) -> dict[str, Any]:
        """The build-info, once the whole archive has been seen; InvalidInput otherwise."""
        if not self._gzip.eof:
            raise self._refuse("it is truncated (the compressed stream ends early)")
        if not self._ended:
            raise self._refuse("it is truncated (the tar stream has no end marker)")
        if self.build_info is None:
            raise self._refuse(f"it has no {BUILD_INFO}")
        if not self._has_model:
            raise self._refuse("it has no model/ folder")
        return self.build_info

    def _refuse(self, reason: str) -> InvalidInput:
        return InvalidInput(f"{self.label} is not a Shipyard artifact: {reason}.", hint=HINT)

    # -- the tar layer -------------------------------------------------------------------------

    def _tar(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._ended:
                if self._buffer.strip(b"\0"):
                    raise self._refuse("it has data after the tar end marker")
                self._buffer.clear()
                return
            if self._skip:
                dropped = min(self._skip, len(self._buffer))
                del self._buffer[:dropped]
                self._skip -= dropped
                if self._skip:
                    return
            elif self._keep is not None:
                if not self._gather():
                    return
            elif len(self._buffer) >= BLOCK:
                block = bytes(self._buffer[:BLOCK])
                del self._buffer[:BLOCK]
                self._header(block)
            else:
                return

    def _gather(self) -> bool:
        """Move kept member data out of the buffer; True once the member is complete."""
        assert self._keep is not None
        size, kind = self._keep
        take = min(size - len(self._kept), len(self._buffer))
        self._kept += self._buffer[:take]
        del self._buffer[:take]
        if len(self._kept) < size:
            return False
        self._keep = None
        self._skip = -size % BLOCK
        self._kept_member(kind, bytes(self._kept))
        self._kept.clear()
        return True

    def _header(self, block: bytes) -> None:
        if not block.strip(b"\0"):
            self._ended = True
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise self._refuse(f"it is not a valid tar archive ({exc})") from None
        if info.type in _META_TYPES:
            self._start_keep(info.size, info.type)
            return
        self._member(info)

    def _start_keep(self, size: int, kind: bytes) -> None:
        if size > _KEPT_LIMIT:
            raise self._refuse(f"it has a {size}-byte header or build-info")
        self._keep = (size, kind)

    def _kept_member(self, kind: bytes, data: bytes) -> None:
        if kind == tarfile.XHDTYPE:
            self._overrides.update(_pax(data))
        elif kind == tarfile.GNUTYPE_LONGNAME:
            self._overrides["path"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif kind == tarfile.GNUTYPE_LONGLINK:
            self._overrides["linkpath"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif kind == b"build-info":
            self.build_info = self._parse_build_info(data)
            if self.on_build_info is not None:
                self.on_build_info(self.build_info)

    def _member(self, info: tarfile.TarInfo) -> None:
        name = self._overrides.pop("path", info.name)
        link = self._overrides.pop("linkpath", info.linkname)
        size = int(self._overrides.pop("size", info.size))
        self._overrides.clear()
        self._check_member(name, info.type, link)
        self._members += 1
        self._has_model |= name.rstrip("/") == "model" or name.startswith("model/")
        if self._members == 1:
            if name != BUILD_INFO or info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise self._refuse(f"its first member is {name!r}, not {BUILD_INFO}")
            self._start_keep(size, b"build-info")
            return
        self._skip = (
            size + (-size % BLOCK) if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
        )

    def _check_member(self, name: str, kind: bytes, link: str) -> None:
        try:
            self._tree.add(name, kind, link)
        except UnsafeMember as exc:
            raise InvalidInput(
                f"{self.label} is not a Shipyard artifact: {exc}.", hint=UNSAFE_HINT
            ) from None

    def _parse_build_info(self, data: bytes) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise self._refuse(f"{BUILD_INFO} is not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise self._refuse(f"{BUILD_INFO} is not a JSON object")
        return value


def _pax(data: bytes) -> dict[str, str]:
    """The records of a pax extended header: ``"<length> <key>=<value>\\n"`` each."""
    found: dict[str, str] = {}
    position = 0
    while position < len(data):
        match = _PAX_RECORD.match(data, position)
        if match is None or int(match.group(1)) <= 0:
            break
        record = data[match.end() : position + int(match.group(1)) - 1]
        key, _, value = record.partition(b"=")
        found[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        position += int(match.group(1))
    return found


class ScanningReader:
    """A read-only stream over ``source`` that scans what passes; EOF only for a whole archive."""

    def __init__(self, source: BinaryIO, scan: ArchiveScan) -> None:
        self.source = source
        self.scan = scan

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        if data:
            self.scan.feed(data)
        else:
            self.scan.finish()
        return data
