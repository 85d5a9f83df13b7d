"""``shipyard init``: a first ``shipyard.yaml`` for an existing repository.

The starter is guessed from what the repository already has (its lock or requirements file,
its name, a ``train.py``, a ``tests/`` folder) and every section carries a comment, so a user
only edits. Later stages are written commented out: a stage that is not configured is
skipped visibly, and uncommenting one is the whole of turning it on.
"""

from __future__ import annotations

import re
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

from shipyard.config.loader import CONFIG_FILE, parse_config
from shipyard.errors import Conflict, InvalidInput
from shipyard.paths import DEFAULT_STATE_DIR

__all__ = ["starter_text", "write_starter"]

_WIDTH = 92
_TRAIN_TODO = 'echo "TODO: set build.train in shipyard.yaml to your training command" >&2; exit 1'


@dataclass(frozen=True)
class Guess:
    """What the starter is built from, each value with the comment that goes above it."""

    name: str
    python: str
    install: str
    install_note: str
    train: str
    train_note: str
    serve: str
    serve_note: str
    tests: str | None


def write_starter(repository: Path, *, force: bool = False) -> Path:
    """Write ``shipyard.yaml`` into ``repository``; refuses to overwrite one unless ``force``."""
    if not repository.is_dir():
        raise InvalidInput(
            f"{repository} is not a folder", hint="Run `shipyard init` in the repository."
        )
    target = repository / CONFIG_FILE
    if target.exists() and not force:
        raise Conflict(
            f"{target} already exists", hint="Run `shipyard init --force` to replace it."
        )
    text = starter_text(repository)
    parse_config(text, filename=str(target))  # never hand a user a starter that does not load
    target.write_text(text, encoding="utf-8")
    ignore_state_dir(repository)
    return target


def ignore_state_dir(repository: Path) -> None:
    """Append ``.shipyard/`` to ``.gitignore`` (created if need be) unless already ignored."""
    gitignore = repository / ".gitignore"
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    spellings = {
        f"{DEFAULT_STATE_DIR}",
        f"{DEFAULT_STATE_DIR}/",
        f"/{DEFAULT_STATE_DIR}",
        f"/{DEFAULT_STATE_DIR}/",
    }
    if any(line.strip() in spellings for line in text.splitlines()):
        return
    separator = "" if not text or text.endswith("\n") else "\n"
    gitignore.write_text(f"{text}{separator}{DEFAULT_STATE_DIR}/\n", encoding="utf-8")


def starter_text(repository: Path) -> str:
    """The starter file's text for ``repository``."""
    guess = guess_project(repository)
    return "\n".join([_head(guess), _build(guess), _model(guess), _test(guess), _LATER_STAGES])


def guess_project(repository: Path) -> Guess:
    install, install_note = _install(repository)
    train, train_note = _train(repository)
    serve, serve_note = _serve(repository)
    tests = "pytest -q tests" if (repository / "tests").is_dir() else None
    return Guess(
        name=_name(repository),
        python=_python(repository),
        install=install,
        install_note=install_note,
        train=train,
        train_note=train_note,
        serve=serve,
        serve_note=serve_note,
        tests=tests,
    )


def normalise_name(text: str) -> str:
    """``"My Project!"`` -> ``"my-project"``: the project name pattern, or ``"project"``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    name = re.sub(r"^[^a-z0-9]+", "", name)[:63].rstrip("-._")
    return name or "project"


def _name(repository: Path) -> str:
    project = _pyproject(repository).get("project", {})
    declared = project.get("name") if isinstance(project, dict) else None
    return normalise_name(declared if isinstance(declared, str) else repository.resolve().name)


def _pyproject(repository: Path) -> dict[str, object]:
    try:
        return tomllib.loads((repository / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # no or broken pyproject: the folder name will do


def _python(repository: Path) -> str:
    pinned = repository / ".python-version"  # uv's and pyenv's convention
    if pinned.is_file() and (match := re.match(r"^(3\.\d+)", pinned.read_text().strip())):
        return match.group(1)
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _install(repository: Path) -> tuple[str, str]:
    pinned = "Builds repeat exactly because the environment comes from this pinned file."
    if (repository / "requirements.lock").is_file():
        return "requirements.lock", pinned
    if (repository / "uv.lock").is_file() and (repository / "pyproject.toml").is_file():
        return "uv.lock", f"{pinned} The pyproject.toml beside it names the project."
    requirements = sorted(p.name for p in repository.glob("requirements*.txt") if p.is_file())
    if requirements:
        chosen = "requirements.txt" if "requirements.txt" in requirements else requirements[0]
        return chosen, "Pin exact versions (a lock such as requirements.lock) so builds repeat."
    if (repository / "pyproject.toml").is_file():
        lock = "`uv pip compile pyproject.toml -o requirements.lock`"
        return "pyproject.toml", f"A lock pins versions so builds repeat: {lock}, then use it here."
    todo = "TODO: requirements.txt does not exist yet: create it with the packages training"
    return "requirements.txt", f"{todo} and serving need (e.g. `pip freeze > requirements.txt`)."


def _train(repository: Path) -> tuple[str, str]:
    if (repository / "train.py").is_file():
        note = "train.py must save the model into the folder given (adjust --out if it differs)."
        return 'python train.py --out "$SHIPYARD_MODEL_DIR"', note
    return (
        _TRAIN_TODO,
        "TODO: the command that trains the model and saves it in $SHIPYARD_MODEL_DIR.",
    )


def _serve(repository: Path) -> tuple[str, str]:
    found = _model_class(repository)
    if found is not None:
        return f"{found[0]}:Model", f"Found class Model in {found[1]}."
    note = "This one loads model.skops written by train; name your own class if you have one."
    return "{format: skops, path: model.skops}", note


def _model_class(repository: Path) -> tuple[str, str] | None:
    """The module (dotted, and as a path) of a ``serve.py`` that defines ``class Model``."""
    candidates = [*sorted(repository.glob("*/serve.py")), repository / "serve.py"]
    for module in candidates:
        relative = module.relative_to(repository)
        if relative.parts[0].startswith(".") or not module.is_file():
            continue
        if re.search(r"^class Model\b", module.read_text(errors="replace"), re.MULTILINE):
            return ".".join(relative.with_suffix("").parts), relative.as_posix()
    return None


def _scalar(text: str) -> str:
    """``text`` as a YAML value: plain when it reads back the same, else single-quoted."""
    if yaml.safe_load(text) == text and not text.startswith(("'", '"')):
        return text
    return "'" + text.replace("'", "''") + "'"


def _comment(*sentences: str) -> str:
    """Sentences as ``#`` lines wrapped to the file's width."""
    # A `command` in backticks is never split across lines, so it can be copied whole.
    text = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), " ".join(sentences))
    lines = textwrap.wrap(text, width=_WIDTH - 2, break_on_hyphens=False)
    return "".join(f"# {line}\n".replace("\0", " ") for line in lines)


