"""Model files that run code when they are loaded: pickle and joblib, and skops' untrusted types.

Every file of the trained model, and every tracked file of the tree with a model suffix, is
looked at. A pickle or joblib file (by suffix, or by a pickle's first bytes) is walked by
``pickles.py``; each global it imports is then sorted three ways:

- safe: on the built-in list below (containers, numpy arrays and dtypes, scikit-learn and
  scipy.sparse classes, joblib's array wrapper, a few PyTorch tensor rebuilders), or on
  ``analyze.models.allow_imports``;
- unsafe (``model-unsafe-import``, critical): something that runs commands, reads or writes
  files, opens sockets, imports or evaluates code, or builds call chains (``os``,
  ``subprocess``, ``builtins.eval``, ``operator.attrgetter``...). ``allow_imports`` cannot make
  these safe; only an allow entry with a reason and an expiry can accept one;
- unknown (``model-unknown-import``, high): anything else, until someone says it is safe.

A skops file is checked with skops itself (``get_untrusted_types``), run by the build
environment's interpreter since skops is the project's dependency, not Shipyard's; types not on
``allow_imports`` are ``model-untrusted-type`` (high). A file that cannot be read to its end is
``model-unscanned`` (high): a model nobody could check is not a model to ship.
"""

from __future__ import annotations

import fnmatch
import json
import lzma
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from shipyard.analysis.interface import Finding, ScanResult, Target
from shipyard.analysis.pickles import (
    Import,
    PickleWalk,
    Stream,
    Unscannable,
    open_stream,
    walk_pickles,
)
from shipyard.analysis.secrets import tracked_files
from shipyard.config.schema import ModelsConfig

__all__ = ["SAFE_GLOBALS", "ModelScanner", "classify", "scan_pickle_file"]

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".jbl", ".sav", ".pck", ".dill"}
TORCH_SUFFIXES = {".pt", ".pth", ".ckpt"}
SKOPS_SUFFIX = ".skops"
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")

_NUMPY_SCALARS = [
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128", "str_", "bytes_", "object_",
    "intc", "uintc", "longlong", "ulonglong", "longdouble", "clongdouble", "datetime64",
    "timedelta64", "ndarray", "dtype",
]  # fmt: skip
_TORCH = [
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "torch.Size",
    "torch.device", "torch.dtype", "torch.FloatStorage", "torch.DoubleStorage",
    "torch.HalfStorage", "torch.BFloat16Storage", "torch.LongStorage", "torch.IntStorage",
    "torch.BoolStorage", "torch.ByteStorage", "torch.float32", "torch.float16", "torch.int64",
]  # fmt: skip
_BUILTINS = [
    "set", "frozenset", "dict", "list", "tuple", "bytes", "bytearray", "complex", "slice",
    "range", "object", "int", "float", "str", "bool",
]  # fmt: skip
SAFE_GLOBALS = (
    # Protocols 0 to 2 spell the builtins module the Python 2 way.
    *(f"{module}.{name}" for module in ("builtins", "__builtin__") for name in _BUILTINS),
    "collections.OrderedDict", "collections.defaultdict", "collections.deque",
    "collections.Counter", "copyreg._reconstructor", "copy_reg._reconstructor", "_codecs.encode",
    "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
    "datetime.timezone", "decimal.Decimal", "fractions.Fraction",
    *(f"numpy.{name}" for name in _NUMPY_SCALARS),
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
    "numpy.ma.core._mareconstruct", "numpy.random._pickle.*",
    "joblib.numpy_pickle.NumpyArrayWrapper", "sklearn.*", "scipy.sparse.*", *_TORCH,
)  # fmt: skip
# Modules whose callables run commands, touch files or the network, or load more code.
_UNSAFE_MODULES = (
    "os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "pty", "runpy", "importlib",
    "pickle", "_pickle", "dill", "marshal", "webbrowser", "ctypes", "code", "codeop",
    "commands", "platform", "multiprocessing", "signal", "asyncio", "http", "httplib",
    "urllib", "urllib2", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "telnetlib",
    "bdb", "pdb", "timeit", "tempfile", "glob", "pathlib", "io", "zipimport", "pkgutil",
    "numpy.testing", "numpy.f2py", "numpy.distutils", "torch.hub", "joblib.load",
)  # fmt: skip
_UNSAFE_GLOBALS = (
    *(f"builtins.{name}" for name in ("eval", "exec", "compile", "__import__", "open")),
    *(f"builtins.{name}" for name in ("getattr", "setattr", "delattr", "globals", "locals")),
    *(f"builtins.{name}" for name in ("vars", "input", "breakpoint", "help", "exit")),
    *(f"__builtin__.{name}" for name in ("eval", "exec", "compile", "__import__", "open")),
    "__builtin__.getattr", "operator.attrgetter", "operator.methodcaller",
    "operator.itemgetter", "functools.partial", "functools.reduce", "numpy.load",
    "numpy.fromfile", "numpy.loadtxt", "pandas.read_pickle", "torch.load",
)  # fmt: skip


