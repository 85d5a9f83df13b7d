"""The `data:` checks: every failure is one sentence naming the file, the column and the rule."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import parse_config
from shipyard.config.schema import DataConfig
from shipyard.data import inspect_data
from shipyard.errors import DataCheckFailed

GOOD = """\
sepal_length,petal_width,species
5.1,0.2,setosa
6.3,1.8,virginica
5.9,1.5,versicolor
"""

RULES = """\
name: tiny
build: {train: x}
model: {serve: m:Model}
data:
  train: data/train.csv
  label: species
  columns:
    sepal_length: {dtype: float, min: 0, max: 20, not_null: true}
    petal_width: {dtype: float, min: 0, max: 10}
    species: {dtype: str, allowed: [setosa, versicolor, virginica]}
"""


def config(text: str = RULES) -> DataConfig:
    data = parse_config(text).data
    assert data is not None
    return data


def project(tmp_path: Path, csv: str, name: str = "train.csv") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / name).write_text(csv)
    return tmp_path


def problems(code: Path, rules: DataConfig) -> list[str]:
    with pytest.raises(DataCheckFailed) as caught:
        inspect_data(code, rules, None)
    return caught.value.problems


def test_good_data_passes_and_is_profiled(tmp_path: Path) -> None:
    report = inspect_data(project(tmp_path, GOOD), config(), None)
    train = report.profiles["train"]
    assert train["file"] == "data/train.csv"
    assert train["rows"] == 3
    assert train["columns"]["sepal_length"]["kind"] == "float"
    assert train["columns"]["species"]["categories"] == {
        "setosa": 1,
        "virginica": 1,
        "versicolor": 1,
    }


def test_a_wrong_type_names_file_column_rule_value_and_row(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD.replace("6.3,", "abc,"))
    assert problems(code, config()) == [
        'data/train.csv: column sepal_length: expected float, found str ("abc", row 2)'
    ]


def test_an_out_of_range_value_names_the_limit_and_row(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD.replace("1.5,", "42.0,"))
    assert problems(code, config()) == [
        "data/train.csv: column petal_width: value 42.0 is above max 10 (row 3)"
    ]


def test_a_value_below_min_names_the_limit(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD.replace("0.2,", "-1.0,").replace("1.8,", "-2.0,"))
    assert problems(code, config()) == [
        "data/train.csv: column petal_width: value -1.0 is below min 0 (row 1; 1 more row)"
    ]


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    code = project(tmp_path, "sepal_length,species\n5.1,setosa\n6.3,virginica\n")
    assert problems(code, config()) == ["data/train.csv: column petal_width is missing"]


def test_the_label_must_exist(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD)
    rules = config(RULES.replace("label: species", "label: target"))
    assert problems(code, rules) == ["data/train.csv: column target is missing"]


def test_rows_min(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD)
    rules = config(RULES.replace("  columns:\n", "  rows: {min: 100}\n  columns:\n"))
    assert problems(code, rules) == ["data/train.csv: 3 rows, fewer than rows.min 100"]


def test_not_null(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD.replace("5.9,", ","))
    assert problems(code, config()) == [
        "data/train.csv: column sepal_length: a value is missing, and not_null is set (row 3)"
    ]


def test_a_gap_is_allowed_without_not_null(tmp_path: Path) -> None:
    report = inspect_data(project(tmp_path, GOOD.replace("1.8,", ",")), config(), None)
    petal = report.profiles["train"]["columns"]["petal_width"]
    assert (petal["missing"], petal["missing_rate"]) == (1, pytest.approx(1 / 3, abs=1e-5))


def test_allowed(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD.replace("virginica", "virginca"))
    assert problems(code, config()) == [
        'data/train.csv: column species: value "virginca" is not one of the allowed values '
        '("setosa", "versicolor", "virginica") (row 2)'
    ]


def test_int_columns_refuse_fractions(tmp_path: Path) -> None:
    code = project(tmp_path, "n,y\n1,a\n2.5,b\n3,c\n")
    rules = config(RULES.split("  label:")[0] + "  columns:\n    n: {dtype: int}\n")
    assert problems(code, rules) == [
        "data/train.csv: column n: expected int, found float (2.5, row 2)"
    ]


def test_every_problem_of_both_files_is_reported_at_once(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD.replace("1.5,", "42.0,"))
    project(tmp_path, GOOD.replace("setosa", "rose"), "holdout.csv")
    rules = config(RULES.replace("  label:", "  holdout: data/holdout.csv\n  label:"))
    with pytest.raises(DataCheckFailed) as caught:
        inspect_data(code, rules, None)
    assert caught.value.problems == [
        "data/train.csv: column petal_width: value 42.0 is above max 10 (row 3)",
        'data/holdout.csv: column species: value "rose" is not one of the allowed values '
        '("setosa", "versicolor", "virginica") (row 1)',
    ]
    assert caught.value.message.startswith("2 data checks failed: data/train.csv: column")


def test_parquet_is_read_with_its_types(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    frame = pd.DataFrame(
        {"sepal_length": [5.1, 6.3], "petal_width": [0.2, 11.0], "species": ["setosa", "virginica"]}
    )
    frame.to_parquet(tmp_path / "data" / "train.parquet")
    rules = config(RULES.replace("data/train.csv", "data/train.parquet"))
    assert problems(tmp_path, rules) == [
        "data/train.parquet: column petal_width: value 11.0 is above max 10 (row 2)"
    ]
    frame.assign(petal_width=[0.2, 1.1]).to_parquet(tmp_path / "data" / "train.parquet")
    report = inspect_data(tmp_path, rules, None)
    assert report.profiles["train"]["columns"]["petal_width"]["max"] == 1.1


def test_a_parquet_column_of_another_type_is_named(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    frame = pd.DataFrame({"sepal_length": [5.1], "petal_width": [0.2], "species": [3]})
    frame.to_parquet(tmp_path / "data" / "train.parquet")
    rules = config(RULES.replace("data/train.csv", "data/train.parquet"))
    assert problems(tmp_path, rules)[0] == (
        "data/train.parquet: column species: expected str, found int (3, row 1)"
    )


def test_a_file_that_is_not_parquet_is_one_sentence(tmp_path: Path) -> None:
    code = project(tmp_path, GOOD, "train.parquet")
    rules = config(RULES.replace("data/train.csv", "data/train.parquet"))
    (found,) = problems(code, rules)
    assert found.startswith("data/train.parquet: cannot be read as Parquet (")


def test_a_file_not_in_the_project_is_one_sentence(tmp_path: Path) -> None:
    assert problems(tmp_path, config()) == ["data/train.csv does not exist in the project"]


def test_an_unreadable_csv_is_one_sentence(tmp_path: Path) -> None:
    code = project(tmp_path, "")
    (found,) = problems(code, config())
    assert found.startswith("data/train.csv: cannot be read as CSV (")
