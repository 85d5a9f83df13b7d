"""The ``shipyard.yaml`` format, as pydantic models.

The JSON Schema that ``shipyard schema`` prints and the README's reference table are generated
from these classes, so they are the single source of truth for the file's format: every field
carries a description. Durations are written as ``20s``, ``5m``, ``1h`` or a number of seconds.

Validation messages here are written as "expected ..." phrases because the loader
(``loader.py``) prefixes them with ``file:line: field.path:``.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Callable
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

# Segments of lower-case letters and digits joined by one of . _ - (so never "..");
# at most 63 characters, checked by max_length where the pattern is used.
NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
PYTHON_PATTERN = r"^3\.\d+$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def parse_duration(value: Any) -> float:
    """``"20s"`` -> 20.0; ``"5m"`` -> 300.0; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 20s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("expected a duration such as 20s, 5m or 1h")
    if seconds < 0:
        raise ValueError(
            "expected a duration such as 20s, 5m or 1h (a duration cannot be negative)"
        )
    return seconds


# The schema must accept what the validator accepts: "20s" as well as 20.
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": _DURATION.pattern},
    ],
    "examples": ["20s", "5m", "1h", 30],
}

Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[str], str]:
    """A key check for free-form mappings, so a typo in a key is an error, not ignored."""

    def check(key: str) -> str:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {what} {key!r}; expected one of {', '.join(allowed)}{guess}")
        return key

    return check


def _enum(allowed: tuple[str, ...]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(allowed)})


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class BuildConfig(Strict):
    train: str = Field(
        min_length=1,
        description="Command that trains the model and writes it to $SHIPYARD_MODEL_DIR.",
    )
    timeout: Duration = Field(default=1800, description="Stage timeout.")


class LoaderConfig(Strict):
    format: Literal["skops"] = Field(description="Built-in loader.")
    path: str = Field(min_length=1, description="Model file, relative to the model directory.")


def _serve_kind(value: Any) -> str:
    # A mapping is a built-in loader; anything else is judged as a `module:Class` string, so
    # a bad value gets one error from the branch the user meant, not one per branch.
    return "loader" if isinstance(value, dict | LoaderConfig) else "class"


ServeSpec = Annotated[
    Annotated[str, Tag("class"), WithJsonSchema({"type": "string", "pattern": _CLASS_PATH.pattern})]
    | Annotated[LoaderConfig, Tag("loader")],
    Discriminator(_serve_kind),
]


class ModelConfig(Strict):
    serve: ServeSpec = Field(
        description="`module:Class` constructed with the model directory, or a built-in loader."
    )
    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=63,
        description="Model name in the serving API (default: the project name).",
    )

    @field_validator("serve")
    @classmethod
    def _class_path(cls, value: str | LoaderConfig) -> str | LoaderConfig:
        if isinstance(value, str) and not _CLASS_PATH.match(value):
            raise ValueError("expected `module.path:ClassName`, e.g. iris_model.serve:Model")
        return value


class TestConfig(Strict):
    __test__ = False  # not a pytest test class
    run: str = Field(
        min_length=1, description="Unit test command; pytest gets --junitxml automatically."
    )
    timeout: Duration = Field(default=900, description="Stage timeout.")


def _date_text(value: Any) -> Any:
    # YAML reads an unquoted 2027-01-31 as a date; the field keeps the ISO text.
    return value.isoformat() if isinstance(value, datetime.date) else value


class AllowEntry(Strict):
    id: str = Field(
        min_length=1,
        description="Finding id (bandit test id such as B105, or an advisory id).",
    )
    reason: str = Field(min_length=1, description="Why the finding is accepted.")
    until: Annotated[str | None, BeforeValidator(_date_text)] = Field(
        default=None, description="Expiry date, YYYY-MM-DD; after it the finding fails again."
    )

    @field_validator("until")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a date as YYYY-MM-DD, e.g. 2027-01-31") from None
        return value


class AnalyzeConfig(Strict):
    fail_on: Literal["low", "medium", "high"] = Field(
        default="high", description="Lowest severity that fails the stage."
    )
    paths: list[str] = Field(default_factory=lambda: ["."], description="Project paths to scan.")
    exclude: list[str] = Field(
        default_factory=lambda: ["tests", ".venv"], description="Paths not scanned."
    )
    allow: list[AllowEntry] = Field(
        default_factory=list, description="Accepted findings, each with a reason."
    )
    timeout: Duration = Field(default=600, description="Stage timeout.")


class EnvironmentConfig(Strict):
    database: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the environment's database; "
        "`{state}` is the environment's state folder.",
    )
    migrations: str | None = Field(
        default=None, description="Folder of `*.sql` files applied in name order."
    )
    config: str | None = Field(
        default=None, description="Config file given to the model server as $SHIPYARD_CONFIG."
    )
    port: int | None = Field(
        default=None,
        ge=1024,
        le=65535,
        description="Fixed port of the environment's endpoint (production gateway).",
    )


class LoadConfig(Strict):
    rate: float = Field(default=50, gt=0, le=10000, description="Requests per second.")
    duration: Duration = Field(default=5, description="How long the load runs (bounded).")
    concurrency: int = Field(default=8, ge=1, le=256, description="Requests in flight at once.")
    max_error_rate: float = Field(
        default=0.001, ge=0, le=1, description="Largest allowed fraction of failed requests."
    )


class PerformanceConfig(Strict):
    p95_ms: float | None = Field(
        default=None, gt=0, description="Largest allowed 95th percentile latency, milliseconds."
    )
    p99_ms: float | None = Field(
        default=None, gt=0, description="Largest allowed 99th percentile latency, milliseconds."
    )


