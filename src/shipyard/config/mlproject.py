"""What ``shipyard init`` reads from an MLflow project: ``MLproject`` and its environment file.

``MLproject`` gives the train command (an entry point with its parameters' defaults filled in,
quoted as MLflow quotes them) and names the environment file; ``conda.yaml`` or
``python_env.yaml`` gives the Python version and the packages. Conda packages are mapped to
their PyPI names from a small table; one that is not in it is left out with a note, because a
guessed name could install something else entirely.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from shipyard.config.loader import _syntax_problem
from shipyard.errors import ConfigError

__all__ = [
    "MLFLOW_MODEL_PATH",
    "CondaEnv",
    "MLProject",
    "conda_requirement",
    "mlflow_use",
    "read_environment",
    "read_mlproject",
]

MLPROJECT_FILE = "MLproject"
# Where the build puts a model logged to MLflow in $SHIPYARD_MODEL_DIR, unless `model.serve`
# names another path (pipeline/mlflow.py); init proposes {format: mlflow, path: model}.
MLFLOW_MODEL_PATH = "model"
ENV_FILES = ("python_env.yaml", "conda.yaml")  # MLflow's order when MLproject names none
# Conda installs them into every environment; pip has them already.
NOT_PACKAGES = frozenset({"python", "pip", "setuptools", "wheel"})
# Conda name -> PyPI name, where they differ.
RENAMED = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-lightgbm": "lightgbm",
    "py-catboost": "catboost",
    "py-opencv": "opencv-python",
    "matplotlib-base": "matplotlib",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
    "pytables": "tables",
    "tensorflow-cpu": "tensorflow",
}
# Conda packages published on PyPI under the same name.
SAME_NAME = frozenset(
    [
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "scikit-image",
        "matplotlib",
        "seaborn",
        "statsmodels",
        "xgboost",
        "lightgbm",
        "catboost",
        "tensorflow",
        "keras",
        "torchvision",
        "torchaudio",
        "mlflow",
        "mlflow-skinny",
        "cloudpickle",
        "joblib",
        "pyarrow",
        "polars",
        "requests",
        "click",
        "pyyaml",
        "jinja2",
        "flask",
        "sqlalchemy",
        "pillow",
        "h5py",
        "numba",
        "onnx",
        "onnxruntime",
        "skops",
        "tqdm",
        "nltk",
        "spacy",
        "transformers",
        "shap",
        "optuna",
        "hyperopt",
        "boto3",
        "pytest",
        "psutil",
        "protobuf",
        "sympy",
        "networkx",
        "plotly",
        "dask",
        "distributed",
        "openpyxl",
        "lxml",
        "beautifulsoup4",
        "gensim",
        "imbalanced-learn",
        "category_encoders",
        "pandera",
        "fastparquet",
        "threadpoolctl",
    ]
)
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_CONDA_SPEC = re.compile(r"^(?:[\w.-]+::)?([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*(.*)$")


@dataclass(frozen=True)
class MLProject:
    """The train command from ``MLproject``, and what could not be filled in."""

    entry_point: str
    train: str
    others: tuple[str, ...]  # entry points not used
    missing: tuple[str, ...]  # parameters in the command without a default
    env_file: str | None  # the environment file MLproject names


@dataclass(frozen=True)
class CondaEnv:
    """An environment file as a Python version and pip requirements."""

    source: str
    python: str | None
    requirements: tuple[str, ...]
    notes: tuple[str, ...]  # conda packages left out, one sentence each


def read_mlproject(repository: Path) -> MLProject | None:
    """``MLproject`` at the root of ``repository``; None when there is none."""
    if not (repository / MLPROJECT_FILE).is_file():
        return None
    data = _read_mapping(repository, MLPROJECT_FILE)
    entry_points = _field(data, "entry_points", dict, MLPROJECT_FILE) or {}
    if not entry_points:
        _refuse(MLPROJECT_FILE, "entry_points", "expected at least one entry point")
    name = "main" if "main" in entry_points else str(next(iter(entry_points)))
    entry = entry_points[name]
    where = f"entry_points.{name}"
    if not isinstance(entry, dict):
        _refuse(MLPROJECT_FILE, where, "expected a mapping with `command` and `parameters`")
    command = _field(entry, "command", str, MLPROJECT_FILE, where)
    if not command:
        _refuse(MLPROJECT_FILE, f"{where}.command", "expected the entry point's command")
    parameters = _field(entry, "parameters", dict, MLPROJECT_FILE, where) or {}
    train, missing = fill_parameters(command, parameters)
    return MLProject(
        entry_point=name,
        train=train,
        others=tuple(str(other) for other in entry_points if other != name),
        missing=missing,
        env_file=_env_file(data),
    )


def fill_parameters(command: str, parameters: Mapping[Any, Any]) -> tuple[str, tuple[str, ...]]:
    """``{name}`` placeholders replaced by the parameters' defaults, shell-quoted as MLflow does.

    A placeholder without a default stays as it is and is named in the second value.
    """
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]  # `{{` and `}}` are literal braces in MLflow's format
        name = match.group(1)
        default = _default(parameters.get(name))
        if default is None:
            missing.append(name)
            return match.group(0)
        return shlex.quote(default)

    return _PLACEHOLDER.sub(fill, command), tuple(dict.fromkeys(missing))


def _default(parameter: Any) -> str | None:
    value = parameter.get("default") if isinstance(parameter, dict) else None
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _env_file(data: Mapping[str, Any]) -> str | None:
    for key in ("python_env", "conda_env"):
        value = data.get(key)
        if value is not None:
            if not isinstance(value, str) or not value:
                _refuse(MLPROJECT_FILE, key, "expected the path of the environment file")
            return value
    return None


def read_environment(repository: Path, named: str | None = None) -> CondaEnv | None:
    """The environment file ``named`` (or the first of ``ENV_FILES``) as requirements."""
    candidates = [named] if named else [name for name in ENV_FILES if (repository / name).is_file()]
    if not candidates:
        return None
    source = candidates[0]
    if not (repository / source).is_file():
        _refuse(MLPROJECT_FILE, "conda_env", f"names {source}, which is not in the repository")
    data = _read_mapping(repository, source)
    if "python" in data or "build_dependencies" in data:
        return _python_env(source, data)
    return _conda_env(source, data)


def _python_env(source: str, data: Mapping[str, Any]) -> CondaEnv:
    python = data.get("python")
    dependencies = _field(data, "dependencies", list, source) or []
    return CondaEnv(
        source=source,
        python=_minor(str(python)) if python is not None else None,
        requirements=tuple(_strings(dependencies, source, "dependencies")),
        notes=(),
    )


def _conda_env(source: str, data: Mapping[str, Any]) -> CondaEnv:
    dependencies = _field(data, "dependencies", list, source) or []
    python: str | None = None
    pip: list[str] = []
    conda: list[str] = []
    notes: list[str] = []
    for item in dependencies:
        if isinstance(item, dict) and "pip" in item:
            pip += _strings(item["pip"] or [], source, "dependencies.pip")
        elif isinstance(item, str) and (spec := _CONDA_SPEC.match(item.strip())):
            if spec.group(1).lower() == "python":
                python = _minor(spec.group(2)) or python
                continue
            mapped = conda_requirement(item)
            if mapped:
                conda.append(mapped)
            elif spec.group(1).lower() not in NOT_PACKAGES:
                notes.append(_unmapped(spec.group(1), source))
        else:
            _refuse(source, "dependencies", f"expected package names, got {item!r}")
    named_by_pip = {_project_name(requirement) for requirement in pip}
    conda = [req for req in conda if _project_name(req) not in named_by_pip]
    return CondaEnv(source, python, tuple(conda + pip), tuple(notes))


def conda_requirement(spec: str) -> str | None:
    """A conda spec (``numpy=1.26``, ``pytorch::pytorch>=2``) as a pip requirement, if known."""
    match = _CONDA_SPEC.match(spec.strip())
    if match is None:
        return None
    name, version = match.group(1).lower(), match.group(2).strip()
    if name in NOT_PACKAGES:
        return None
    pypi = RENAMED.get(name) or (name if name in SAME_NAME else None)
    return pypi + _pip_version(version) if pypi else None


def _pip_version(version: str) -> str:
    """Conda's ``=1.2`` (and ``1.2``) mean 1.2.*; a build string after a second ``=`` goes."""
    if not version:
        return ""
    if version[0] in "<>!" or version.startswith("=="):
        return version.replace(" ", "")
    number = version.lstrip("=").split("=")[0].strip()
    return f"=={number}" if "*" in number else f"=={number}.*"


