"""``shipyard init``: a first ``shipyard.yaml`` for an existing repository.

The starter is guessed from what the repository already has (its lock or requirements file,
its name, a ``train.py``, a ``tests/`` folder, an MLflow project's ``MLproject`` and
``conda.yaml``, see ``mlproject.py``) and every section carries a comment, so a user only
edits. Later stages are written commented out: a stage that is not configured is skipped
visibly, and uncommenting one is the whole of turning it on. Init writes only new files and
appends to ``.gitignore``: it never changes the project's code, and it says what it did, one
:class:`Change` each.
"""

from __future__ import annotations

import re
import sys
import textwrap
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml

from shipyard.config import mlproject
from shipyard.config.loader import CONFIG_FILE, parse_config
from shipyard.errors import Conflict, InvalidInput
from shipyard.paths import DEFAULT_STATE_DIR

__all__ = ["Change", "ChangeKind", "Starter", "starter_text", "write_starter"]

_WIDTH = 92
_TRAIN_TODO = 'echo "TODO: set build.train in shipyard.yaml to your training command" >&2; exit 1'
# Where MLflow keeps runs made outside Shipyard (a plain `python train.py`): not for the repo.
_MLFLOW_LOCAL_STORES = ("mlruns/", "mlflow.db")


class ChangeKind(StrEnum):
    WROTE = "wrote"
    APPENDED = "appended"
    NOTE = "note"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Change:
    """One thing init did (or asks the user to do), as one line of its output."""

    kind: ChangeKind
    path: str | None
    text: str

    def line(self) -> str:
        return f"{self.kind}: {self.text}" if self.kind is ChangeKind.NOTE else self.text


@dataclass(frozen=True)
class Starter:
    path: Path  # the shipyard.yaml written
    changes: tuple[Change, ...]


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
    # An install file init writes (from conda.yaml), and what the user should know.
    requirements: mlproject.CondaEnv | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    mlflow: bool = False


def write_starter(repository: Path, *, force: bool = False) -> Starter:
    """Write ``shipyard.yaml`` (and an install file if need be) into ``repository``.

    Refuses to overwrite ``shipyard.yaml`` unless ``force``; never overwrites anything else.
    """
    if not repository.is_dir():
        raise InvalidInput(
            f"{repository} is not a folder", hint="Run `shipyard init` in the repository."
        )
    target = repository / CONFIG_FILE
    if target.exists() and not force:
        raise Conflict(
            f"{target} already exists", hint="Run `shipyard init --force` to replace it."
        )
    guess = guess_project(repository)
    text = render(guess)
    parse_config(text, filename=str(target))  # never hand a user a starter that does not load
    target.write_text(text, encoding="utf-8")
    changes = [Change(ChangeKind.WROTE, CONFIG_FILE, _config_line(guess))]
    changes += _write_requirements(repository, guess)
    changes += [Change(ChangeKind.NOTE, None, note) for note in guess.notes]
    ignored = ignore_state_dir(repository, _MLFLOW_LOCAL_STORES if guess.mlflow else ())
    if ignored:
        changes.append(Change(ChangeKind.APPENDED, ".gitignore", _ignored_line(ignored)))
    changes.append(Change(ChangeKind.UNCHANGED, None, "nothing changed in your code"))
    return Starter(target, tuple(changes))


def _config_line(guess: Guess) -> str:
    return f"wrote {CONFIG_FILE}: train `{guess.train}`, serve {guess.serve}"


def _write_requirements(repository: Path, guess: Guess) -> list[Change]:
    env = guess.requirements
    target = repository / guess.install
    if env is None or target.exists():  # never overwrite the project's own file
        return []
    header = f"# Written by `shipyard init` from {env.source}; pin versions so builds repeat.\n"
    target.write_text(header + "".join(f"{line}\n" for line in env.requirements), "utf-8")
    notes = f", {_count(len(env.notes), 'note')}" if env.notes else ""
    count = f"{_count(len(env.requirements), 'package')}{notes}"
    return [
        Change(
            ChangeKind.WROTE, guess.install, f"wrote {guess.install} from {env.source} ({count})"
        )
    ]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _ignored_line(entries: tuple[str, ...]) -> str:
    return "appended " + ", ".join(entries) + " to .gitignore"


