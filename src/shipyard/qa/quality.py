"""The model quality gate: score a holdout set through the deployed endpoint.

The holdout rows go to the staging service exactly as a client would send them (MLflow's
``dataframe_split`` at ``/invocations``), so the gate measures the model *as served*: the
packaging, the loader and the serving code are part of what is judged, not only the weights.
The same function scores the production endpoint, and :func:`compare_with_production` says
whether the candidate is worse than what it would replace.

scikit-learn is imported inside the functions that need it: it is slow to import and the rest
of the QA package (the load generator) must stay light.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shipyard.config.schema import DropLimit, QualityConfig, Threshold
from shipyard.errors import InvalidInput, StageFailed

__all__ = [
    "ERROR_METRICS",
    "QualityReport",
    "compare_with_production",
    "evaluate_quality",
    "load_rows",
]

# Metrics where lower is better: for them a "drop" in quality is a rise in the number.
ERROR_METRICS = frozenset({"mae", "rmse"})
_BODY_EXCERPT = 300


@dataclass(frozen=True)
class QualityReport:
    metrics: dict[str, float]
    rows: int
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "rows": self.rows,
            "failures": list(self.failures),
            "passed": self.passed,
        }


def evaluate_quality(
    endpoint: str,
    config: QualityConfig,
    repo_dir: Path,
    *,
    batch: int = 256,
    client: httpx.Client | None = None,
) -> QualityReport:
    """Send the holdout set to ``{endpoint}/invocations`` and judge the configured metrics."""
    rows, labels = load_rows(repo_dir / config.data, config.label)
    if batch < 1:
        raise InvalidInput(f"batch must be at least 1, not {batch}")
    owned = client is None
    http = client or httpx.Client(timeout=60.0)
    try:
        predictions = _predict_all(http, endpoint.rstrip("/") + "/invocations", rows, batch)
    finally:
        if owned:
            http.close()
    names = list(dict.fromkeys([*config.metrics, *config.vs_production]))
    metrics = {name: compute_metric(name, labels, predictions) for name in names}
    return QualityReport(
        metrics=metrics, rows=len(rows), failures=check_thresholds(metrics, config.metrics)
    )


# --- the holdout file -----------------------------------------------------------------------


def load_records(csv_path: Path) -> list[dict[str, Any]]:
    """The CSV's rows as records; numbers become floats."""
    if not csv_path.is_file():
        raise InvalidInput(
            f"data file {csv_path} does not exist",
            hint="Commit the CSV, or fix its path in shipyard.yaml.",
        )
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        records = [_record(row, reader.line_num, csv_path) for row in reader]
    if not records:
        raise InvalidInput(f"data file {csv_path.name} has a header but no rows")
    return records