def _head(guess: Guess) -> str:
    return (
        _comment(f"Shipyard pipeline for {guess.name}, written by `shipyard init`: edit it to fit.")
        + _comment("`shipyard schema` prints every field. A stage left out is skipped visibly.")
        + "\n"
        + _comment("Project name, for artifacts and the serving API: a-z, 0-9, . _ -")
        + f"name: {guess.name}\n"
        + _comment("Python of the build environment. Keep it quoted: 3.10 unquoted reads 3.1.")
        + f'python: "{guess.python}"\n'
        + _comment(
            "The file the build environment is made from (and cached by):",
            "requirements*.txt, *.lock or pyproject.toml.",
            guess.install_note,
        )
        + f"install: {_scalar(guess.install)}\n"
    )


def _build(guess: Guess) -> str:
    return (
        _comment(
            "Stage 2, build: a clean checkout of the commit, its environment, then training.",
            guess.train_note,
        )
        + f"build:\n  train: {_scalar(guess.train)}\n  timeout: 30m\n"
    )


def _model(guess: Guess) -> str:
    return (
        _comment(
            "How the trained model is served: a class `module:Class`, constructed once with",
            "the model directory and called as predict(list of records) -> one output per",
            "record, or a built-in loader such as {format: skops, path: model.skops}.",
            guess.serve_note,
        )
        + f"model:\n  serve: {guess.serve}\n"
    )


def _test(guess: Guess) -> str:
    about = "Stage 3, test: unit tests in the build environment (pytest gets --junitxml)."
    if guess.tests is None:
        missing = "No tests/ folder was found; uncomment once there is one."
        return _comment(about, missing) + "# test:\n#   run: pytest -q tests\n"
    needs = "pytest must be in the install file."
    return _comment(about, needs) + f"test:\n  run: {_scalar(guess.tests)}\n"


_LATER_STAGES = """\
# Stage 4, analyze: code (bandit), secrets, dependency vulnerabilities, licences, SBOM.
# A finding at or above fail_on fails the run unless allowed below, with a reason.
analyze:
  fail_on: high
  exclude: [tests, .venv]
  # allow:
  #   - {id: B105, reason: "a test fixture, not a real password", until: "2027-01-31"}

# Deployment environments. Uncomment to turn on staging, QA and the canary.
# Commands get the database as $SHIPYARD_DATABASE_URL; {state} is the environment's folder.
# environments:
#   staging:
#     database: "sqlite:///{state}/app.db"
#     migrations: migrations/
#   production:
#     database: "sqlite:///{state}/app.db"
#     migrations: migrations/

# Stage 7, qa: checks against the staging deployment ($SHIPYARD_ENDPOINT).
# Quality: the holdout file's rows with the true value in the label column.
# qa:
#   functional: pytest -q tests/functional
#   load: {rate: 50, duration: 5s, max_error_rate: 0.01}
#   performance: {p95_ms: 100, p99_ms: 250}
#   quality:
#     data: data/holdout.csv
#     label: target
#     metrics: {accuracy: {min: 0.9}}
#     vs_production: {accuracy: {max_drop: 0.01}}

# Stage 8, release: promote the artifact from dev to release and sign it.
# release: {approval: auto}

# Stage 9, canary: production traffic moves in steps; a failing judge rolls back by itself.
# canary:
#   steps: [10, 50, 100]
#   interval: 60s
#   analysis:
#     error_rate: {max: 0.01}
#     latency: {max_increase: 0.5}
#     prediction_drift: {psi_max: 0.2}
#   rollback_window: 1h
"""
