"""`shipyard init` on MLflow projects: MLproject, conda.yaml / python_env.yaml, MLflow use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gitrepos import git, make_repo
from shipyard.config import load_config, write_starter
from shipyard.config.mlproject import conda_requirement, fill_parameters, read_mlproject
from shipyard.config.starter import ChangeKind
from shipyard.errors import ConfigError

MLPROJECT = """\
name: tutorial
conda_env: conda.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      l1_ratio: {type: float, default: 0.1}
    command: "python train.py {alpha} {l1_ratio}"
  validate:
    parameters:
      data: path
    command: "python validate.py {data}"
"""

CONDA = """\
name: tutorial
channels: [conda-forge]
dependencies:
  - python=3.11
  - pip
  - setuptools
  - pytorch::pytorch=2.3
  - py-xgboost>=2
  - cudatoolkit=11.8
  - pip:
      - scikit-learn
      - mlflow>=2
      - pandas
"""

TRAIN = "import mlflow\nwith mlflow.start_run():\n    pass\n"


def mlflow_example(tmp_path: Path, **files: str) -> Path:
    defaults = {"MLproject": MLPROJECT, "conda.yaml": CONDA, "train.py": TRAIN}
    return make_repo(tmp_path / "wine", {**defaults, **files})


def test_the_main_entry_point_becomes_the_train_command_with_its_defaults(
    tmp_path: Path,
) -> None:
    starter = write_starter(mlflow_example(tmp_path))
    config = load_config(starter.path)
    text = starter.path.read_text()
    assert config.build.train == "python train.py 0.5 0.1"
    assert "Other entry points: validate." in text.replace("\n# ", " ")
    assert config.python == "3.11"
    assert config.install == "requirements.txt"


def test_conda_packages_are_mapped_and_an_unknown_one_is_a_note(tmp_path: Path) -> None:
    repo = mlflow_example(tmp_path)
    starter = write_starter(repo)
    lines = (repo / "requirements.txt").read_text().splitlines()
    assert lines[0].startswith("# Written by `shipyard init` from conda.yaml")
    assert lines[1:] == ["torch==2.3.*", "xgboost>=2", "scikit-learn", "mlflow>=2", "pandas"]
    notes = [c.text for c in starter.changes if c.kind is ChangeKind.NOTE]
    assert notes == [
        "conda package cudatoolkit (from conda.yaml) has no known PyPI name and was left out; "
        "add its PyPI name to requirements.txt if training needs it"
    ]
    assert "wrote requirements.txt from conda.yaml (5 packages, 1 note)" in [
        c.text for c in starter.changes
    ]


def test_mlflow_use_proposes_the_mlflow_loader_and_no_out_option(tmp_path: Path) -> None:
    starter = write_starter(mlflow_example(tmp_path, **{"conda.yaml": "dependencies: [pip]\n"}))
    config = load_config(starter.path)
    assert config.model.serve != "" and not isinstance(config.model.serve, str)
    assert (config.model.serve.format, config.model.serve.path) == ("mlflow", "model")
    assert "--out" not in config.build.train
    assert "MLflow use found in train.py" in starter.path.read_text().replace("\n# ", " ")


def test_init_says_what_it_wrote_and_changed(tmp_path: Path) -> None:
    repo = mlflow_example(tmp_path, **{".gitignore": "*.pyc\n"})
    starter = write_starter(repo)
    assert [c.line() for c in starter.changes if c.kind is not ChangeKind.NOTE] == [
        "wrote shipyard.yaml: train `python train.py 0.5 0.1`, serve {format: mlflow, path: model}",
        "wrote requirements.txt from conda.yaml (5 packages, 1 note)",
        "appended .shipyard/, mlruns/, mlflow.db to .gitignore",
        "nothing changed in your code",
    ]
    assert (repo / ".gitignore").read_text() == "*.pyc\n.shipyard/\nmlruns/\nmlflow.db\n"


def test_an_existing_requirements_file_is_never_overwritten(tmp_path: Path) -> None:
    repo = mlflow_example(tmp_path, **{"requirements.txt": "mlflow==3.1\n"})
    starter = write_starter(repo)
    assert (repo / "requirements.txt").read_text() == "mlflow==3.1\n"
    assert not any(c.path == "requirements.txt" for c in starter.changes)
    assert load_config(starter.path).install == "requirements.txt"


def test_python_env_yaml_gives_python_and_packages(tmp_path: Path) -> None:
    python_env = "python: 3.11.9\nbuild_dependencies: [pip]\ndependencies: [mlflow, scikit-learn]\n"
    mlproject = MLPROJECT.replace("conda_env: conda.yaml", "python_env: python_env.yaml")
    repo = make_repo(
        tmp_path / "r",
        {"MLproject": mlproject, "python_env.yaml": python_env, "train.py": TRAIN},
    )
    config = load_config(write_starter(repo).path)
    assert config.python == "3.11"
    assert (repo / "requirements.txt").read_text().splitlines()[1:] == ["mlflow", "scikit-learn"]


def test_a_parameter_without_a_default_is_a_todo_that_fails_clearly(tmp_path: Path) -> None:
    mlproject = MLPROJECT.replace("{type: float, default: 0.5}", "float")
    starter = write_starter(mlflow_example(tmp_path, MLproject=mlproject))
    config = load_config(starter.path)
    assert config.build.train.startswith('echo "TODO: give MLproject parameter alpha a value')
    assert config.build.train.endswith("; python train.py {alpha} 0.1")
    assert any(
        c.kind is ChangeKind.NOTE and c.text.startswith("TODO: MLproject parameter alpha")
        for c in starter.changes
    )


def test_unreadable_mlproject_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    broken = "name: x\nentry_points:\n  main:\n    command: [python train.py\n"
    repo = mlflow_example(tmp_path, MLproject=broken)
    with pytest.raises(ConfigError) as caught:
        write_starter(repo)
    assert str(caught.value).startswith("MLproject:5:")
    assert "YAML syntax error" in str(caught.value)
    assert "Fix MLproject" in (caught.value.hint or "")
    assert not (repo / "shipyard.yaml").exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"MLproject": "entry_points: {}\n"}, "MLproject: entry_points: expected at least one"),
        ({"MLproject": "entry_points: [a]\n"}, "MLproject: entry_points: expected a mapping"),
        (
            {"MLproject": "entry_points: {main: {parameters: {}}}\n"},
            "MLproject: entry_points.main.command: expected the entry point's command",
        ),
        ({"conda.yaml": "dependencies: [{pip: oops}]\n"}, "conda.yaml: dependencies.pip:"),
        ({"conda.yaml": "- a list\n"}, "conda.yaml: expected a mapping of keys at the top level"),
        (
            {"MLproject": MLPROJECT.replace("conda.yaml", "env/missing.yaml")},
            "MLproject: conda_env: names env/missing.yaml, which is not in the repository",
        ),
    ],
)
def test_bad_mlflow_files_are_refused_with_the_field(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.").replace("(", r"\(")):
        write_starter(mlflow_example(tmp_path, **files))


@pytest.mark.parametrize(
    ("spec", "requirement"),
    [
        ("scikit-learn", "scikit-learn"),
        ("numpy=1.26", "numpy==1.26.*"),
        ("numpy 1.26", "numpy==1.26.*"),
        ("numpy=1.26.4=py311h64a7726_0", "numpy==1.26.4.*"),
        ("numpy==1.26.4", "numpy==1.26.4"),
        ("pandas >=2, <3", "pandas>=2,<3"),
        ("conda-forge::py-xgboost", "xgboost"),
        ("pytorch", "torch"),
        ("pip", None),
        ("python=3.11", None),
        ("cudatoolkit", None),
    ],
)
def test_conda_specs_as_pip_requirements(spec: str, requirement: str | None) -> None:
    assert conda_requirement(spec) == requirement


def test_placeholders_are_shell_quoted_and_braces_kept() -> None:
    parameters = {"data": {"type": "path", "default": "my data.csv"}, "n": {"default": 3}}
    command, missing = fill_parameters("python t.py {data} {n} {{x}} {other}", parameters)
    assert command == "python t.py 'my data.csv' 3 {x} {other}"
    assert missing == ("other",)


def test_the_only_entry_point_is_used_when_there_is_no_main(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "r", {"MLproject": "entry_points: {fit: {command: python fit.py}}\n"}
    )
    project = read_mlproject(repo)
    assert project is not None and (project.entry_point, project.train) == ("fit", "python fit.py")


def test_a_script_with_an_out_option_still_gets_it(tmp_path: Path) -> None:
    script = "import argparse\np = argparse.ArgumentParser()\np.add_argument('--out')\n"
    config = load_config(write_starter(make_repo(tmp_path / "r", {"train.py": script})).path)
    assert config.build.train == 'python train.py --out "$SHIPYARD_MODEL_DIR"'
    assert isinstance(config.model.serve, str) or config.model.serve.format == "skops"


def test_the_init_command_lists_its_changes_as_json(tmp_path: Path) -> None:
    repo = mlflow_example(tmp_path)
    command = [sys.executable, "-m", "shipyard", "init", str(repo), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["config"] == str(repo / "shipyard.yaml")
    kinds = [(change["kind"], change["path"]) for change in answer["changes"]]
    assert kinds == [
        ("wrote", "shipyard.yaml"),
        ("wrote", "requirements.txt"),
        ("note", None),
        ("appended", ".gitignore"),
        ("unchanged", None),
    ]
    assert git(repo, "status", "--porcelain").splitlines() == [
        "?? .gitignore",
        "?? requirements.txt",
        "?? shipyard.yaml",
    ]