def load_rows(csv_path: Path, label: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """The CSV's rows without the label column, and the labels."""
    records = load_records(csv_path)
    if label not in records[0]:
        raise InvalidInput(
            f"quality data {csv_path.name} has no label column {label!r}; "
            f"its columns are {', '.join(records[0]) or '(none)'}",
            hint="Fix `qa.quality.label` in shipyard.yaml.",
        )
    labels = [record.pop(label) for record in records]
    return records, labels


def _record(row: dict[str | Any, Any], line: int, csv_path: Path) -> dict[str, Any]:
    if None in row:  # csv.DictReader files surplus fields under the key None
        raise InvalidInput(
            f"quality data {csv_path.name} line {line} has more fields than its header"
        )
    return {key: _value(value) for key, value in row.items()}


def _value(text: str | None) -> Any:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


# --- talking to the endpoint ----------------------------------------------------------------


def _predict_all(
    client: httpx.Client, url: str, rows: list[dict[str, Any]], batch: int
) -> list[Any]:
    predictions: list[Any] = []
    for start in range(0, len(rows), batch):
        predictions.extend(_predict_batch(client, url, rows[start : start + batch]))
    return predictions


def _predict_batch(client: httpx.Client, url: str, rows: list[dict[str, Any]]) -> list[Any]:
    columns = list(rows[0])
    payload = {
        "dataframe_split": {"columns": columns, "data": [[row[c] for c in columns] for row in rows]}
    }
    try:
        response = client.post(url, json=payload)
    except httpx.HTTPError as error:
        raise StageFailed(f"could not reach {url}: {error}") from error
    if response.status_code != 200:
        excerpt = response.text[:_BODY_EXCERPT].strip()
        raise StageFailed(f"{url} answered {response.status_code} to the quality data: {excerpt}")
    return _predictions(response, url, len(rows))


def _predictions(response: httpx.Response, url: str, expected: int) -> list[Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise StageFailed(
            f"{url} answered something that is not JSON: {response.text[:_BODY_EXCERPT]}"
        ) from error
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(predictions, list) or len(predictions) != expected:
        raise StageFailed(
            f'{url} answered {str(body)[:_BODY_EXCERPT]} where {{"predictions": [...]}} '
            f"with {expected} items was expected"
        )
    # A model that answers one-element lists per row (a column vector) means the element.
    return [p[0] if isinstance(p, list) and len(p) == 1 else p for p in predictions]


# --- metrics --------------------------------------------------------------------------------


def compute_metric(name: str, labels: Sequence[Any], predictions: Sequence[Any]) -> float:
    """One metric of :data:`shipyard.config.schema.QUALITY_METRICS`."""
    if name in _REGRESSION:
        return _REGRESSION[name](_numbers(name, labels), _numbers(name, predictions))
    if name in _CLASSIFICATION:
        return _CLASSIFICATION[name]([_class(v) for v in labels], [_class(v) for v in predictions])
    raise InvalidInput(f"unknown quality metric {name!r}")


def _numbers(metric: str, values: Sequence[Any]) -> list[float]:
    try:
        return [float(value) for value in values]
    except (TypeError, ValueError) as error:
        raise StageFailed(
            f"{metric} needs numeric labels and predictions; got {error}",
            hint="Use accuracy/f1_macro/precision_macro/recall_macro for a classifier.",
        ) from error


def _class(value: Any) -> str:
    """A class as text, so the label 1.0 read from CSV equals the prediction 1 or "1"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(number)


def _accuracy(y: list[str], p: list[str]) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, p))


def _macro(scorer: str) -> Callable[[list[str], list[str]], float]:
    def score(y: list[str], p: list[str]) -> float:
        from sklearn import metrics

        return float(getattr(metrics, scorer)(y, p, average="macro", zero_division=0))

    return score


def _r2(y: list[float], p: list[float]) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, p))


def _mae(y: list[float], p: list[float]) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, p))


def _rmse(y: list[float], p: list[float]) -> float:
    from sklearn.metrics import mean_squared_error

    return math.sqrt(float(mean_squared_error(y, p)))


_CLASSIFICATION: dict[str, Callable[[list[str], list[str]], float]] = {
    "accuracy": _accuracy,
    "f1_macro": _macro("f1_score"),
    "precision_macro": _macro("precision_score"),
    "recall_macro": _macro("recall_score"),
}
_REGRESSION: dict[str, Callable[[list[float], list[float]], float]] = {
    "r2": _r2,
    "mae": _mae,
    "rmse": _rmse,
}


# --- judging --------------------------------------------------------------------------------


def check_thresholds(
    metrics: Mapping[str, float], thresholds: Mapping[str, Threshold]
) -> list[str]:
    """One sentence per broken bound, e.g. "accuracy 0.81 is below the minimum 0.90"."""
    failures = []
    for name, threshold in thresholds.items():
        value = metrics[name]
        if threshold.min is not None and value < threshold.min:
            shown, bound = _pair(value, threshold.min)
            failures.append(f"{name} {shown} is below the minimum {bound}")
        if threshold.max is not None and value > threshold.max:
            shown, bound = _pair(value, threshold.max)
            failures.append(f"{name} {shown} is above the maximum {bound}")
    return failures


def compare_with_production(
    candidate: QualityReport, production: QualityReport, limits: Mapping[str, DropLimit]
) -> list[str]:
    """One sentence per metric where the candidate lost more than allowed against production."""
    failures = []
    for name, limit in limits.items():
        for side, report in (("candidate", candidate), ("production", production)):
            if name not in report.metrics:
                raise InvalidInput(
                    f"the {side} quality report has no {name}; measure it with the same config"
                )
        failure = _drop(name, candidate.metrics[name], production.metrics[name], limit.max_drop)
        if failure:
            failures.append(failure)
    return failures


def _drop(name: str, new: float, old: float, allowed: float) -> str | None:
    lost = new - old if name in ERROR_METRICS else old - new
    if lost <= allowed + 1e-12:  # float noise must not fail a gate at exactly the limit
        return None
    shown_new, shown_old = _pair(new, old)
    excess = f"by {_fmt(lost)}, more than the allowed {_fmt(allowed)}"
    if name in ERROR_METRICS:
        return (
            f"{name} rose from production's {shown_old} to {shown_new} "
            f"(a higher error is a drop in quality): {excess}"
        )
    return f"{name} dropped from production's {shown_old} to {shown_new}: {excess}"


def _pair(a: float, b: float) -> tuple[str, str]:
    """Both numbers with two decimals, or more when two would make them look equal."""
    for digits in range(2, 7):
        if f"{a:.{digits}f}" != f"{b:.{digits}f}":
            return f"{a:.{digits}f}", f"{b:.{digits}f}"
    return f"{a:g}", f"{b:g}"


def _fmt(value: float) -> str:
    return f"{value:.4g}"
