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
import math
import posixpath
import re
from collections.abc import Callable
from functools import partial
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


WEEK = 7 * 86400.0
YEAR = 366 * 86400.0
_DURATION_WORDS = "expected a duration such as 20s, 5m or 1h"


def parse_duration(value: Any, *, zero: bool = False, longest: float = WEEK) -> float:
    """``"20s"`` -> 20.0; ``"5m"`` -> 300.0; a bare number is seconds.

    A duration is above 0 (``zero`` lets a wait be 0) and at most ``longest``, 7 days unless
    a field says otherwise: a timeout of 0 or of years is a typo, refused when the file loads.
    """
    seconds = _seconds(value)
    if math.isnan(seconds):
        raise ValueError(_DURATION_WORDS)
    if seconds < 0:
        raise ValueError(f"{_DURATION_WORDS} (a duration cannot be negative)")
    if seconds == 0 and not zero:
        raise ValueError(f"{_DURATION_WORDS}, above 0")
    if seconds > longest:
        raise ValueError(
            f"expected a duration of at most {longest / 86400:g} days ({longest / 3600:g}h)"
        )
    return seconds


def duration_text(seconds: float) -> str:
    """The inverse of ``parse_duration`` for display: 3600 -> ``1h``, 90 -> ``90s``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(_DURATION_WORDS)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float: longer than any limit
            return math.inf
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(_DURATION_WORDS)


def _duration_schema(*, zero: bool = False, longest: float = WEEK) -> dict[str, Any]:
    """The schema accepts what the validator accepts: "20s" as well as 20."""
    lowest = {"minimum": 0} if zero else {"exclusiveMinimum": 0}
    return {
        "anyOf": [
            {"type": "number", **lowest, "maximum": longest},
            {"type": "string", "pattern": _DURATION.pattern},
        ],
        "examples": ["20s", "5m", "1h", 30],
    }


Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_duration_schema())]
# A batch's wait may be 0: "only the requests already waiting".
Wait = Annotated[
    float,
    BeforeValidator(partial(parse_duration, zero=True)),
    WithJsonSchema(_duration_schema(zero=True)),
]
# The age a vulnerability database may reach is counted in weeks and months.
Age = Annotated[
    float,
    BeforeValidator(partial(parse_duration, longest=YEAR)),
    WithJsonSchema(_duration_schema(longest=YEAR)),
]


def _pause(value: Any) -> Any:
    """A step's pause: a duration, or ``manual`` (held until promoted)."""
    if value is None or value == "manual":
        return value
    return parse_duration(value)


def _inside_project(value: str) -> str:
    """A path the project holds: relative to its root and never climbing out with ``..``.

    Symlinks are followed where the file is used (``paths.project_file``): the text alone
    cannot tell where they lead.
    """
    text = value.replace("\\", "/")
    if text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", text):
        raise ValueError("expected a path inside the project, relative to its root")
    if posixpath.normpath(text).split("/")[0] == "..":
        raise ValueError("expected a path inside the project (this `..` leads out of it)")
    return value


# Files and folders of the project (data, migrations, config, paths to scan).
ProjectPath = Annotated[str, AfterValidator(_inside_project)]


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
    format: Literal["skops", "onnx", "mlflow", "pickle", "joblib"] = Field(
        description="Built-in loader: skops, onnx (onnxruntime), mlflow (a pyfunc directory), "
        "pickle or joblib (these two, and MLflow models saved with pickle, load only from a "
        "signed release artifact)."
    )
    path: ProjectPath = Field(
        min_length=1,
        description="Model file (a directory for mlflow), relative to the model directory.",
    )
    trusted: list[str] = Field(
        default_factory=list,
        description="skops only: types to load beyond those skops trusts, e.g. "
        "`mypackage.MyTransformer`.",
    )

    @model_validator(mode="after")
    def _trusted_is_for_skops(self) -> LoaderConfig:
        if self.trusted and self.format != "skops":
            raise ValueError(
                f"expected no `trusted` list for the {self.format} loader (skops only)"
            )
        return self


def _serve_kind(value: Any) -> str:
    # A mapping is a built-in loader; anything else is judged as a `module:Class` string, so
    # a bad value gets one error from the branch the user meant, not one per branch.
    return "loader" if isinstance(value, dict | LoaderConfig) else "class"


ServeSpec = Annotated[
    Annotated[str, Tag("class"), WithJsonSchema({"type": "string", "pattern": _CLASS_PATH.pattern})]
    | Annotated[LoaderConfig, Tag("loader")],
    Discriminator(_serve_kind),
]


