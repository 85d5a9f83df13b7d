"""Model files: real pickles, joblib files and skops files, safe and malicious, walked unexecuted."""

from __future__ import annotations

import collections
import os
import pickle
import pickletools
import sys
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gitrepos import git
from shipyard.analysis.interface import Finding, Target
from shipyard.analysis.models import ModelScanner, classify, scan_pickle_file
from shipyard.config.schema import ModelsConfig

COMPRESSIONS: list[Any] = [0, 3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)]


class Exploit:
    """What a malicious model does: ``pickle.load`` would run a shell command."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo owned > /tmp/shipyard-owned",))


@pytest.fixture(scope="module")
def model() -> Any:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.4], [0.9, 0.2]] * 5)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, [0, 1, 0, 1] * 5)


def objects(model: Any) -> dict[str, Any]:
    """A model with arrays of every kind joblib writes differently."""
    return {
        "model": model,
        "objects": np.array(["a", 1, None], dtype=object),  # a nested pickle in joblib
        "fortran": np.ones((3, 2), np.float32, order="F"),
        "empty": np.zeros(0),
        "structured": np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
        "text": np.array(["xx", "yyy"]),
        "ordered": collections.OrderedDict(a=1),
    }


def ids(findings: list[Finding]) -> list[tuple[str, str]]:
    return sorted((f.id, str(f.details.get("global", f.title))) for f in findings)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_scikit_learn_model_pickled_with_any_protocol_is_clean(
    model: Any, protocol: int, tmp_path: Path
) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(objects(model), protocol=protocol))
    assert scan_pickle_file(path, "model.pkl") == []


@pytest.mark.parametrize("compress", COMPRESSIONS, ids=str)
def test_joblib_files_compressed_or_not_are_walked_to_the_end(
    model: Any, compress: Any, tmp_path: Path
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(objects(model), path, compress=compress)
    assert scan_pickle_file(path, "model.joblib") == []
    # An exploit after the arrays is still found: the raw array bytes were skipped exactly.
    joblib.dump([objects(model), Exploit()], path, compress=compress)
    [finding] = scan_pickle_file(path, "model.joblib")
    assert finding.id == "model-unsafe-import" and finding.severity == "critical"
    assert finding.details["global"] in ("posix.system", "nt.system")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_an_exploit_is_found_with_any_protocol(protocol: int, tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2], "x": Exploit()}, protocol=protocol))
    [finding] = scan_pickle_file(path, "model/model.pkl")
    assert finding.title == f"loading it imports {os.system.__module__}.system (unsafe)"
    assert finding.location == finding.file == "model/model.pkl"
    assert finding.aliases == ("model-unsafe-import:model/model.pkl",)
    assert "skops" in finding.fix


def test_an_exploit_inside_an_object_array_of_a_joblib_file(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"a": np.arange(10), "b": np.array([Exploit()], dtype=object)}, path)
    assert [f.id for f in scan_pickle_file(path, "m")] == ["model-unsafe-import"]


def assemble(*parts: bytes) -> bytes:
    return b"\x80\x04" + b"".join(parts) + b"."


def unicode(text: str) -> bytes:
    return b"\x8c" + bytes([len(text)]) + text.encode()


def test_a_global_hidden_behind_the_memo_is_still_read(tmp_path: Path) -> None:
    # 'os' and 'system' are memoised, popped, and fetched back for STACK_GLOBAL.
    data = assemble(
        unicode("os"), b"\x94", b"0", unicode("system"), b"\x94", b"0",
        b"h\x00", b"h\x01", b"\x93", unicode("id"), b"\x85", b"R",
    )  # fmt: skip
    opcodes = [op.name for op, _, _ in pickletools.genops(data)]  # valid, as Python reads it
    assert opcodes[-3:] == ["TUPLE1", "REDUCE", "STOP"]
    path = tmp_path / "sneaky.pkl"
    path.write_bytes(data)
    assert ids(scan_pickle_file(path, "sneaky.pkl")) == [("model-unsafe-import", "os.system")]


def test_a_global_with_computed_operands_is_suspicious(tmp_path: Path) -> None:
    # STACK_GLOBAL's module comes from a call, so no walk can know it: reported as such.
    data = assemble(
        b"cbuiltins\nstr\n", unicode("os"), b"\x85", b"R", unicode("system"), b"\x93", b")R"
    )
    path = tmp_path / "computed.pkl"
    path.write_bytes(data)
    found = scan_pickle_file(path, "computed.pkl")
    assert sorted(f.id for f in found) == ["model-suspicious-pickle", "model-unsafe-import"]
    assert any("STACK_GLOBAL with computed operands" in f.title for f in found)


def test_unknown_imports_and_the_allow_list(tmp_path: Path) -> None:
    data = assemble(b"cmycompany.models\nBooster\n", b")R", b"cos\nsystem\n", b"0")
    path = tmp_path / "custom.pkl"
    path.write_bytes(data)
    assert ids(scan_pickle_file(path, "custom.pkl")) == [
        ("model-unknown-import", "mycompany.models.Booster"),
        ("model-unsafe-import", "os.system"),
    ]
    unknown = scan_pickle_file(path, "custom.pkl")[0]
    assert unknown.severity == "high" and "allow_imports" in unknown.fix
    # allow_imports accepts unknown globals, never unsafe ones.
    allowed = scan_pickle_file(path, "custom.pkl", ["mycompany.*", "os.system", "os.*"])
    assert ids(allowed) == [("model-unsafe-import", "os.system")]


@pytest.mark.parametrize(
    ("dotted", "verdict"),
    [
        ("sklearn.linear_model._logistic.LogisticRegression", "safe"),
        ("numpy._core.multiarray._reconstruct", "safe"),
        ("collections.OrderedDict", "safe"),
        ("__builtin__.set", "safe"),
        ("builtins.eval", "unsafe"),
        ("builtins.getattr", "unsafe"),
        ("subprocess.Popen", "unsafe"),
        ("os.path.join", "unsafe"),
        ("operator.attrgetter", "unsafe"),
        ("numpy.load", "unsafe"),
        ("numpy.testing._private.utils.runstring", "unsafe"),
        ("pandas.core.frame.DataFrame", "unknown"),
        ("xgboost.core.Booster", "unknown"),
    ],
)
def test_classification(dotted: str, verdict: str) -> None:
    assert classify(dotted) == verdict


def test_files_that_cannot_be_scanned(tmp_path: Path) -> None:
    cases = {
        "lz4.joblib": (b"\x04\x22\x4d\x18" + b"\0" * 20, "lz4-compressed"),
        "truncated.pkl": (pickle.dumps(list(range(50)), protocol=4)[:-20], "not a valid pickle"),
        "text.pkl": (b"just some text\n", "not a valid pickle"),
        "empty.pkl": (b"", "the file is empty"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        [finding] = scan_pickle_file(tmp_path / name, name)
        assert finding.id == "model-unscanned" and finding.severity == "high"
        assert reason in finding.title, name


def test_bytes_after_the_pickle_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "trailing.pkl"
    path.write_bytes(pickle.dumps([1, 2]) + b"\xffjunk")
    [finding] = scan_pickle_file(path, "trailing.pkl")
    assert finding.id == "model-suspicious-pickle"
    assert finding.title.startswith("bytes after pickle 1 were not scanned")
    # Two pickles back to back are both read.
    path.write_bytes(pickle.dumps([1]) + pickle.dumps(Exploit()))
    assert [f.id for f in scan_pickle_file(path, "two.pkl")] == ["model-unsafe-import"]


def test_a_torch_style_zip_is_scanned_member_by_member(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(collections.OrderedDict(w=1)))
        archive.writestr("archive/extra.pkl", pickle.dumps(Exploit()))
        archive.writestr("archive/data/0", b"\0" * 16)
    [finding] = scan_pickle_file(path, "model.pt")
    assert finding.location == "model.pt:archive/extra.pkl"


def test_skops_files_are_checked_by_skops_in_the_environment(model: Any, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    sio.dump(model, model_dir / "clean.skops")
    sio.dump({"counts": collections.Counter("abc")}, model_dir / "counter.skops")
    (model_dir / "broken.skops").write_bytes(b"not a zip")
    (tmp_path / "repo").mkdir()
    target = Target(tmp_path / "repo", python=Path(sys.executable), model_dir=model_dir)
    result = ModelScanner(ModelsConfig()).scan(target)
    assert sorted((f.id, f.location) for f in result.findings) == [
        ("model-unscanned", "model/broken.skops"),
        ("model-untrusted-type", "model/counter.skops"),
    ]
    untrusted = next(f for f in result.findings if f.id == "model-untrusted-type")
    assert untrusted.title == "skops file holds the untrusted type collections.Counter"
    allowed = ModelScanner(ModelsConfig(allow_imports=["collections.Counter"])).scan(target)
    assert [f.id for f in allowed.findings] == ["model-unscanned"]


def test_the_scanner_finds_model_files_by_suffix_and_by_content(model: Any, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "weights").write_bytes(pickle.dumps(Exploit(), protocol=4))  # no suffix
    (model_dir / "metrics.json").write_text("{}")
    repo = tmp_path / "repo"
    (repo / "legacy").mkdir(parents=True)
    (repo / "legacy" / "old.pkl").write_bytes(pickle.dumps(Exploit()))
    (repo / "train.py").write_text("print(1)\n")
    (repo / "untracked.pkl").write_bytes(pickle.dumps(Exploit()))
    git(repo, "init", "-q")
    git(repo, "add", "legacy", "train.py")
    result = ModelScanner(ModelsConfig()).scan(Target(repo, model_dir=model_dir))
    assert sorted(f.location for f in result.findings) == ["legacy/old.pkl", "model/weights"]
    assert result.scope == "3 model files (model/model.joblib, model/weights, legacy/old.pkl)"
    (tmp_path / "bare").mkdir()
    bare = ModelScanner(ModelsConfig()).scan(Target(tmp_path / "bare"))
    assert (bare.findings, bare.scope) == ([], "0 model files")