def _matches(dotted: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith(".*"):
            if dotted.startswith(pattern[:-1]):
                return True
        elif dotted == pattern or fnmatch.fnmatchcase(dotted, pattern):
            return True
    return False


def classify(dotted: str, allowed: Sequence[str] = ()) -> str:
    """``unsafe``, ``safe`` or ``unknown``; an unsafe global stays unsafe whatever is allowed."""
    module = dotted.rsplit(".", 1)[0]
    unsafe_module = any(module == m or module.startswith(m + ".") for m in _UNSAFE_MODULES)
    if unsafe_module or dotted in _UNSAFE_GLOBALS or dotted.startswith("?"):
        return "unsafe"
    return "safe" if _matches(dotted, (*SAFE_GLOBALS, *allowed)) else "unknown"


# --- one pickle file -----------------------------------------------------------------------


def scan_pickle_file(path: Path, shown: str, allowed: Sequence[str] = ()) -> list[Finding]:
    """The findings of one pickle or joblib file (``shown`` is its name in the report)."""
    try:
        if zipfile.is_zipfile(path):
            return _scan_zip(path, shown, allowed)
        with open_stream(path) as stream:
            walk = walk_pickles(stream)
    except Unscannable as error:
        return [_unscanned(shown, str(error))]
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as error:
        return [_unscanned(shown, f"{type(error).__name__}: {error}")]
    return _judge_walk(walk, shown, allowed)


def _scan_zip(path: Path, shown: str, allowed: Sequence[str]) -> list[Finding]:
    # PyTorch's format: a zip whose data.pkl holds the structure, tensors as persistent ids.
    found: list[Finding] = []
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if m.endswith(".pkl")]
        if not members:
            return [_unscanned(shown, "a zip file without a .pkl member")]
        for member in members:
            with archive.open(member) as handle:
                try:
                    walk = walk_pickles(Stream(handle))
                except Unscannable as error:
                    found.append(_unscanned(f"{shown}:{member}", str(error)))
                    continue
            found += _judge_walk(walk, f"{shown}:{member}", allowed)
    return found


def _judge_walk(walk: PickleWalk, shown: str, allowed: Sequence[str]) -> list[Finding]:
    found: dict[str, Finding] = {}
    for item in walk.imports:
        verdict = classify(item.dotted, allowed)
        if verdict != "safe" and item.dotted not in found:
            found[item.dotted] = _import_finding(item, verdict, shown)
    problems = [_problem(shown, text) for text in walk.problems]
    return [*found.values(), *problems]


def _import_finding(item: Import, verdict: str, shown: str) -> Finding:
    rule = f"model-{verdict}-import"
    fix = (
        "do not load this file; save the model with skops or ONNX instead of pickle"
        if verdict == "unsafe"
        else f"if {item.dotted} is safe to load, add it to `analyze.models.allow_imports`"
    )
    return Finding(
        kind="model",
        id=rule,
        severity="critical" if verdict == "unsafe" else "high",
        title=f"loading it imports {item.dotted} ({verdict})",
        location=shown,
        aliases=(f"{rule}:{shown}",),
        fix=fix,
        file=shown,
        details={"global": item.dotted, "byte": item.position},
    )


def _problem(shown: str, text: str) -> Finding:
    return Finding(
        kind="model",
        id="model-suspicious-pickle",
        severity="high",
        title=text,
        location=shown,
        aliases=(f"model-suspicious-pickle:{shown}",),
        fix="do not load this file; save the model again with skops",
        file=shown,
    )


def _unscanned(shown: str, reason: str) -> Finding:
    return Finding(
        kind="model",
        id="model-unscanned",
        severity="high",
        title=f"could not be scanned: {reason}",
        location=shown,
        aliases=(f"model-unscanned:{shown}",),
        fix="save it uncompressed or with zlib/gzip/bz2/lzma compression, or with skops",
        file=shown,
    )