def ignore_state_dir(repository: Path, also: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Append ``.shipyard/`` (and ``also``) to ``.gitignore`` unless ignored; what was added."""
    gitignore = repository / ".gitignore"
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    present = {line.strip().strip("/") for line in text.splitlines()}
    missing = tuple(
        entry for entry in (f"{DEFAULT_STATE_DIR}/", *also) if entry.strip("/") not in present
    )
    if not missing:
        return ()
    separator = "" if not text or text.endswith("\n") else "\n"
    added = "".join(f"{entry}\n" for entry in missing)
    gitignore.write_text(f"{text}{separator}{added}", encoding="utf-8")
    return missing


def starter_text(repository: Path) -> str:
    """The starter file's text for ``repository``."""
    return render(guess_project(repository))


def render(guess: Guess) -> str:
    return "\n".join([_head(guess), _build(guess), _model(guess), _test(guess), _LATER_STAGES])


def guess_project(repository: Path) -> Guess:
    project = mlproject.read_mlproject(repository)
    env = mlproject.read_environment(repository, project.env_file if project else None)
    install, install_note = _install(repository)
    writes = env if env is not None and not (repository / install).exists() else None
    if writes is not None:
        install_note = (
            f"Written by `shipyard init` from {writes.source}: pin versions so builds repeat."
        )
    requirements = writes.requirements if writes else _requirements_in(repository / install)
    found = mlproject.mlflow_use(repository, requirements, writes.source if writes else install)
    train, train_note = _train(repository, project, found is not None)
    serve, serve_note = _serve(repository, found)
    tests = "pytest -q tests" if (repository / "tests").is_dir() else None
    return Guess(
        name=_name(repository),
        python=(env.python if env is not None else None) or _python(repository),
        install=install,
        install_note=install_note,
        train=train,
        train_note=train_note,
        serve=serve,
        serve_note=serve_note,
        tests=tests,
        requirements=writes,
        notes=_notes(project, writes),
        mlflow=found is not None,
    )


def _requirements_in(path: Path) -> tuple[str, ...]:
    if path.suffix not in (".txt", ".lock") or not path.is_file():
        return ()
    return mlproject.requirement_names(path.read_text(encoding="utf-8", errors="replace"))


def _notes(
    project: mlproject.MLProject | None, writes: mlproject.CondaEnv | None
) -> tuple[str, ...]:
    notes = list(writes.notes) if writes is not None else []
    if project is not None and project.missing:
        names = ", ".join(project.missing)
        notes.append(
            f"TODO: MLproject parameter {names} of entry point {project.entry_point} has no "
            "default: give it a value in build.train in shipyard.yaml"
        )
    return tuple(notes)


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


def _train(
    repository: Path, project: mlproject.MLProject | None, uses_mlflow: bool
) -> tuple[str, str]:
    logged = (
        "A model it logs with mlflow.<flavor>.log_model becomes the artifact's model, its run's "
        "params and metrics go into build-info."
        if uses_mlflow
        else ""
    )
    if project is not None:
        return _mlproject_train(project, logged)
    script = repository / "train.py"
    if not script.is_file():
        return (
            _TRAIN_TODO,
            "TODO: the command that trains the model and saves it in $SHIPYARD_MODEL_DIR.",
        )
    text = script.read_text(encoding="utf-8", errors="replace")
    if re.search(r"""["']--out["']""", text):
        note = "train.py must save the model into the folder given (adjust --out if it differs)."
        return 'python train.py --out "$SHIPYARD_MODEL_DIR"', note
    if uses_mlflow or "SHIPYARD_MODEL_DIR" in text:
        return "python train.py", logged or "train.py saves the model into $SHIPYARD_MODEL_DIR."
    note = (
        "train.py takes no --out option: it must save the model into the folder named by "
        "the SHIPYARD_MODEL_DIR environment variable."
    )
    return "python train.py", note


def _mlproject_train(project: mlproject.MLProject, logged: str) -> tuple[str, str]:
    source = (
        f"From MLproject entry point {project.entry_point}, its parameters' defaults filled in."
    )
    others = f"Other entry points: {', '.join(project.others)}." if project.others else ""
    if not project.missing:
        return project.train, " ".join(filter(None, [source, others, logged]))
    names = ", ".join(project.missing)
    todo = (
        f"TODO: parameter {names} has no default: put a value in the command and drop the "
        "echo and exit in front of it."
    )
    failing = f'echo "TODO: give MLproject parameter {names} a value in build.train" >&2; exit 1'
    return f"{failing}; {project.train}", " ".join(filter(None, [source, others, todo, logged]))


def _serve(repository: Path, mlflow_found: str | None) -> tuple[str, str]:
    found = _model_class(repository)
    if found is not None:
        return f"{found[0]}:Model", f"Found class Model in {found[1]}."
    if mlflow_found is not None:
        note = (
            f"MLflow use found in {mlflow_found}: the build puts the model the train command "
            f"logs at `{mlproject.MLFLOW_MODEL_PATH}` in $SHIPYARD_MODEL_DIR, served by MLflow's "
            "pyfunc loader."
        )
        return f"{{format: mlflow, path: {mlproject.MLFLOW_MODEL_PATH}}}", note
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
