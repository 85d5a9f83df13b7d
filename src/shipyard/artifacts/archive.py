"""The artifact archive: one deterministic ``.tar.gz`` per build.

Layout of an archive::

    build-info.json     name, version, git, run, times, params, metrics, reports (sorted keys)
    code/...            the project's files at the built commit (no .git, __pycache__, .shipyard)
    lock/<lock file>    the lock the environment was built from
    model/...           what the train command wrote

Packing is deterministic (sorted members, zeroed times and owners, normalised modes, no name or
time in the gzip header), so the same inputs give the same sha256, and that digest is the
artifact's identity. ``build-info.json`` sorts first, which lets :func:`read_build_info` stop
after one member. Unpacking trusts nothing: every member is proven safe by
:mod:`shipyard.artifacts.members` before it is written (tarfile's own filters are not relied
on), files are created without following links and readable by their owner only, the gzip
trailer is checked, and the result appears under its final name only once complete.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from shipyard.artifacts.local import CHUNK, fsync_dir
from shipyard.artifacts.members import Kind, Limits, Placed, TreeModel, UnsafeMember
from shipyard.errors import InvalidInput

BUILD_INFO = "build-info.json"
# ``.git`` is a folder in a clone and a file in a worktree; neither belongs in an artifact.
SKIPPED_IN_CODE = frozenset({".git", "__pycache__", ".shipyard"})
# What a damaged or foreign archive raises while being read, whatever the damage.
_READ_ERRORS = (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error, UnicodeDecodeError)
UNSAFE_HINT = (
    "Shipyard writes only files, folders and links that stay inside the archive;"
    " do not deploy this file, and rebuild the artifact from its commit."
)


@dataclass(frozen=True)
class PackedArtifact:
    path: Path
    digest: str  # "sha256:<64 hex>"
    size: int


# -- packing -----------------------------------------------------------------------------------


class _HashingWriter:
    """A write-only file object that hashes what passes through, so packing reads nothing twice."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


# One archive member: its name, the path it comes from (None: a folder made up for the layout),
# and the tree its symlinks must stay inside (None: follow symlinks, as for the lock file).
_Member = tuple[str, Path | None, Path | None]


def _entries(root: Path, prefix: str, skip: frozenset[str]) -> Iterator[_Member]:
    """The folder ``prefix`` and everything below ``root`` in it, minus skipped names."""
    yield prefix, None, None
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name not in skip]
        base = Path(directory)
        for name in dirnames + [name for name in filenames if name not in skip]:
            path = base / name
            yield f"{prefix}/{path.relative_to(root).as_posix()}", path, root


def _tarinfo(name: str, path: Path | None, tree: Path | None) -> tarfile.TarInfo:
    """A member header that carries nothing of this machine: no times, owners or umask."""
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    if path is None:
        return info
    mode = (path.lstat() if tree is not None else path.stat()).st_mode
    if stat.S_ISLNK(mode) and tree is not None:
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, _link_target(path, tree)
    elif stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, path.stat().st_size
        info.mode = 0o755 if mode & 0o111 else 0o644
    elif not stat.S_ISDIR(mode):
        raise InvalidInput(f"Cannot pack {path}: it is not a file, a folder or a symlink.")
    return info


def _link_target(link: Path, tree: Path) -> str:
    """The link as a relative path inside ``tree``; InvalidInput when it points outside."""
    target = (link.parent / os.readlink(link)).resolve()
    if not target.is_relative_to(tree.resolve()):
        raise InvalidInput(
            f"Cannot pack {link}: it is a symlink to {target}, outside {tree}.",
            hint="Copy the file into the folder instead of linking to it.",
        )
    return os.path.relpath(target, link.parent.resolve())


def _add(tar: tarfile.TarFile, name: str, path: Path | None, tree: Path | None) -> None:
    info = _tarinfo(name, path, tree)
    if not info.isreg() or path is None:
        tar.addfile(info)
        return
    with open(path, "rb") as source:
        tar.addfile(info, source)


