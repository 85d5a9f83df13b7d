"""The model quality gate against a real HTTP model server on 127.0.0.1.

The server is a small Starlette app under uvicorn whose ``/<model>/invocations`` answers the
MLflow scoring protocol from a rule on the input, so each test knows the exact metric to expect.
"""

from __future__ import annotations

import math
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.config.schema import DropLimit, QualityConfig
from shipyard.errors import InvalidInput, StageFailed
from shipyard.qa.quality import (
    QualityReport,
    compare_with_production,
    evaluate_quality,
    load_rows,
)

IRIS_HOLDOUT = Path(__file__).parents[2] / "examples" / "iris" / "data" / "holdout.csv"
REQUESTS: Counter[str] = Counter()


def iris_rule(row: dict[str, Any]) -> str:
    if row["petal_length"] < 2.5:
        return "setosa"
    return "versicolor" if row["petal_width"] < 1.75 else "virginica"


# 95.6% right on the iris holdout / a third right / y = 2x exactly / 2x + 1 / x's parity as int
MODELS: dict[str, Any] = {
    "rule": iris_rule,
    "setosa": lambda row: "setosa",
    "double": lambda row: 2 * row["x"],
    "shifted": lambda row: 2 * row["x"] + 1,
    "parity": lambda row: int(row["x"]) % 2,
}


async def invocations(request: Request) -> Response:
    model = request.path_params["model"]
    REQUESTS[model] += 1
    if model == "broken":
        return PlainTextResponse("model exploded: KeyError 'petal_width'", status_code=500)
    split = (await request.json())["dataframe_split"]
    rows = [dict(zip(split["columns"], values, strict=True)) for values in split["data"]]
    predictions = [MODELS[model](row) for row in rows]
    if model == "parity":
        predictions = [[p] for p in predictions]  # a column vector, as some models answer
    return JSONResponse({"predictions": predictions})


async def short(request: Request) -> Response:
    return JSONResponse({"predictions": ["setosa"]})


