"""Which archive members may be unpacked, decided by us, not by ``tarfile``'s filters.

``tarfile``'s ``data`` filter behaves differently between 3.11 patch releases, and symlink
chains whose expansion exceeds PATH_MAX have fooled it (CVE-2025-4517). So :class:`TreeModel`
remembers every path an archive has created so far and resolves each new member against that
model, component by component, without touching the filesystem. Refused:

- names that are empty, absolute, hold NUL or a backslash, or contain ``..``;
- a member written through a symlink (the packer never descends into one) or inside a file;
- symlinks whose target is absolute, leaves the tree, is the tree itself or a folder holding
  the link (a loop), or is or runs through another symlink (no chains, in either order);
- hard links to anything but a regular file already unpacked;
- devices, fifos and every other member type;
- a name component over NAME_MAX bytes, a path or link target over PATH_MAX bytes;
- a second member at a path already taken (except a folder listed twice).

The push-time scan and the unpack run the same model, so both refuse the same archives.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Kind(StrEnum):
    FILE = "file"
    FOLDER = "folder"
    SYMLINK = "symlink"
    HARDLINK = "hard link"


_KINDS = {
    tarfile.REGTYPE: Kind.FILE,
    tarfile.AREGTYPE: Kind.FILE,
    tarfile.DIRTYPE: Kind.FOLDER,
    tarfile.SYMTYPE: Kind.SYMLINK,
    tarfile.LNKTYPE: Kind.HARDLINK,
}
_TYPE_NAMES = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
    tarfile.CONTTYPE: "a contiguous file",
}


class UnsafeMember(ValueError):
    """A member that must not be unpacked; the message is a sentence naming it."""


@dataclass(frozen=True)
class Limits:
    name_max: int = 255
    path_max: int = 4096
    base: int = 0  # bytes of the unpack folder's path and the separator after it

    @classmethod
    def for_folder(cls, folder: Path) -> Limits:
        """The limits of the filesystem holding ``folder`` (which must exist)."""
        return cls(
            _pathconf(folder, "PC_NAME_MAX", cls.name_max),
            _pathconf(folder, "PC_PATH_MAX", cls.path_max),
            len(os.fsencode(folder)) + 1,
        )


def _pathconf(folder: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(folder, name)
    except (OSError, ValueError):
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class Placed:
    """A member proven safe: its path inside the tree and, for links, their checked target."""

    path: str  # "a/b/c", relative, normalised
    kind: Kind
    target: str | None = None  # symlink: its text as archived; hard link: the file's path

    @property
    def parents(self) -> list[str]:
        return self.path.split("/")[:-1]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class TreeModel:
    limits: Limits = field(default_factory=Limits)
    _nodes: dict[str, Kind] = field(default_factory=dict)
    _link_targets: dict[str, str] = field(default_factory=dict)  # link path -> resolved target

    def add(self, name: str, kind_code: bytes, link: str) -> Placed:
        """Prove the member safe and record it; UnsafeMember says why it is not."""
        kind = _KINDS.get(kind_code)
        if kind is None:
            what = _TYPE_NAMES.get(kind_code, f"a member of type {kind_code!r}")
            raise _unsafe(name, f"{what}, which is not a file, folder or link")
        path = self._path(name, name)
        if path in self._nodes:
            if kind is Kind.FOLDER and self._nodes[path] is Kind.FOLDER:
                return Placed(path, kind)
            raise _unsafe(name, f"a second member at {path!r}, which would replace the first")
        placed = Placed(path, kind, self._target(name, path, kind, link))
        self._nodes[path] = Kind.FILE if kind is Kind.HARDLINK else kind
        return placed

    def _target(self, name: str, path: str, kind: Kind, link: str) -> str | None:
        if kind is Kind.SYMLINK:
            self._check_not_a_link_target(name, path)
            self._link_targets[path] = self._symlink_target(name, path, link)
            return link
        if kind is Kind.HARDLINK:
            return self._hardlink_target(name, link)
        return None

    def _path(self, name: str, text: str) -> str:
        """``text`` as a tree path; its folders are created (in the model) if they are new."""
        if not text or text.startswith("/") or "\\" in text or "\0" in text:
            raise _unsafe(name, _malformed(text, "name"))
        parts = [part for part in text.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise _unsafe(name, "a name that climbs with '..'")
        if not parts:
            raise _unsafe(name, "a name for the unpack folder itself")
        for part in parts:
            if len(os.fsencode(part)) > self.limits.name_max:
                raise _unsafe(name, f"a name longer than {self.limits.name_max} bytes")
        path = "/".join(parts)
        self._check_length(name, path, "a path")
        for depth in range(1, len(parts)):
            self._through(name, "/".join(parts[:depth]))
        return path

    def _through(self, name: str, folder: str) -> None:
        """``folder`` is on the way to a member: it must be (or become) a real folder."""
        kind = self._nodes.setdefault(folder, Kind.FOLDER)
        if kind is Kind.SYMLINK:
            raise _unsafe(name, f"a member written through the symlink {folder!r}")
        if kind is not Kind.FOLDER:
            raise _unsafe(name, f"a member inside the file {folder!r}")

    def _check_length(self, name: str, path: str, what: str) -> None:
        size = self.limits.base + len(os.fsencode(path))
        if size >= self.limits.path_max:
            raise _unsafe(name, f"{what} of {size} bytes, over the limit of {self.limits.path_max}")

    def _symlink_target(self, name: str, path: str, link: str) -> str:
        """Where the link points, resolved inside the tree; UnsafeMember unless it is harmless."""
        if not link or link.startswith("/") or "\\" in link or "\0" in link:
            raise _unsafe(name, f"a symlink to {_shown(link)}, {_malformed(link, 'target')}")
        self._check_length(name, link, "a link target")
        parts = path.split("/")[:-1]
        for part in link.split("/"):
            if part in ("", "."):
                continue
            if part != "..":
                parts.append(part)
                if self._nodes.get("/".join(parts)) is Kind.SYMLINK:
                    raise _unsafe(name, f"a symlink to {_shown(link)}, which is another symlink")
            elif parts:
                parts.pop()
            else:
                raise _unsafe(name, f"a symlink to {_shown(link)}, which leaves the archive")
        target = "/".join(parts)
        if not target or path.startswith(target + "/") or target == path:
            raise _unsafe(name, f"a symlink to {_shown(link)}, a folder holding it (a loop)")
        self._check_length(name, target, "a link target")
        return target

    def _check_not_a_link_target(self, name: str, path: str) -> None:
        for link, target in self._link_targets.items():
            if target == path or target.startswith(path + "/"):
                raise _unsafe(name, f"a symlink where the symlink {_shown(link)} points (a chain)")

    def _hardlink_target(self, name: str, link: str) -> str:
        if not link or link.startswith("/") or ".." in link.split("/"):
            raise _unsafe(name, f"a hard link to {_shown(link)}, which leaves the archive")
        target = "/".join(part for part in link.split("/") if part not in ("", "."))
        if self._nodes.get(target) is not Kind.FILE:
            raise _unsafe(
                name, f"a hard link to {_shown(link)}, which is not a file unpacked before it"
            )
        return target


def _malformed(text: str, what: str) -> str:
    if not text:
        return f"an empty {what}"
    if text.startswith("/"):
        return f"an absolute {what}"
    return f"a {what} holding NUL or a backslash"


def _shown(text: str) -> str:
    """``text`` quoted, shortened in the middle when long (hostile names can be kilobytes)."""
    return repr(text if len(text) <= 100 else f"{text[:60]}...{text[-30:]}")


def _unsafe(name: str, why: str) -> UnsafeMember:
    return UnsafeMember(f"it holds an unsafe member {_shown(name)}: {why}")
