"""Which globals a pickle would import, found without unpickling it.

Unpickling runs code: a pickle names callables (``GLOBAL``, ``STACK_GLOBAL``, ``INST``) and
calls them (``REDUCE``, ``NEWOBJ``, ``BUILD``). So, as picklescan and modelscan do, the file's
opcodes are walked with :func:`pickletools.genops` and never executed. The walk keeps a symbolic
stack and memo, which is what makes it hard to fool: a ``STACK_GLOBAL`` whose module and name
come from the memo is still read, and one whose operands are not plain strings is reported.

joblib files are pickles with raw array bytes spliced in after each ``NumpyArrayWrapper``
(joblib's unpickler reads them when it meets that object's ``BUILD``). The walk does the same:
it reads the wrapper's shape and dtype from the symbolic state, skips the alignment padding and
the bytes, and walks arrays of Python objects as the nested pickles they are. Compressed joblib
files (zlib, gzip, bz2, xz/lzma) are decompressed as a stream; lz4 needs a package Shipyard does
not carry and is reported as not scanned.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import math
import pickletools
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

__all__ = ["Import", "PickleWalk", "Stream", "Unscannable", "open_stream", "walk_pickles"]

_CHUNK = 1 << 16
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_DTYPE = re.compile(r"^[<>|=]?([biufcmMOSUV?])(\d*)$")


class Unscannable(Exception):
    """The file cannot be walked to the end; the reason is one short phrase."""


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    position: int | None  # byte offset of the opcode, in the (decompressed) stream

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


# --- the byte stream -----------------------------------------------------------------------


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Stream:
    """A forward-only buffered stream with ``tell``, ``peek`` and ``skip`` over any reader."""

    def __init__(self, raw: _Reader) -> None:
        self._raw = raw
        self._buffer = b""
        self._offset = 0  # into _buffer
        self._position = 0  # total bytes consumed

    def _fill(self, size: int) -> None:
        while len(self._buffer) - self._offset < size:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                return
            self._buffer = self._buffer[self._offset :] + chunk
            self._offset = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise Unscannable("a pickle opcode asked for the rest of the file")
        self._fill(size)
        data = self._buffer[self._offset : self._offset + size]
        self._offset += len(data)
        self._position += len(data)
        return data

    def readline(self) -> bytes:
        # Text opcodes (protocol 0) end at a newline; a line is never longer than 1 MiB.
        line = b""
        while not line.endswith(b"\n") and len(line) < (1 << 20):
            byte = self.read(1)
            if not byte:
                break
            line += byte
        return line

    def peek(self) -> bytes:
        self._fill(1)
        return self._buffer[self._offset : self._offset + 1]

    def skip(self, size: int) -> None:
        while size > 0:
            step = self.read(min(size, _CHUNK))
            if not step:
                raise Unscannable("the file ends inside a joblib array")
            size -= len(step)

    def tell(self) -> int:
        return self._position


class _ZlibReader:
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._inflate = zlib.decompressobj()

    def read(self, size: int = -1) -> bytes:
        while True:
            data = self._handle.read(_CHUNK)
            if not data:
                return self._inflate.flush()
            out = self._inflate.decompress(data)
            if out:
                return out


@contextmanager
def open_stream(path: Path) -> Iterator[Stream]:
    """The file's pickle bytes, decompressed as its first bytes say."""
    with path.open("rb") as handle:
        head = handle.read(6)
        handle.seek(0)
        yield Stream(_decompressed(handle, head))


def _decompressed(handle: BinaryIO, head: bytes) -> _Reader:
    # The readers close with `handle`, which the caller's `with` owns.
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=handle)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(handle)
    if head.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00")):
        return lzma.LZMAFile(handle)
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return _ZlibReader(handle)
    if head.startswith(b"\x04\x22\x4d\x18"):
        raise Unscannable("lz4-compressed (save it with zlib, gzip, bz2 or lzma compression)")
    if head.startswith(b"ZF"):
        raise Unscannable("an old joblib format (joblib < 0.10): save it again")
    return handle