APP = Starlette(
    routes=[
        Route("/short/invocations", short, methods=["POST"]),
        Route("/{model}/invocations", invocations, methods=["POST"]),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(APP, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not uv.started:
            assert time.monotonic() < deadline, "the test model server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def iris_repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    shutil.copy(IRIS_HOLDOUT, tmp_path / "data" / "holdout.csv")
    return tmp_path


@pytest.fixture
def numbers_repo(tmp_path: Path) -> Path:
    # y = 2x +- 0.5: a model answering 2x is off by exactly 0.5 on every row.
    lines = ["x,y,parity"] + [
        f"{x},{2 * x + (0.5 if x % 2 else -0.5)},{x % 2}" for x in range(1, 21)
    ]
    (tmp_path / "numbers.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def iris_config(**metrics: Any) -> QualityConfig:
    return QualityConfig.model_validate(
        {"data": "data/holdout.csv", "label": "species", "metrics": metrics}
    )


def test_a_good_classifier_passes_in_batches(server: str, iris_repo: Path) -> None:
    config = iris_config(
        accuracy={"min": 0.9}, f1_macro={"min": 0.9}, recall_macro={}, precision_macro={}
    )
    before = REQUESTS["rule"]
    report = evaluate_quality(f"{server}/rule/", config, iris_repo, batch=10)
    assert REQUESTS["rule"] - before == 5  # 45 rows in batches of 10
    assert report.rows == 45
    assert report.metrics["accuracy"] == pytest.approx(43 / 45)
    assert set(report.metrics) == {"accuracy", "f1_macro", "recall_macro", "precision_macro"}
    assert 0.9 < report.metrics["f1_macro"] < 1.0
    assert report.passed and report.failures == []
    assert report.to_dict() == {
        "metrics": report.metrics,
        "rows": 45,
        "failures": [],
        "passed": True,
    }


def test_a_bad_classifier_fails_with_sentences(server: str, iris_repo: Path) -> None:
    config = iris_config(accuracy={"min": 0.9}, recall_macro={"max": 0.2})
    report = evaluate_quality(f"{server}/setosa", config, iris_repo)
    assert not report.passed
    assert report.failures == [
        "accuracy 0.33 is below the minimum 0.90",
        "recall_macro 0.33 is above the maximum 0.20",
    ]


def test_close_values_are_shown_with_enough_digits(server: str, iris_repo: Path) -> None:
    report = evaluate_quality(f"{server}/rule", iris_config(accuracy={"min": 0.9559}), iris_repo)
    assert report.failures == ["accuracy 0.9556 is below the minimum 0.9559"]


def test_regression_metrics(server: str, numbers_repo: Path) -> None:
    config = QualityConfig.model_validate(
        {
            "data": "numbers.csv",
            "label": "y",
            "metrics": {"mae": {"max": 0.4}, "rmse": {"max": 0.6}, "r2": {"min": 0.99}},
        }
    )
    with httpx.Client(timeout=10) as client:  # a caller's own client is used and left open
        report = evaluate_quality(f"{server}/double", config, numbers_repo, client=client)
        assert not client.is_closed
    assert report.metrics["mae"] == pytest.approx(0.5)
    assert report.metrics["rmse"] == pytest.approx(0.5)
    ys = [2 * x + (0.5 if x % 2 else -0.5) for x in range(1, 21)]
    mean = sum(ys) / len(ys)
    assert report.metrics["r2"] == pytest.approx(1 - 20 * 0.25 / sum((y - mean) ** 2 for y in ys))
    assert report.failures == ["mae 0.50 is above the maximum 0.40"]


def test_numeric_classes_match_across_csv_floats_and_json_ints(
    server: str, numbers_repo: Path
) -> None:
    config = QualityConfig.model_validate(
        {"data": "numbers.csv", "label": "parity", "metrics": {"accuracy": {"min": 1}}}
    )
    report = evaluate_quality(f"{server}/parity", config, numbers_repo)
    assert report.metrics == {"accuracy": 1.0}
    assert report.passed


def test_compare_with_production(server: str, iris_repo: Path, numbers_repo: Path) -> None:
    config = iris_config(accuracy={})
    good = evaluate_quality(f"{server}/rule", config, iris_repo)
    bad = evaluate_quality(f"{server}/setosa", config, iris_repo)
    limit = {"accuracy": DropLimit(max_drop=0.01)}
    assert compare_with_production(good, bad, limit) == []  # better than production
    assert compare_with_production(good, good, limit) == []  # the same, exactly at the limit
    assert compare_with_production(bad, good, limit) == [
        "accuracy dropped from production's 0.96 to 0.33: by 0.6222, more than the allowed 0.01"
    ]

    errors = QualityConfig.model_validate(
        {"data": "numbers.csv", "label": "y", "vs_production": {"mae": {"max_drop": 0.1}}}
    )
    exact = evaluate_quality(f"{server}/double", errors, numbers_repo)
    shifted = evaluate_quality(f"{server}/shifted", errors, numbers_repo)
    assert exact.metrics == {"mae": pytest.approx(0.5)}  # vs_production metrics are measured too
    assert shifted.metrics["mae"] == pytest.approx(1.0)
    assert compare_with_production(exact, shifted, {"mae": DropLimit(max_drop=0.1)}) == []
    [sentence] = compare_with_production(shifted, exact, {"mae": DropLimit(max_drop=0.1)})
    assert sentence == (
        "mae rose from production's 0.50 to 1.00 (a higher error is a drop in quality): "
        "by 0.5, more than the allowed 0.1"
    )
    with pytest.raises(InvalidInput, match="production quality report has no rmse"):
        compare_with_production(
            QualityReport({"rmse": 1.0}, 20), QualityReport({}, 20), {"rmse": DropLimit(max_drop=0)}
        )


def test_server_errors_and_bad_answers_fail_the_stage(server: str, iris_repo: Path) -> None:
    config = iris_config(accuracy={"min": 0.9})
    with pytest.raises(StageFailed, match=r"answered 500 .*model exploded: KeyError 'petal_width'"):
        evaluate_quality(f"{server}/broken", config, iris_repo)
    with pytest.raises(StageFailed, match=r"with 45 items was expected"):
        evaluate_quality(f"{server}/short", config, iris_repo)
    with pytest.raises(StageFailed, match=r"answered 404"):
        evaluate_quality(f"{server}/nothing/here", config, iris_repo)


def test_unreachable_endpoint(iris_repo: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(StageFailed, match=r"could not reach http://127\.0\.0\.1"):
            evaluate_quality(f"http://127.0.0.1:{port}", iris_config(accuracy={}), iris_repo)


def test_regression_metric_on_a_classifier(server: str, iris_repo: Path) -> None:
    with pytest.raises(StageFailed, match="mae needs numeric labels and predictions"):
        evaluate_quality(f"{server}/rule", iris_config(mae={"max": 1}), iris_repo)


def test_load_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1.5,red,cat\n2,,3\n")
    rows, labels = load_rows(path, "label")
    assert rows == [{"a": 1.5, "b": "red"}, {"a": 2.0, "b": None}]
    assert labels == ["cat", 3.0]
    with pytest.raises(
        InvalidInput, match="no label column 'species'; its columns are a, b, label"
    ):
        load_rows(path, "species")
    with pytest.raises(InvalidInput, match="does not exist"):
        load_rows(tmp_path / "missing.csv", "label")
    path.write_text("a,label\n")
    with pytest.raises(InvalidInput, match="no rows"):
        load_rows(path, "label")
    path.write_text("a,label\n1,2,3\n")
    with pytest.raises(InvalidInput, match="line 2 has more fields than its header"):
        load_rows(path, "label")
    assert not math.isnan(load_rows(IRIS_HOLDOUT, "species")[0][0]["sepal_length"])