class Threshold(Strict):
    min: float | None = Field(default=None, description="Lowest allowed value.")
    max: float | None = Field(default=None, description="Highest allowed value.")

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expected min <= max (got min {self.min}, max {self.max})")
        return self


class DropLimit(Strict):
    max_drop: float = Field(
        ge=0, description="Largest allowed drop against the model now in production."
    )


QUALITY_METRICS = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "r2", "mae", "rmse")
# Keys stay typed ``str`` for callers; the validator names the bad key and the allowed ones.
MetricName = Annotated[
    str, AfterValidator(_one_of(QUALITY_METRICS, "metric")), _enum(QUALITY_METRICS)
]


class QualityConfig(Strict):
    data: str = Field(description="Holdout CSV file, relative to the repository.")
    label: str = Field(description="Column holding the true value.")
    metrics: dict[MetricName, Threshold] = Field(
        default_factory=dict, description="Absolute bounds per metric, e.g. accuracy: {min: 0.9}."
    )
    vs_production: dict[MetricName, DropLimit] = Field(
        default_factory=dict,
        description="Largest allowed drop per metric against the model in production.",
    )


class QAConfig(Strict):
    functional: str | None = Field(
        default=None, description="Command run with $SHIPYARD_ENDPOINT set."
    )
    load: LoadConfig | None = Field(default=None, description="Load test against staging.")
    performance: PerformanceConfig | None = Field(
        default=None, description="Latency thresholds measured by the load test."
    )
    quality: QualityConfig | None = Field(default=None, description="Model quality gate.")
    timeout: Duration = Field(default=900, description="Stage timeout.")


class ReleaseConfig(Strict):
    approval: Literal["auto"] = Field(default="auto", description="How the release is approved.")


_LatencyCheck = Annotated[
    str, AfterValidator(_one_of(("max_increase",), "latency check")), _enum(("max_increase",))
]
_DriftCheck = Annotated[
    str, AfterValidator(_one_of(("psi_max",), "drift check")), _enum(("psi_max",))
]


class AnalysisConfig(Strict):
    error_rate: Threshold = Field(
        default_factory=lambda: Threshold(max=0.01),
        description="max: largest allowed canary error rate.",
    )
    latency: dict[_LatencyCheck, float] = Field(
        default_factory=lambda: {"max_increase": 0.5},
        description="max_increase: allowed relative p95 increase.",
    )
    prediction_drift: dict[_DriftCheck, float] = Field(
        default_factory=lambda: {"psi_max": 0.2},
        description="psi_max: largest allowed PSI of predictions.",
    )
    min_requests: int = Field(
        default=20, ge=1, description="Fewer canary requests than this is inconclusive."
    )
    max_extensions: int = Field(
        default=2, ge=0, description="Inconclusive steps are extended at most this often."
    )


class ProbeTraffic(Strict):
    rate: float = Field(
        default=40, gt=0, le=2000, description="Requests per second the canary stage sends itself."
    )
    data: str | None = Field(
        default=None, description="CSV of request rows (default: qa.quality.data)."
    )


class CanaryConfig(Strict):
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=lambda: [10, 50, 100],
        description="Traffic percentages of the canary, in order.",
    )
    interval: Duration = Field(default=60, description="Time at each step before the judge runs.")
    analysis: AnalysisConfig = Field(
        default_factory=AnalysisConfig, description="How the judge compares canary with stable."
    )
    traffic: ProbeTraffic | None = Field(
        default=None, description="Probe traffic for projects with no live users yet."
    )
    rollback_window: Duration = Field(
        default=3600, description="How long the previous version stays ready for a rollback."
    )

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[int]) -> list[int]:
        if not steps or any(b <= a for a, b in pairwise(steps)):
            raise ValueError("expected increasing percentages, e.g. [10, 25, 50, 100]")
        return steps


def _install_file(value: str) -> str:
    base = value.replace("\\", "/").rsplit("/", 1)[-1]
    if base != "pyproject.toml" and not base.endswith((".txt", ".lock")):
        raise ValueError("expected a requirements*.txt, a *.lock or pyproject.toml file")
    return value


EnvironmentName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]


class ProjectConfig(Strict):
    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=63,
        description="Project name: lower-case letters and digits, joined by single . _ or -",
    )
    python: str = Field(
        default="3.11", pattern=PYTHON_PATTERN, description='Python version, quoted: "3.11".'
    )
    install: Annotated[str, AfterValidator(_install_file)] = Field(
        default="requirements.txt",
        description="Lock or requirements file: requirements*.txt, *.lock, or pyproject.toml",
    )
    build: BuildConfig = Field(description="The build stage: trains the model.")
    model: ModelConfig = Field(description="How the trained model is served.")
    test: TestConfig | None = Field(default=None, description="The unit test stage.")
    analyze: AnalyzeConfig | None = Field(
        default=None, description="The analysis stage: bandit rules over the project's own code."
    )
    environments: dict[EnvironmentName, EnvironmentConfig] = Field(
        default_factory=dict,
        description="Deployment environments by name (staging, production, ...).",
        json_schema_extra={"additionalProperties": False},  # names outside the pattern too
    )
    qa: QAConfig | None = Field(default=None, description="The QA stage, against staging.")
    release: ReleaseConfig | None = Field(default=None, description="The release stage.")
    canary: CanaryConfig | None = Field(
        default=None, description="The canary rollout in production."
    )

    @property
    def model_name(self) -> str:
        return self.model.name or self.name
