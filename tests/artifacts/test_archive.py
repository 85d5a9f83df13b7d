"""Packing and unpacking real archives, including damaged, foreign and hostile ones."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from shipyard.artifacts import digest_of, read_build_info, unpack
from shipyard.errors import InvalidInput

from . import hostile
from .conftest import Tree


def test_pack_is_deterministic(tree: Tree, tmp_path: Path) -> None:
    first = tree.pack(tmp_path / "one", run=7)
    os.utime(tree.model / "model.skops", (1, 1))  # times must not leak into the archive
    (tree.code / "iris_model" / "serve.py").chmod(0o600)  # nor the umask
    second = tree.pack(tmp_path / "two", run=7)
    assert first.digest == second.digest
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path.name == first.digest.removeprefix("sha256:") + ".tar.gz"
    assert digest_of(first.path).digest == first.digest
    assert first.size == first.path.stat().st_size
    assert [p.name for p in (tmp_path / "one").iterdir()] == [first.path.name]  # no temp left


def test_pack_digest_follows_content(tree: Tree, tmp_path: Path) -> None:
    before = tree.pack(tmp_path / "out")
    assert tree.pack(tmp_path / "out", run=2).digest != before.digest
    (tree.model / "model.skops").write_bytes(b"retrained")
    assert tree.pack(tmp_path / "out").digest != before.digest


def test_archive_layout_and_normalised_headers(tree: Tree, tmp_path: Path) -> None:
    packed = tree.pack(tmp_path / "out")
    with tarfile.open(packed.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[0] == "build-info.json"
    assert "lock/requirements.lock" in names and "model/weights/layer.bin" in names
    assert not [n for n in names if ".git" in n or "__pycache__" in n or ".shipyard" in n]
    assert all((m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "") for m in members)
    modes = {m.name: m.mode for m in members}
    assert modes["code/scripts/train.sh"] == 0o755
    assert modes["code/iris_model/serve.py"] == 0o644
    link = next(m for m in members if m.name == "code/serve_link.py")
    assert link.issym() and link.linkname == "iris_model/serve.py"
    with gzip.open(packed.path) as gz:
        gz.read(1)
    assert packed.path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime


def test_unpack_round_trip(tree: Tree, tmp_path: Path) -> None:
    packed = tree.pack(tmp_path / "out", metrics={"accuracy": 0.97})
    dest = tmp_path / "unpacked"
    info = unpack(packed.path, dest)
    assert info == {"name": "iris", "version": "1.0.0", "metrics": {"accuracy": 0.97}}
    assert read_build_info(packed.path) == info
    assert json.loads((dest / "build-info.json").read_text()) == info
    assert (dest / "model" / "model.skops").read_bytes() == (
        tree.model / "model.skops"
    ).read_bytes()
    assert (dest / "code" / "serve_link.py").read_text() == "class Model: ...\n"
    assert (dest / "lock" / "requirements.lock").read_text() == "scikit-learn==1.5.0\n"
    assert os.stat(dest / "code" / "scripts" / "train.sh").st_mode & stat.S_IXUSR
    assert [p.name for p in tmp_path.glob(".unpacked*")] == []  # the temp folder is gone


def test_unpack_refuses_a_folder_that_is_not_empty(tree: Tree, tmp_path: Path) -> None:
    packed = tree.pack(tmp_path / "out")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="exists and is not an empty folder"):
        unpack(packed.path, tmp_path / "dest")
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["keep.txt"]


def test_pack_refuses_a_symlink_leaving_the_tree(tree: Tree, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("token")
    os.symlink(tmp_path / "secret", tree.code / "innocent.txt")
    with pytest.raises(InvalidInput, match=r"innocent\.txt: it is a symlink to .*secret, outside"):
        tree.pack(tmp_path / "out")
    assert not any(p.name.endswith(".tar.gz") for p in (tmp_path / "out").iterdir())
    assert list((tmp_path / "out").iterdir()) == []


def test_pack_refuses_missing_inputs(tree: Tree, tmp_path: Path) -> None:
    for path in tree.model.rglob("*"):
        if path.is_file():
            path.unlink()
    for path in sorted(tree.model.rglob("*"), reverse=True):
        path.rmdir()
    with pytest.raises(InvalidInput, match=r"model folder .* is empty"):
        tree.pack(tmp_path / "out")
    tree.lock.unlink()
    (tree.model / "m.bin").write_bytes(b"1")
    with pytest.raises(InvalidInput, match=r"lock file .* does not exist"):
        tree.pack(tmp_path / "out")


def test_pack_refuses_build_info_that_is_not_json(tree: Tree, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="build-info cannot be written as JSON"):
        tree.pack(tmp_path / "out", started=object())


def check_refused(archive: Path, dest: Path, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        unpack(archive, dest)
    assert str(archive) in str(caught.value)
    assert not dest.exists()
    assert list(dest.parent.glob(f".{dest.name}*")) == []


def test_truncated_archives_are_refused(tree: Tree, tmp_path: Path) -> None:
    data = tree.pack(tmp_path / "out").path.read_bytes()
    for cut in (100, len(data) // 2, len(data) - 4):  # header, middle, gzip trailer only
        broken = tmp_path / f"cut-{cut}.tar.gz"
        broken.write_bytes(data[:cut])
        check_refused(broken, tmp_path / "dest", "it is truncated")


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    random_bytes = tmp_path / "random.bin"
    random_bytes.write_bytes(os.urandom(4096))
    check_refused(random_bytes, tmp_path / "dest", "not a gzip file")
    plain_zip = tmp_path / "model.zip"
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("model/model.skops", b"weights")
    check_refused(plain_zip, tmp_path / "dest", "not a gzip file")
    gzipped_text = tmp_path / "notes.gz"
    gzipped_text.write_bytes(gzip.compress(b"just some text\n" * 100))
    check_refused(gzipped_text, tmp_path / "dest", "not a valid tar archive")
    check_refused(tmp_path / "absent.tar.gz", tmp_path / "dest", "there is no such file")
    with pytest.raises(InvalidInput, match="not a gzip file"):
        read_build_info(plain_zip)


def hand_made(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with gzip.open(path, "wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


GOOD = {"build-info.json": b'{"name": "x", "version": "1"}', "model/m.bin": b"1"}


def test_path_traversal_is_refused(tmp_path: Path) -> None:
    evil = hand_made(tmp_path / "evil.tar.gz", {**GOOD, "model/../../escaped.txt": b"pwned"})
    check_refused(evil, tmp_path / "work" / "dest", "unsafe member")
    assert not (tmp_path / "escaped.txt").exists()
    absolute = hand_made(tmp_path / "abs.tar.gz", {**GOOD, "/tmp/shipyard-abs.txt": b"x"})
    check_refused(absolute, tmp_path / "work" / "dest", "unsafe member")
    linked = hand_made(tmp_path / "link.tar.gz", GOOD, {"model/up": "../../.."})
    check_refused(linked, tmp_path / "work" / "dest", "unsafe member")


def test_an_archive_without_build_info_or_model_is_refused(tmp_path: Path) -> None:
    no_info = hand_made(tmp_path / "a.tar.gz", {"model/m.bin": b"1"})
    check_refused(no_info, tmp_path / "dest", "it has no build-info.json")
    with pytest.raises(InvalidInput, match=r"it has no build-info\.json"):
        read_build_info(no_info)
    no_model = hand_made(tmp_path / "b.tar.gz", {"build-info.json": b"{}", "code/x.py": b""})
    check_refused(no_model, tmp_path / "dest", "it has no model/ folder")
    bad_json = hand_made(tmp_path / "c.tar.gz", {**GOOD, "build-info.json": b"{oops"})
    check_refused(bad_json, tmp_path / "dest", "build-info.json is not valid JSON")
    a_list = hand_made(tmp_path / "d.tar.gz", {**GOOD, "build-info.json": b"[1]"})
    check_refused(a_list, tmp_path / "dest", "must be a JSON object")


@pytest.mark.parametrize("case", list(hostile.cases(Path("/tmp/outside"))))
def test_unpack_refuses_every_way_out_and_creates_nothing_outside(
    tmp_path: Path, case: str
) -> None:
    outside = tmp_path / "outside"
    (outside / "work").mkdir(parents=True)
    (outside / "outside.txt").write_text("a file a hard link may not reach")
    archive = hostile.build(tmp_path / "evil.tar.gz", hostile.cases(outside)[case])
    before = hostile.snapshot(tmp_path)
    with pytest.raises(InvalidInput, match="it holds an unsafe member '") as caught:
        unpack(archive, outside / "work" / "dest")
    assert str(archive) in caught.value.message
    assert hostile.snapshot(tmp_path) == before  # no dest, no temp tree, nothing escaped


def test_a_worktree_git_file_is_not_packed(tree: Tree, tmp_path: Path) -> None:
    for path in sorted((tree.code / ".git").rglob("*"), reverse=True):
        path.unlink()
    (tree.code / ".git").rmdir()
    (tree.code / ".git").write_text("gitdir: /home/me/repo/.git/worktrees/feature\n")
    (tree.code / "iris_model" / ".git").write_text("gitdir: ../.git/modules/sub\n")
    with tarfile.open(tree.pack(tmp_path / "out").path) as tar:
        names = tar.getnames()
    assert "code/iris_model/serve.py" in names
    assert [name for name in names if name.rsplit("/", 1)[-1] == ".git"] == []


def test_unpacked_files_are_private_whatever_the_umask(tree: Tree, tmp_path: Path) -> None:
    packed = tree.pack(tmp_path / "out")
    previous = os.umask(0)
    try:
        unpack(packed.path, tmp_path / "dest")
    finally:
        os.umask(previous)
    modes = {
        path.relative_to(tmp_path / "dest").as_posix(): stat.S_IMODE(path.lstat().st_mode)
        for path in (tmp_path / "dest").rglob("*")
        if not path.is_symlink()
    }
    assert stat.S_IMODE((tmp_path / "dest").stat().st_mode) == 0o700
    assert modes["code/scripts/train.sh"] == 0o700  # the owner keeps the exec bit
    assert modes["model/model.skops"] == modes["build-info.json"] == 0o600
    assert modes["model/weights"] == modes["code"] == 0o700
    assert set(modes.values()) == {0o600, 0o700}