# --- the walk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass(eq=False)
class _Object:
    """Something a REDUCE, NEWOBJ, INST or OBJ would have built."""

    factory: Any
    args: Any
    state: Any = None


_MARK = object()
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_EMPTY: dict[str, Callable[[], Any]] = {
    "EMPTY_LIST": list,
    "EMPTY_DICT": dict,
    "EMPTY_TUPLE": tuple,
    "EMPTY_SET": list,
}
_VALUE_OPS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE",
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT",
}  # fmt: skip


@dataclass
class PickleWalk:
    imports: list[Import] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # operands that were not plain strings
    pickles: int = 0


def walk_pickles(stream: Stream) -> PickleWalk:
    """Every import of every pickle in the stream, one after another until its end."""
    walk = PickleWalk()
    while stream.peek():
        try:
            _Machine(stream, walk).run()
        except Unscannable as error:
            if walk.pickles == 0:
                raise
            # pickle.load stops after the first pickle, so what follows is inert unless code
            # reads on; it is still reported, since nothing after it was looked at.
            walk.problems.append(f"bytes after pickle {walk.pickles} were not scanned: {error}")
            break
        walk.pickles += 1
    if walk.pickles == 0:
        raise Unscannable("the file is empty")
    return walk


class _Machine:
    def __init__(self, stream: Stream, walk: PickleWalk) -> None:
        self.stream = stream
        self.walk = walk
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}

    def run(self) -> None:
        try:
            for opcode, arg, position in pickletools.genops(self.stream):  # type: ignore[arg-type]
                self.step(opcode.name, arg, position)
        except Unscannable:
            raise
        except (ValueError, IndexError, KeyError, TypeError) as error:
            where = self.stream.tell()
            raise Unscannable(f"not a valid pickle near byte {where} ({error})") from error

    # Most opcodes move values around; only the few that name or call code matter, but the
    # others must be followed so that STACK_GLOBAL's operands and joblib's state are known.
    def step(self, name: str, arg: Any, position: int | None) -> None:
        stack = self.stack
        if name in _VALUE_OPS:
            stack.append(arg)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name in _EMPTY:
            stack.append(_EMPTY[name]())
        elif name == "MARK":
            stack.append(_MARK)
        elif name in ("GLOBAL", "INST"):
            module, _, attribute = str(arg).partition(" ")
            found = self.record(module, attribute, position)
            stack.append(_Object(found, tuple(self.to_mark())) if name == "INST" else found)
        elif name == "STACK_GLOBAL":
            attribute, module = stack.pop(), stack.pop()
            if not isinstance(module, str) or not isinstance(attribute, str):
                self.walk.problems.append(f"STACK_GLOBAL with computed operands at byte {position}")
                module, attribute = "?", "?"
            stack.append(self.record(module, attribute, position))
        elif name in ("EXT1", "EXT2", "EXT4"):
            stack.append(self.record("copyreg", f"extension_registry[{arg}]", position))
        else:
            self.structure(name, arg)

    def structure(self, name: str, arg: Any) -> None:
        stack = self.stack
        if name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(self.memo[int(arg)])
        elif name in ("TUPLE", "LIST", "FROZENSET"):
            marked = self.to_mark()
            stack.append(marked if name == "LIST" else tuple(marked))  # FROZENSET: no hashing
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = tuple(stack[-count:])
            del stack[-count:]
            stack.append(items)
        elif name == "DICT":
            stack.append(_pairs(self.to_mark(), {}))
        elif name == "APPEND":
            value = stack.pop()
            if isinstance(stack[-1], list):
                stack[-1].append(value)
        elif name in ("APPENDS", "ADDITEMS"):
            appended = self.to_mark()
            if isinstance(stack[-1], list):
                stack[-1].extend(appended)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            _pairs([key, value], stack[-1])
        elif name == "SETITEMS":
            _pairs(self.to_mark(), stack[-1])
        else:
            self.calls(name, arg)

    def calls(self, name: str, arg: Any) -> None:
        stack = self.stack
        if name in ("REDUCE", "NEWOBJ"):
            args = stack.pop()
            stack.append(_Object(stack.pop(), args))
        elif name == "NEWOBJ_EX":
            kwargs, args = stack.pop(), stack.pop()
            stack.append(_Object(stack.pop(), (args, kwargs)))
        elif name == "OBJ":
            items = self.to_mark()
            stack.append(_Object(items[0], tuple(items[1:])))
        elif name == "BUILD":
            state = stack.pop()
            if isinstance(stack[-1], _Object):
                stack[-1].state = state
                if stack[-1].factory == _Global(*_JOBLIB_WRAPPER):
                    self.joblib_array(state)
        elif name == "PERSID":
            stack.append(_Object(_Global("<persistent>", str(arg)), ()))
        elif name == "BINPERSID":
            stack.append(_Object(_Global("<persistent>", "id"), stack.pop()))
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            self.to_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            if name == "NEXT_BUFFER":
                stack.append(None)
        elif name not in ("PROTO", "FRAME", "STOP"):
            raise Unscannable(f"unknown pickle opcode {name}")

    def record(self, module: str, name: str, position: int | None) -> _Global:
        self.walk.imports.append(Import(module, name, position))
        return _Global(module, name)

    def to_mark(self) -> list[Any]:
        stack = self.stack
        for index in range(len(stack) - 1, -1, -1):
            if stack[index] is _MARK:
                items = stack[index + 1 :]
                del stack[index:]
                return items
        raise Unscannable("a pickle opcode has no MARK to pop to")

    def joblib_array(self, state: Any) -> None:
        """Skip (or walk, for object arrays) the bytes joblib wrote after this wrapper."""
        if not isinstance(state, dict):
            raise Unscannable("a joblib array wrapper without its state")
        itemsize, has_objects = _dtype_size(state.get("dtype"))
        if has_objects:
            nested = walk_pickles_once(self.stream)
            self.walk.imports += nested.imports
            self.walk.problems += nested.problems
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self.stream.read(1)
            if not padding:
                raise Unscannable("the file ends inside a joblib array")
            self.stream.skip(padding[0])
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise Unscannable("a joblib array wrapper with an unreadable shape")
        self.stream.skip(math.prod(shape) * itemsize)


