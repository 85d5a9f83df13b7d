"""The ``shipyard.yaml`` format, as pydantic models.

The JSON Schema that ``shipyard schema`` prints is generated from these classes, so they are
the single source of truth for the file's format. Durations are written as ``20s``, ``5m``,
``1h`` or a number of seconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


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
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(json_schema_extra={"examples": ["20s", "5m", "1h", 30]}),
]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BuildConfig(Strict):
    train: str = Field(description="Command that trains the model and writes it to $SHIPYARD_MODEL_DIR.")
    timeout: Duration = Field(default=1800, description="Stage timeout.")


class LoaderConfig(Strict):
    format: Literal["skops"] = Field(description="Built-in loader.")
    path: str = Field(description="Model file, relative to the model directory.")


class ModelConfig(Strict):
    serve: str | LoaderConfig = Field(
        description="`module:Class` constructed with the model directory, or a built-in loader."
    )
    name: str | None = Field(default=None, description="Model name in the serving API (default: the project name).")

    @field_validator("serve")
    @classmethod
    def _class_path(cls, value: str | LoaderConfig) -> str | LoaderConfig:
        if isinstance(value, str) and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
            raise ValueError("expected `module.path:ClassName`, e.g. iris_model.serve:Model")
        return value


class TestConfig(Strict):
    __test__ = False  # not a pytest test class
    run: str = Field(description="Unit test command; pytest gets --junitxml automatically.")
    timeout: Duration = 900


class AllowEntry(Strict):
    id: str = Field(description="Finding id (bandit test id such as B105, or an advisory id).")
    reason: str = Field(min_length=1)
    until: str | None = Field(default=None, description="Expiry date, YYYY-MM-DD.")

    @field_validator("until")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^\d{4}-\d{2}-\d{2}$", str(value)):
            raise ValueError("expected a date as YYYY-MM-DD")
        return value


class AnalyzeConfig(Strict):
    fail_on: Literal["low", "medium", "high"] = Field(default="high", description="Lowest severity that fails the stage.")
    paths: list[str] = Field(default_factory=lambda: ["."], description="Project paths to scan.")
    exclude: list[str] = Field(default_factory=lambda: ["tests", ".venv"], description="Paths not scanned.")
    allow: list[AllowEntry] = Field(default_factory=list)
    timeout: Duration = 600


class EnvironmentConfig(Strict):
    database: str | None = Field(
        default=None, description="SQLAlchemy URL of the environment's database; `{state}` is the environment's state folder."
    )
    migrations: str | None = Field(default=None, description="Folder of `*.sql` files applied in name order.")
    config: str | None = Field(default=None, description="Config file given to the model server as $SHIPYARD_CONFIG.")
    port: int | None = Field(
        default=None, ge=1024, le=65535, description="Fixed port of the environment's endpoint (production gateway)."
    )


class LoadConfig(Strict):
    rate: float = Field(default=50, gt=0, le=10000, description="Requests per second.")
    duration: Duration = Field(default=5, description="How long the load runs (bounded).")
    concurrency: int = Field(default=8, ge=1, le=256)
    max_error_rate: float = Field(default=0.001, ge=0, le=1)


class PerformanceConfig(Strict):
    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)


class Threshold(Strict):
    min: float | None = None
    max: float | None = None


class DropLimit(Strict):
    max_drop: float = Field(ge=0)


QUALITY_METRICS = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "r2", "mae", "rmse")


class QualityConfig(Strict):
    data: str = Field(description="Holdout CSV file, relative to the repository.")
    label: str = Field(description="Column holding the true value.")
    metrics: dict[str, Threshold] = Field(default_factory=dict)
    vs_production: dict[str, DropLimit] = Field(default_factory=dict)

    @field_validator("metrics", "vs_production")
    @classmethod
    def _known_metrics(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(QUALITY_METRICS))
        if unknown:
            raise ValueError(f"unknown metric {', '.join(unknown)}; expected one of {', '.join(QUALITY_METRICS)}")
        return value


class QAConfig(Strict):
    functional: str | None = Field(default=None, description="Command run with $SHIPYARD_ENDPOINT set.")
    load: LoadConfig | None = None
    performance: PerformanceConfig | None = None
    quality: QualityConfig | None = None
    timeout: Duration = 900


class ReleaseConfig(Strict):
    approval: Literal["auto"] = "auto"


class AnalysisConfig(Strict):
    error_rate: Threshold = Field(default_factory=lambda: Threshold(max=0.01))
    latency: dict[str, float] = Field(
        default_factory=lambda: {"max_increase": 0.5}, description="max_increase: allowed relative p95 increase."
    )
    prediction_drift: dict[str, float] = Field(
        default_factory=lambda: {"psi_max": 0.2}, description="psi_max: largest allowed PSI of predictions."
    )
    min_requests: int = Field(default=20, ge=1, description="Fewer canary requests than this is inconclusive.")
    max_extensions: int = Field(default=2, ge=0, description="Inconclusive steps are extended at most this often.")


class ProbeTraffic(Strict):
    rate: float = Field(default=40, gt=0, le=2000, description="Requests per second the canary stage sends itself.")
    data: str | None = Field(default=None, description="CSV of request rows (default: qa.quality.data).")


class CanaryConfig(Strict):
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=lambda: [10, 50, 100])
    interval: Duration = Field(default=60, description="Time at each step before the judge runs.")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    traffic: ProbeTraffic | None = Field(default=None, description="Probe traffic for projects with no live users yet.")
    rollback_window: Duration = 3600

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[int]) -> list[int]:
        if not steps or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("expected increasing percentages, e.g. [10, 25, 50, 100]")
        return steps


class ProjectConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Project name: lower case letters, digits, . _ -")
    python: str = Field(default="3.11", pattern=r"^3\.\d+$")
    install: str = Field(
        default="requirements.txt", description="Lock or requirements file: requirements*.txt, *.lock, or pyproject.toml"
    )
    build: BuildConfig
    model: ModelConfig
    test: TestConfig | None = None
    analyze: AnalyzeConfig | None = None
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    qa: QAConfig | None = None
    release: ReleaseConfig | None = None
    canary: CanaryConfig | None = None

    @model_validator(mode="after")
    def _environments(self) -> ProjectConfig:
        for name in self.environments:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"environment name {name!r} must match {NAME_PATTERN}")
        return self

    @property
    def model_name(self) -> str:
        return self.model.name or self.name