# --- skops ---------------------------------------------------------------------------------

# Run by the build environment's interpreter, where the project's skops is installed.
_SKOPS_CHECK = """
import json, sys
try:
    from skops.io import get_untrusted_types
except Exception as error:
    json.dump({"error": "skops is not installed (%s)" % type(error).__name__}, sys.stdout)
    raise SystemExit(0)
files = {}
for name in sys.argv[1:]:
    try:
        files[name] = {"untrusted": sorted(get_untrusted_types(file=name))}
    except Exception as error:
        files[name] = {"error": "%s: %s" % (type(error).__name__, error)}
json.dump({"files": files}, sys.stdout)
"""


def _skops_untrusted(pythons: Sequence[Path], files: Sequence[Path]) -> dict[str, Any]:
    """``{file: {"untrusted": [...]}}`` or ``{file: {"error": ...}}``, from the first Python
    that has skops."""
    error = "no Python environment to run skops in"
    for python in pythons:
        answer = _run_skops(python, files)
        if "files" in answer:
            return dict(answer["files"])
        error = str(answer["error"])
    return {str(f): {"error": error} for f in files}


def _run_skops(python: Path, files: Sequence[Path]) -> dict[str, Any]:
    command = [str(python), "-I", "-c", _SKOPS_CHECK, *map(str, files)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as failure:
        return {"error": f"skops check failed: {failure}"}
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return {"error": f"skops check failed: {done.stderr.strip()[-300:] or '(no output)'}"}
    return answer


def _skops_findings(result: dict[str, Any], shown: str, allowed: Sequence[str]) -> list[Finding]:
    if "error" in result:
        return [_unscanned(shown, str(result["error"]))]
    return [
        Finding(
            kind="model",
            id="model-untrusted-type",
            severity="high",
            title=f"skops file holds the untrusted type {name}",
            location=shown,
            aliases=(f"model-untrusted-type:{shown}",),
            fix=f"if {name} is safe to load, add it to `analyze.models.allow_imports`",
            file=shown,
            details={"type": name},
        )
        for name in result.get("untrusted", [])
        if not _matches(name, allowed)
    ]


# --- which files ---------------------------------------------------------------------------


def _kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == SKOPS_SUFFIX:
        return "skops"
    if suffix in PICKLE_SUFFIXES or suffix in TORCH_SUFFIXES:
        return "pickle"
    try:
        with path.open("rb") as handle:
            head = handle.read(2)
    except OSError:
        return None
    return "pickle" if head in _PICKLE_MAGIC else None


def _model_files(target: Target) -> list[tuple[Path, str, str]]:
    """(path, name shown, kind) of the model's files and the tree's model files."""
    found: list[tuple[Path, str, str]] = []
    if target.model_dir is not None and target.model_dir.is_dir():
        for path in sorted(p for p in target.model_dir.rglob("*") if p.is_file()):
            kind = _kind_of(path)
            if kind:
                found.append((path, f"model/{path.relative_to(target.model_dir).as_posix()}", kind))
    seen = {path.resolve() for path, _, _ in found}  # a model folder inside the tree: once
    suffixes = PICKLE_SUFFIXES | TORCH_SUFFIXES | {SKOPS_SUFFIX}
    for relative in tracked_files(target.root):
        path = target.root / relative
        if path.suffix.lower() in suffixes and path.is_file() and path.resolve() not in seen:
            found.append((path, relative, _kind_of(path) or ""))
    return found


class ModelScanner:
    kind = "model"

    def __init__(self, config: ModelsConfig) -> None:
        self.config = config

    def scan(self, target: Target) -> ScanResult:
        files = _model_files(target)
        allowed = self.config.allow_imports
        findings: list[Finding] = []
        for path, shown, kind in files:
            if kind == "pickle":
                findings += scan_pickle_file(path, shown, allowed)
        skops = [(path, shown) for path, shown, kind in files if kind == "skops"]
        if skops:
            pythons = [p for p in (target.python, Path(sys.executable)) if p is not None]
            results = _skops_untrusted(pythons, [path for path, _ in skops])
            for path, shown in skops:
                findings += _skops_findings(results.get(str(path), {}), shown, allowed)
        names = f" ({', '.join(shown for _, shown, _ in files)})" if files else ""
        return ScanResult(self.kind, findings, f"{len(files)} model files{names}")