class ServingConfig(Strict):
    workers: int = Field(
        default=1, ge=1, le=64, description="Model server processes, each with the model loaded."
    )
    max_batch_size: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="Most rows one predict call gets from requests that wait together; 1: off.",
    )
    max_batch_wait: Wait = Field(
        default=0,
        le=1,
        description="How long a batch that is not full waits for more rows (e.g. 2ms); "
        "0 batches only the requests already waiting.",
    )


class ModelConfig(Strict):
    serve: ServeSpec = Field(
        description="`module:Class` constructed with the model directory, or a built-in loader."
    )
    serving: ServingConfig = Field(
        default_factory=ServingConfig,
        description="Model server workers and adaptive batching.",
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
        description="Finding id or alias: a bandit test id (B105), an advisory id or alias "
        "(GHSA-..., CVE-..., PYSEC-...), a rule id (secret-private-key), or rule:path.",
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


ANALYSIS_CHECKS = ("code", "secrets", "vulnerabilities", "licences", "models", "sbom")
AnalysisCheck = Annotated[
    str, AfterValidator(_one_of(ANALYSIS_CHECKS, "check")), _enum(ANALYSIS_CHECKS)
]


class VulnerabilityConfig(Strict):
    database: str | None = Field(
        default=None,
        description="Offline OSV database: a folder made by `shipyard vulndb import`, OSV's "
        "PyPI all.zip or a folder of OSV JSON files; relative to the project root "
        "(default: vulndb/ in the machine cache).",
    )
    online: bool = Field(
        default=False,
        description="Also ask OSV's API; when it cannot be reached, the offline data is used.",
    )
    api: str = Field(default="https://api.osv.dev", description="Base URL of OSV's API.")
    timeout: Duration = Field(default=10, description="Timeout of one request to the API.")
    max_age: Age = Field(
        default=30 * 86400, description="An offline database older than this is reported."
    )
    required: bool = Field(
        default=False,
        description="Fail the stage when no vulnerability data could be used at all.",
    )


class SecretsConfig(Strict):
    exclude: list[ProjectPath] = Field(
        default_factory=list, description="Tracked paths (or globs) not searched for secrets."
    )


class ModelsConfig(Strict):
    allow_imports: list[str] = Field(
        default_factory=list,
        description="Globals a pickle may import beyond the built-in safe list, as "
        "`module.name` or `module.*`; also types a skops file may hold.",
    )


class LicencesConfig(Strict):
    deny: list[str] = Field(
        default_factory=list,
        description="Licences that fail the stage: SPDX ids or globs, e.g. GPL-3.0*, AGPL-*.",
    )


class AnalyzeConfig(Strict):
    fail_on: Literal["low", "medium", "high", "critical"] = Field(
        default="high", description="Lowest severity that fails the stage."
    )
    checks: list[AnalysisCheck] = Field(
        default_factory=lambda: list(ANALYSIS_CHECKS),
        description="Which checks run: code, secrets, vulnerabilities, licences, models, sbom.",
    )
    paths: list[ProjectPath] = Field(
        default_factory=lambda: ["."], description="Project paths bandit scans."
    )
    exclude: list[ProjectPath] = Field(
        default_factory=lambda: ["tests", ".venv"], description="Paths bandit does not scan."
    )
    confidence: Literal["low", "medium", "high"] = Field(
        default="low", description="Lowest bandit confidence reported."
    )
    vulnerabilities: VulnerabilityConfig = Field(
        default_factory=VulnerabilityConfig,
        description="Known vulnerabilities of the installed distributions (OSV data).",
    )
    secrets: SecretsConfig = Field(
        default_factory=SecretsConfig, description="Credentials committed in tracked files."
    )
    models: ModelsConfig = Field(
        default_factory=ModelsConfig,
        description="Pickle, joblib and skops files of the model and the tree.",
    )
    licences: LicencesConfig = Field(
        default_factory=LicencesConfig,
        description="Licences of the installed distributions, from their metadata.",
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
    migrations: ProjectPath | None = Field(
        default=None, description="Folder of `*.sql` files applied in name order."
    )
    config: ProjectPath | None = Field(
        default=None, description="Config file given to the model server as $SHIPYARD_CONFIG."
    )
    port: int | None = Field(
        default=None,
        ge=1024,
        le=65535,
        description="Fixed port of the environment's endpoint (production gateway).",
    )
    sticky_header: str | None = Field(
        default="x-shipyard-key",
        pattern=r"^[A-Za-z0-9-]+$",
        description="Request header whose value keeps a client on one version while the "
        "gateway's weights stand; null turns it off.",
    )
    pin_token_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the token a client sends as "
        "`x-shipyard-pin-token` to pin a version other than the stable one; unset, such "
        "pins are refused (403). Never the token itself.",
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
    data: ProjectPath = Field(description="Holdout CSV file, relative to the repository.")
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


class GateConfig(Strict):
    """A stage that may wait for a person: ``release`` (qa approves) and ``canary`` (releaser)."""

    approval: Literal["auto", "manual"] = Field(
        default="auto",
        description="`manual`: the run waits at the start of this stage until a person "
        "approves it (`shipyard approve`); release needs the qa role, canary releaser.",
    )
    approval_timeout: Duration | None = Field(
        default=None,
        description="With `approval: manual`: fail the run when nobody decides within this long.",
    )

    @model_validator(mode="after")
    def _timeout_needs_manual(self) -> GateConfig:
        if self.approval_timeout is not None and self.approval != "manual":
            raise ValueError("expected `approval: manual` with `approval_timeout`")
        return self


class ReleaseConfig(GateConfig):
    """The release stage: promotion into ``release``, after an approval when ``manual``."""


_LatencyCheck = Annotated[
    str, AfterValidator(_one_of(("max_increase",), "latency check")), _enum(("max_increase",))
]
_DriftCheck = Annotated[
    str,
    AfterValidator(_one_of(("psi_max", "ks_max"), "drift check")),
    _enum(("psi_max", "ks_max")),
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
        description="psi_max: largest allowed PSI of predictions (classes, or deciles of "
        "numbers); ks_max: largest allowed Kolmogorov-Smirnov distance of numeric predictions.",
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
    data: ProjectPath | None = Field(
        default=None, description="CSV of request rows (default: qa.quality.data)."
    )


class CanaryStep(Strict):
    weight: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Canary traffic percentage (default: the previous step's).",
    )
    pause: Annotated[
        float | Literal["manual"] | None,
        BeforeValidator(_pause),
        WithJsonSchema({"anyOf": [_duration_schema(), {"const": "manual"}]}),
    ] = Field(
        default=None,
        description="How long the step lasts (default: canary.interval); `manual` holds it "
        "until `shipyard rollout promote`.",
    )

    @model_validator(mode="after")
    def _says_something(self) -> CanaryStep:
        if self.weight is None and self.pause is None:
            raise ValueError("expected a weight, a pause or both, e.g. {weight: 20, pause: 5m}")
        return self


def _step_kind(value: Any) -> str:
    # A mapping is a step with a pause; anything else is judged as a bare percentage.
    return "step" if isinstance(value, dict | CanaryStep) else "percent"


StepSpec = Annotated[
    Annotated[int, Tag("percent"), Field(ge=1, le=100)] | Annotated[CanaryStep, Tag("step")],
    Discriminator(_step_kind),
]


def _default_steps() -> list[int | CanaryStep]:
    return [10, 50, 100]


class ShadowConfig(Strict):
    percent: float = Field(
        gt=0,
        le=100,
        description="Share of requests mirrored to the canary before it takes any traffic.",
    )


class CanaryConfig(GateConfig):
    steps: list[StepSpec] = Field(
        default_factory=_default_steps,
        description="Traffic percentages of the canary, in order; a step may be "
        "{weight: 20, pause: 5m} or {pause: manual}.",
    )
    interval: Duration = Field(
        default=60, description="How often the judge runs; also a step's default length."
    )
    shadow: ShadowConfig | None = Field(
        default=None,
        description="A shadow phase first: the canary gets copies of requests, never answers.",
    )
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
    def _increasing(cls, steps: list[int | CanaryStep]) -> list[int | CanaryStep]:
        weights = [s if isinstance(s, int) else s.weight for s in steps]
        given = [w for w in weights if w is not None]
        if not given or any(b <= a for a, b in pairwise(given)):
            raise ValueError("expected increasing percentages, e.g. [10, 25, 50, 100]")
        if weights[0] is None:
            raise ValueError(
                "expected a weight in the first step, e.g. {weight: 10, pause: manual}"
            )
        return steps

    def plan(self) -> list[tuple[int, float | Literal["manual"]]]:
        """The steps as (weight, pause seconds or "manual"), defaults filled in."""
        plan: list[tuple[int, float | Literal["manual"]]] = []
        for step in self.steps:
            if isinstance(step, int):
                plan.append((step, self.interval))
            else:
                weight = step.weight if step.weight is not None else plan[-1][0]
                plan.append((weight, step.pause if step.pause is not None else self.interval))
        return plan


DATA_SUFFIXES = (".csv", ".parquet", ".pq")
DATA_DTYPES = ("float", "int", "str", "bool")


def _data_file(value: str) -> str:
    if not value.lower().endswith(DATA_SUFFIXES):
        raise ValueError("expected a CSV (.csv) or Parquet (.parquet, .pq) file")
    return value


DataFile = Annotated[ProjectPath, AfterValidator(_data_file)]


class ColumnRule(Strict):
    """What one column of the training data must hold; every listed column must exist."""

    dtype: Literal["float", "int", "str", "bool"] | None = Field(
        default=None,
        description="float (any number), int (whole numbers), str (text; a CSV column is read "
        "as text) or bool.",
    )
    min: float | None = Field(default=None, description="Lowest allowed value (numbers).")
    max: float | None = Field(default=None, description="Highest allowed value (numbers).")
    not_null: bool = Field(default=False, description="No value may be missing.")
    allowed: list[str | int | float | bool] | None = Field(
        default=None, min_length=1, description="The only values the column may hold."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ColumnRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expected min <= max (got min {self.min:g}, max {self.max:g})")
        bounded = self.min is not None or self.max is not None
        if bounded and self.dtype in ("str", "bool"):
            raise ValueError(f"expected no min or max for a {self.dtype} column (numbers only)")
        if self.dtype == "str" and self.allowed:
            numbers = [value for value in self.allowed if not isinstance(value, str)]
            if numbers:
                raise ValueError(
                    f"expected text in `allowed` of a str column; quote {numbers[0]!r}"
                )
        return self


class RowsRule(Strict):
    min: int = Field(ge=1, description="Fewest rows a data file may have.")


class DataDriftConfig(Strict):
    psi_max: float = Field(
        default=0.2,
        gt=0,
        description="PSI of a feature against the live release's training data above which "
        "it counts as drifted.",
    )
    gate: bool = Field(
        default=False,
        description="Fail the build when a feature drifted; false: only report it.",
    )


class DataConfig(Strict):
    train: DataFile = Field(
        description="Training data file (CSV or Parquet), relative to the repository."
    )
    holdout: DataFile | None = Field(
        default=None, description="Holdout data file, checked with the same rules."
    )
    label: str | None = Field(
        default=None,
        min_length=1,
        description="Column holding the target: required, and left out of the model's input "
        "schema and of drift.",
    )
    rows: RowsRule | None = Field(default=None, description="Row count, e.g. {min: 100}.")
    columns: dict[str, ColumnRule] = Field(
        default_factory=dict,
        description="Checks per column, e.g. sepal_length: {dtype: float, min: 0, not_null: true}.",
    )
    drift: DataDriftConfig = Field(
        default_factory=DataDriftConfig,
        description="Drift of each feature against the training data of the release live in "
        "production (PSI).",
    )


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
    install: Annotated[ProjectPath, AfterValidator(_install_file)] = Field(
        default="requirements.txt",
        description="Lock or requirements file: requirements*.txt, *.lock, or pyproject.toml",
    )
    build: BuildConfig = Field(description="The build stage: trains the model.")
    model: ModelConfig = Field(description="How the trained model is served.")
    test: TestConfig | None = Field(default=None, description="The unit test stage.")
    analyze: AnalyzeConfig | None = Field(
        default=None,
        description="The analysis stage: code (bandit), secrets, dependency vulnerabilities (OSV), licences, model files, SBOM.",
    )
    environments: dict[EnvironmentName, EnvironmentConfig] = Field(
        default_factory=dict,
        description="Deployment environments by name (staging, production, ...).",
        json_schema_extra={"additionalProperties": False},  # names outside the pattern too
    )
    data: DataConfig | None = Field(
        default=None,
        description="Training data: profiled, checked and compared with the live release's "
        "before training.",
    )
    qa: QAConfig | None = Field(default=None, description="The QA stage, against staging.")
    release: ReleaseConfig | None = Field(default=None, description="The release stage.")
    canary: CanaryConfig | None = Field(
        default=None, description="The canary rollout in production."
    )

    @property
    def model_name(self) -> str:
        return self.model.name or self.name