def walk_pickles_once(stream: Stream) -> PickleWalk:
    walk = PickleWalk()
    _Machine(stream, walk).run()
    walk.pickles = 1
    return walk


def _pairs(items: list[Any], target: Any) -> Any:
    if isinstance(target, dict):
        for key, value in zip(items[::2], items[1::2], strict=False):
            with contextlib.suppress(TypeError):  # an unhashable key: not what is looked for
                target[key] = value
    return target


def _dtype_size(dtype: Any) -> tuple[int, bool]:
    """(itemsize, holds Python objects) of a pickled numpy dtype: dtype(code, ...) + state."""
    if not isinstance(dtype, _Object) or not isinstance(dtype.args, tuple) or not dtype.args:
        raise Unscannable("a joblib array of an unreadable dtype")
    code, state = dtype.args[0], dtype.state
    match = _DTYPE.match(code) if isinstance(code, str) else None
    if match is None:
        raise Unscannable(f"a joblib array of an unknown dtype {code!r}")
    kind, digits = match.groups()
    flags = state[7] if isinstance(state, tuple) and len(state) > 7 else 0
    has_objects = kind == "O" or (isinstance(flags, int) and bool(flags & 1))
    # The state's elsize is set for flexible types (U, S, V and structured); -1 otherwise.
    elsize = state[5] if isinstance(state, tuple) and len(state) > 5 else -1
    if isinstance(elsize, int) and elsize > 0:
        return elsize, has_objects
    size = int(digits or "1") * (4 if kind == "U" else 1)
    return (1 if kind == "?" else size), has_objects
