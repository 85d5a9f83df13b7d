"""`shipyard init`'s starter file: guessed from the repository, commented, and loadable."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gitrepos import make_repo
from shipyard.config import load_config, parse_config, write_starter
from shipyard.config.starter import normalise_name
from shipyard.errors import Conflict, InvalidInput

IRIS = Path(__file__).parents[2] / "examples" / "iris"


def test_repository_with_requirements_txt(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "Churn Model",
        {"requirements.txt": "scikit-learn\n", "requirements-dev.txt": "pytest\n", "train.py": ""},
    )
    config = load_config(write_starter(repo).path)
    assert config.name == "churn-model"
    assert config.install == "requirements.txt"
    assert config.build.train == "python train.py"  # it takes no --out option
    assert config.test is None  # no tests/ folder
    assert config.analyze is not None and config.analyze.fail_on == "high"


def test_repository_with_pyproject(tmp_path: Path) -> None:
    pyproject = '[project]\nname = "Fraud_Detector"\nversion = "1"\n'
    repo = make_repo(tmp_path / "checkout", {"pyproject.toml": pyproject, "tests/test_x.py": ""})
    text = write_starter(repo).path.read_text()
    config = parse_config(text)
    assert config.name == "fraud_detector"
    assert config.install == "pyproject.toml"
    assert "uv pip compile pyproject.toml -o requirements.lock" in text
    assert config.test is not None and config.test.run == "pytest -q tests"


def test_repository_with_nothing_still_gets_a_loadable_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "empty", {})
    text = write_starter(repo).path.read_text()
    config = load_config(repo)
    assert config.install == "requirements.txt"
    assert "requirements.txt does not exist yet" in text
    assert config.model.serve != ""  # the skops loader stands in for a class


def test_todo_train_command_fails_clearly(tmp_path: Path) -> None:
    config = load_config(write_starter(make_repo(tmp_path / "r", {})).path)
    done = subprocess.run(
        ["/bin/sh", "-c", config.build.train], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 1
    assert "TODO: set build.train in shipyard.yaml" in done.stderr


@pytest.mark.parametrize(
    ("files", "install"),
    [
        (
            {"requirements.lock": "", "requirements.txt": "", "pyproject.toml": ""},
            "requirements.lock",
        ),
        ({"uv.lock": "", "pyproject.toml": "", "requirements.txt": ""}, "uv.lock"),
        ({"uv.lock": "", "requirements-prod.txt": ""}, "requirements-prod.txt"),
        (
            {"requirements-dev.txt": "", "requirements.txt": "", "pyproject.toml": ""},
            "requirements.txt",
        ),
    ],
)
def test_install_file_preference(tmp_path: Path, files: dict[str, str], install: str) -> None:
    assert load_config(write_starter(make_repo(tmp_path / "r", files)).path).install == install


def test_iris_example_is_recognised(tmp_path: Path) -> None:
    repo = tmp_path / "iris"
    shutil.copytree(IRIS, repo, ignore=shutil.ignore_patterns("shipyard.yaml", ".venv"))
    config = load_config(write_starter(repo).path)
    assert config.model.serve == "iris_model.serve:Model"
    assert (config.name, config.install) == ("iris", "requirements.txt")
    assert config.test is not None


def test_existing_file_is_not_overwritten_without_force(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"shipyard.yaml": "name: mine\n"})
    with pytest.raises(Conflict) as caught:
        write_starter(repo)
    assert "already exists" in str(caught.value)
    assert "--force" in (caught.value.hint or "")
    assert (repo / "shipyard.yaml").read_text() == "name: mine\n"
    write_starter(repo, force=True)
    assert load_config(repo).name == "r"


def test_not_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is not a folder"):
        write_starter(tmp_path / "missing")


def test_gitignore_is_created(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {})
    write_starter(repo)
    assert (repo / ".gitignore").read_text() == ".shipyard/\n"


def test_gitignore_is_appended_once(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {".gitignore": "build/\n*.pyc"})
    write_starter(repo)
    write_starter(repo, force=True)
    assert (repo / ".gitignore").read_text() == "build/\n*.pyc\n.shipyard/\n"


def test_gitignore_already_ignoring_state_is_left_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {".gitignore": "/.shipyard\n"})
    write_starter(repo)
    assert (repo / ".gitignore").read_text() == "/.shipyard\n"


def test_every_section_is_commented(tmp_path: Path) -> None:
    text = write_starter(make_repo(tmp_path / "r", {})).path.read_text()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#? ?[a-z_]+:", line) and not line.startswith("#  "):
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"
    assert all(len(line) <= 100 for line in lines)


def test_commented_stages_load_once_uncommented(tmp_path: Path) -> None:
    """The examples a user uncomments must be valid, or init teaches a broken file."""
    text = write_starter(make_repo(tmp_path / "r", {"tests/test_a.py": ""})).path.read_text()
    config_line = re.compile(r"^( *)# ( *[a-z_]+:| +- )")
    uncommented = "\n".join(config_line.sub(r"\1\2", line) for line in text.splitlines())
    config = parse_config(uncommented)
    assert set(config.environments) == {"staging", "production"}
    assert config.qa is not None and config.qa.quality is not None
    assert config.canary is not None and config.canary.steps == [10, 50, 100]
    assert config.release is not None
    assert config.analyze is not None and config.analyze.allow[0].id == "B105"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("My Project", "my-project"),
        ("__init__", "init"),
        ("a" * 80, "a" * 63),
        ("!!!", "project"),
        ("x.y_z-1", "x.y_z-1"),
        ("Ünïcode", "n-code"),
    ],
)
def test_names_are_normalised_to_the_pattern(text: str, name: str) -> None:
    assert normalise_name(text) == name