def _add_build_info(tar: tarfile.TarFile, build_info: Mapping[str, Any]) -> None:
    try:
        text = json.dumps(dict(build_info), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"build-info cannot be written as JSON: {exc}.") from None
    data = text.encode()
    info = tarfile.TarInfo(BUILD_INFO)
    info.size, info.mode, info.uname, info.gname = len(data), 0o644, "", ""
    tar.addfile(info, io.BytesIO(data))


def _check_inputs(model_dir: Path, code_dir: Path, lock_file: Path) -> None:
    for folder, what in ((model_dir, "model"), (code_dir, "code")):
        if not folder.is_dir():
            raise InvalidInput(f"Cannot pack: the {what} folder {folder} does not exist.")
    if not any(model_dir.iterdir()):
        raise InvalidInput(
            f"Cannot pack: the model folder {model_dir} is empty.",
            hint="The train command must write the model into $SHIPYARD_MODEL_DIR.",
        )
    if not lock_file.is_file():
        raise InvalidInput(f"Cannot pack: the lock file {lock_file} does not exist.")


def _members(model_dir: Path, code_dir: Path, lock_file: Path) -> list[_Member]:
    """Every member but build-info.json, sorted by archive name."""
    members = list(_entries(model_dir, "model", frozenset()))
    members += _entries(code_dir, "code", SKIPPED_IN_CODE)
    members += [("lock", None, None), (f"lock/{lock_file.name}", lock_file, None)]
    return sorted(members, key=lambda member: member[0])


def pack(
    out_dir: Path,
    *,
    model_dir: Path,
    code_dir: Path,
    lock_file: Path,
    build_info: Mapping[str, Any],
) -> PackedArtifact:
    """Write ``<out_dir>/<sha256 hex>.tar.gz`` and return its path, digest and size."""
    model_dir, code_dir, lock_file = Path(model_dir), Path(code_dir), Path(lock_file)
    _check_inputs(model_dir, code_dir, lock_file)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out_dir, prefix=".pack-", suffix=".part")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw:
            writer = _write_archive(raw, build_info, _members(model_dir, code_dir, lock_file))
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temp, 0o600)  # it sits in the private state until the blob store takes it
        final = out_dir / f"{writer.hasher.hexdigest()}.tar.gz"
        os.replace(temp, final)
        fsync_dir(out_dir)
    finally:
        temp.unlink(missing_ok=True)
    digest = f"sha256:{writer.hasher.hexdigest()}"
    return PackedArtifact(path=final, digest=digest, size=writer.size)


def _write_archive(
    raw: IO[bytes], build_info: Mapping[str, Any], members: list[_Member]
) -> _HashingWriter:
    writer = _HashingWriter(raw)
    # filename="" and mtime=0 keep the gzip header free of the temp file's name and the clock.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=writer, mtime=0) as gz,
        tarfile.TarFile(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as tar,
    ):
        _add_build_info(tar, build_info)
        for name, path, tree in members:
            _add(tar, name, path, tree)
    return writer


# -- reading -----------------------------------------------------------------------------------


@contextmanager
def _open(archive: Path) -> Iterator[tuple[gzip.GzipFile, tarfile.TarFile]]:
    """The archive as a forward-only tar stream over a gzip reader we can drain to its trailer."""
    archive = Path(archive)
    if not archive.is_file():
        raise InvalidInput(f"{archive} is not a Shipyard artifact: there is no such file.")
    try:
        with (
            gzip.open(archive, "rb") as gz,
            tarfile.open(fileobj=gz, mode="r|", bufsize=CHUNK) as tar,
        ):
            yield gz, tar
    except _READ_ERRORS as exc:
        raise _damaged(archive, exc) from None


def _damaged(archive: Path, exc: BaseException) -> InvalidInput:
    if isinstance(exc, EOFError):
        reason = "it is truncated (the compressed stream ends early)"
    elif isinstance(exc, gzip.BadGzipFile | zlib.error):
        reason = f"it is not a gzip file or its data is corrupt ({exc})"
    else:
        reason = f"it is not a valid tar archive ({exc})"
    return InvalidInput(
        f"{archive} is not a Shipyard artifact: {reason}.",
        hint="Artifacts are .tar.gz files written by `shipyard`; fetch or build it again.",
    )


