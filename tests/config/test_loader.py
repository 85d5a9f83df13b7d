"""Loading shipyard.yaml: good files load, every bad file names its line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import load_config, parse_config
from shipyard.config.schema import LoaderConfig
from shipyard.errors import ConfigError

HERE = Path(__file__).parent
BAD = HERE / "bad"
GOOD = HERE / "good"
IRIS = HERE.parents[1] / "examples" / "iris" / "shipyard.yaml"

# file -> (line, field path, expected text): each must appear in one problem line.
BAD_FILES = {
    "unknown_key.yaml": (7, "canery", "unknown key; expected one of name, python"),
    "nested_unknown_key.yaml": (4, "build.trian", "did you mean 'train'?"),
    "missing_required.yaml": (5, "build.train", "field required: build.train (command that"),
    "wrong_type.yaml": (7, "qa.load.rate", "expected a number (got a string: 'fast')"),
    "bad_enum.yaml": (7, "analyze.fail_on", "expected one of: low, medium, high or critical"),
    "bad_duration.yaml": (7, "canary.interval", "expected a duration such as 20s, 5m or 1h"),
    "bad_name.yaml": (2, "name", "expected a name of lower case letters, digits"),
    "steps_not_increasing.yaml": (
        7,
        "canary.steps",
        "expected increasing percentages, e.g. [10, 25, 50, 100] (got [50, 20])",
    ),
    "duplicate_key.yaml": (7, "build", "duplicate key (first at line 3)"),
    "syntax_error.yaml": (4, "", "4:2: YAML syntax error"),
    "empty.yaml": (1, "", "the file is empty; expected a mapping"),
    "not_mapping.yaml": (2, "", "expected a mapping of keys at the top level (got a list"),
    "unquoted_python.yaml": (3, "python", 'expected a quoted Python version such as "3.11"'),
    "bad_serve.yaml": (5, "model.serve", "expected `module.path:ClassName`"),
    "bad_loader.yaml": (
        6,
        "model.serve.format",
        "expected one of: skops, onnx, mlflow, pickle or joblib (got 'tensorflow')",
    ),
    "bad_environment.yaml": (7, "environments.Production", "expected a name of lower case"),
    "unknown_metric.yaml": (10, "qa.quality.metrics.acuracy", "did you mean 'accuracy'?"),
    "tab_indent.yaml": (4, "", "indent with spaces, not tabs"),
    "bad_date.yaml": (8, "analyze.allow[1].until", "expected a date as YYYY-MM-DD"),
    "bad_data_file.yaml": (6, "data.train", "expected a CSV (.csv) or Parquet (.parquet, .pq)"),
    "bad_data_rule.yaml": (
        9,
        "data.columns.species",
        "expected no min or max for a str column (numbers only)",
    ),
}


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    lines = str(caught.value).splitlines()
    assert lines == problems if len(problems) == 1 else lines[1:] == problems
    return problems


def test_every_bad_file_has_a_case() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted([*BAD_FILES, "many_problems.yaml"])


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_names_line_field_and_expectation(name: str) -> None:
    line, field, expected = BAD_FILES[name]
    prefix = f"{BAD / name}:{line}"
    problems = problems_of(BAD / name)
    matching = [p for p in problems if p.startswith(prefix) and expected in p]
    assert matching, f"no problem at line {line} saying {expected!r}: {problems}"
    assert field in matching[0]
    assert all(p.startswith(f"{BAD / name}:") for p in problems)


def test_loader_error_reports_only_the_branch_the_user_meant() -> None:
    problems = problems_of(BAD / "bad_loader.yaml")
    assert not any("expected a string" in p for p in problems)
    assert any(":5: field required: model.serve.path" in p for p in problems)
    assert any(
        ":7: model.serve.file: unknown key; expected one of format, path" in p for p in problems
    )


def test_all_problems_are_reported_in_line_order() -> None:
    problems = problems_of(BAD / "many_problems.yaml")
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == [2, 5, 10, 12]
    assert "build.timeout: expected a duration" in problems[1]
    assert "test.retries: unknown key; expected one of run, timeout" in problems[2]
    assert "canary.steps[1]: expected a number of at most 100 (got 150)" in problems[3]


def test_message_lists_every_problem_one_per_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(BAD / "many_problems.yaml")
    message = str(caught.value)
    assert message.splitlines()[0].endswith("has 4 problems:")
    assert message.splitlines()[1:] == caught.value.problems
    assert "shipyard schema" in (caught.value.hint or "")


def test_duplicate_keys_are_found_at_any_depth() -> None:
    text = "name: a\nbuild: {train: x, train: y}\nmodel:\n  serve: a:B\n  serve: a:C\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.problems == [
        "shipyard.yaml:2: build.train: duplicate key (first at line 2); "
        "YAML keeps only the last, remove one",
        "shipyard.yaml:5: model.serve: duplicate key (first at line 4); "
        "YAML keeps only the last, remove one",
    ]


def test_parse_config_uses_the_given_filename() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("name: a\n", filename="abc123:shipyard.yaml")
    assert caught.value.problems[0].startswith("abc123:shipyard.yaml:1: field required: build")


def test_missing_top_level_fields_point_at_the_first_key_and_say_what_they_are() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('# nothing useful\npython: "3.11"\n')
    assert caught.value.problems == [
        "shipyard.yaml:2: field required: build (the build stage: trains the model)",
        "shipyard.yaml:2: field required: model (how the trained model is served)",
        "shipyard.yaml:2: field required: name (project name: lower-case letters and digits, joined by single . _ or -)",
    ]


def test_a_section_left_empty_says_a_mapping_is_expected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("name: a\nbuild:\nmodel: {serve: a:B}\n")
    assert caught.value.problems == [
        "shipyard.yaml:2: build: expected a mapping of keys to values (got nothing)"
    ]


def test_missing_file_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"no shipyard.yaml in {tmp_path}; run `shipyard init`"
    with pytest.raises(ConfigError, match=r"no shipyard\.yaml in"):
        load_config(tmp_path / "shipyard.yaml")


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_bytes(b"name: a\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"shipyard.yaml:2: the file is not UTF-8 text"):
        load_config(tmp_path)


def test_iris_example_loads() -> None:
    config = load_config(IRIS)
    assert config.name == "iris"
    assert config.build.timeout == 300.0
    assert config.canary is not None and config.canary.steps == [20, 50, 100]
    assert config.environments["production"].port == 8787
    assert config.model_name == "iris"


def test_folder_or_file_both_load() -> None:
    assert load_config(IRIS.parent) == load_config(IRIS)


def test_minimal_file_gets_defaults() -> None:
    config = load_config(GOOD / "minimal.yaml")
    assert config.model.serve == LoaderConfig(format="skops", path="model.skops")
    assert (config.python, config.install, config.build.timeout) == (
        "3.11",
        "requirements.txt",
        1800.0,
    )
    assert config.test is None and config.qa is None and config.canary is None


def test_full_file_loads_every_section() -> None:
    config = load_config(GOOD / "full.yaml")
    assert config.model_name == "fraud"
    assert config.analyze is not None
    assert config.analyze.allow[0].until == "2027-01-31"  # unquoted dates stay text
    assert config.analyze.timeout == 600.0
    assert config.qa is not None and config.qa.quality is not None
    assert set(config.qa.quality.metrics) == {"f1_macro", "accuracy"}
    assert config.canary is not None
    assert (config.canary.interval, config.canary.rollback_window) == (0.25, 7200.0)
    assert config.canary.analysis.latency == {"max_increase": 0.2}


def test_keys_yaml_does_not_read_as_text_are_named_as_written() -> None:
    text = "name: a\nbuild: {train: x}\nmodel: {serve: a:B}\ncanary:\n  on: 1\n5: x\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.problems == [
        "shipyard.yaml:5: canary.on: expected a text key; "
        "YAML reads on, off, yes and no as true/false, so quote it",
        "shipyard.yaml:6: 5: expected a text key (got a number: 5); quote it",
    ]


def test_syntax_error_in_a_flow_value_suggests_quoting() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("name: a\nbuild:\n  train: echo a: b\n")
    assert caught.value.problems[0].startswith("shipyard.yaml:3:16: YAML syntax error")
    assert "quote a value that contains ': '" in caught.value.problems[0]


def test_more_than_one_document_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"shipyard\.yaml:2:1: .*remove the extra `---`"):
        parse_config("name: a\n---\nname: b\n")