def _minor(version: str) -> str | None:
    match = re.search(r"(3\.\d+)", version)
    return match.group(1) if match else None


def _project_name(requirement: str) -> str:
    name = re.split(r"[\s<>=!~;\[@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _unmapped(name: str, source: str) -> str:
    return (
        f"conda package {name} (from {source}) has no known PyPI name and was left out; "
        "add its PyPI name to requirements.txt if training needs it"
    )


def _strings(values: Any, source: str, field: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        _refuse(source, field, "expected a list of package requirements")
    return [value.strip() for value in values if value.strip()]


def _read_mapping(repository: Path, name: str) -> dict[str, Any]:
    try:
        text = (repository / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{name}: could not be read ({error})", hint=_FIX.format(name)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = _syntax_problem(error).render(name)
        raise ConfigError(problem, problems=[problem], hint=_FIX.format(name)) from None
    if not isinstance(data, dict):
        _refuse(
            name, None, f"expected a mapping of keys at the top level, got {type(data).__name__}"
        )
    return data


_FIX = "Fix {} (`mlflow run` reads it the same way), then run `shipyard init` again."


def _field(
    data: Mapping[str, Any], key: str, kind: type, source: str, parent: str | None = None
) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        where = f"{parent}.{key}" if parent else key
        expected = {"dict": "a mapping", "list": "a list", "str": "a string"}[kind.__name__]
        _refuse(source, where, f"expected {expected}, got {type(value).__name__}")
    return value


def _refuse(source: str, field: str | None, text: str) -> NoReturn:
    # Only a syntax error knows its line; otherwise the field is named.
    problem = f"{source}: {field}: {text}" if field else f"{source}: {text}"
    raise ConfigError(problem, problems=[problem], hint=_FIX.format(source))


_SKIPPED_FOLDERS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", "mlruns"})
_MLFLOW_CALL = re.compile(r"\bmlflow\.|\blog_model\(")
_MAX_SCANNED = 500  # Python files read to find MLflow calls; a repository has few that matter


def mlflow_use(repository: Path, requirements: tuple[str, ...], source: str) -> str | None:
    """Where the project uses MLflow (``source`` of its requirements, or a file), or None."""
    if any(_project_name(req) in ("mlflow", "mlflow-skinny") for req in requirements):
        return source
    for index, script in enumerate(python_files(repository)):
        if index >= _MAX_SCANNED:
            break
        if _MLFLOW_CALL.search(script.read_text(encoding="utf-8", errors="replace")):
            return script.relative_to(repository).as_posix()
    return None


def python_files(repository: Path) -> list[Path]:
    """The project's own ``.py`` files, shallowest first; virtualenvs and hidden folders skipped."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(repository):
        # Pruned in place, so a virtualenv's thousands of files are never listed.
        subfolders[:] = [
            name for name in subfolders if name not in _SKIPPED_FOLDERS and not name.startswith(".")
        ]
        found += [Path(folder) / name for name in files if name.endswith(".py")]
    return sorted(found, key=lambda path: (len(path.parts), path.as_posix()))


def requirement_names(text: str) -> tuple[str, ...]:
    """The requirement lines of a requirements file (comments and options left out)."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("-"))