def _load_build_info(archive: Path, stream: IO[bytes] | None) -> dict[str, Any]:
    try:
        value = json.load(stream) if stream is not None else None
    except ValueError as exc:
        raise InvalidInput(f"{archive}: {BUILD_INFO} is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{archive}: {BUILD_INFO} must be a JSON object.")
    return value


def read_build_info(archive: Path) -> dict[str, Any]:
    """The archive's build-info, read from its first member without unpacking the rest."""
    with _open(archive) as (_gz, tar):
        for member in tar:
            if member.name == BUILD_INFO and member.isreg():
                return _load_build_info(archive, tar.extractfile(member))
    raise _missing(archive, BUILD_INFO)


def _missing(archive: Path, what: str) -> InvalidInput:
    return InvalidInput(
        f"{archive} is not a Shipyard artifact: it has no {what}.",
        hint="Artifacts hold build-info.json, model/, code/ and lock/; build it again.",
    )


# -- unpacking ---------------------------------------------------------------------------------


def _extract(archive: Path, into: Path) -> None:
    model = TreeModel(Limits.for_folder(into))
    root = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with _open(archive) as (gz, tar):
            for member in tar:
                try:
                    placed = model.add(member.name, member.type, member.linkname)
                except UnsafeMember as exc:
                    raise InvalidInput(
                        f"{archive} is not a Shipyard artifact: {exc}.", hint=UNSAFE_HINT
                    ) from None
                _write(root, placed, member, tar)
            # tar stops at its end marker; reading on to the gzip trailer checks the CRC and length.
            while gz.read(CHUNK):
                pass
    finally:
        os.close(root)


def _write(root: int, placed: Placed, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
    """Create one proven member below ``root``, never following a link on the way."""
    folder = _open_folder(root, placed.parents)
    try:
        if placed.kind is Kind.FOLDER:
            _make_folder(folder, placed.name)
        elif placed.kind is Kind.SYMLINK:
            os.symlink(str(placed.target), placed.name, dir_fd=folder)
        elif placed.kind is Kind.HARDLINK:
            _hard_link(root, str(placed.target), folder, placed.name)
        else:
            _write_file(folder, placed.name, member, tar)
    finally:
        os.close(folder)


def _open_folder(root: int, parts: list[str]) -> int:
    """A descriptor of the folder ``parts`` below ``root``, made (mode 0700) where missing."""
    fd = os.dup(root)
    try:
        for part in parts:
            _make_folder(fd, part)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_folder(parent: int, name: str) -> None:
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise
        return
    os.chmod(name, 0o700, dir_fd=parent, follow_symlinks=False)  # whatever the umask


def _hard_link(root: int, target: str, folder: int, name: str) -> None:
    *parents, target_name = target.split("/")
    source = _open_folder(root, parents)
    try:
        os.link(target_name, name, src_dir_fd=source, dst_dir_fd=folder, follow_symlinks=False)
    finally:
        os.close(source)


def _write_file(folder: int, name: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=folder)
    # Private whatever the umask; the owner keeps the exec bit where the archive had one.
    os.fchmod(fd, 0o700 if member.mode & 0o111 else 0o600)
    with os.fdopen(fd, "wb") as out:
        data = tar.extractfile(member)
        if data is not None:
            shutil.copyfileobj(data, out, CHUNK)


def _verify_tree(archive: Path, root: Path) -> dict[str, Any]:
    info_file = root / BUILD_INFO
    if not info_file.is_file() or info_file.is_symlink():
        raise _missing(archive, BUILD_INFO)
    model = root / "model"
    if not model.is_dir() or model.is_symlink():
        raise _missing(archive, "model/ folder")
    with open(info_file, "rb") as stream:
        return _load_build_info(archive, stream)


def unpack(archive: Path, dest: Path) -> dict[str, Any]:
    """Unpack ``archive`` into ``dest`` (new or empty) and return its build-info.

    ``dest`` appears only once the whole archive is out and checked.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"Cannot unpack into {dest}: it exists and is not an empty folder.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".unpack"))
    try:
        _extract(archive, temp)
        build_info = _verify_tree(archive, temp)
        os.chmod(temp, 0o700)
        os.replace(temp, dest)
        return build_info
    finally:
        shutil.rmtree(temp, ignore_errors=True)
