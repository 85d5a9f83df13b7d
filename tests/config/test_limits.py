"""Hostile or mistaken files are refused when loaded: alias bombs, huge files, escaping paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import load_config, parse_config
from shipyard.config.loader import MAX_BYTES, MAX_VALUES
from shipyard.errors import ConfigError

VALID = "name: a\nbuild:\n  train: python train.py\nmodel:\n  serve: a:B\n"


def alias_bomb(levels: int) -> str:
    """A "billion laughs": each level lists the one above nine times (9**levels strings)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        above = ",".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{above}]")
    bomb = "\n".join(f"  {line}" for line in lines)
    return f"{VALID}lols:\n{bomb}\nanalyze:\n  secrets:\n    exclude: *l{levels - 1}\n"


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


@pytest.mark.timeout(10)  # a guard: the refusal takes milliseconds (see the report)
@pytest.mark.parametrize("levels", [6, 9])
def test_an_alias_bomb_is_refused_before_it_is_expanded(levels: int) -> None:
    text = alias_bomb(levels)
    assert levels < 9 or len(text) <= 1100  # the classic: about 1 KB for 387 million strings
    assert problem(text) == (
        f"shipyard.yaml:11: more than {MAX_VALUES} values, counting each use of a YAML "
        "alias (*name); use fewer aliases"
    )


def test_an_alias_inside_what_it_names_is_refused() -> None:
    text = f"{VALID}analyze:\n  secrets:\n    exclude: &loop [x, *loop]\n"
    assert problem(text) == (
        "shipyard.yaml:8: a YAML alias (*name) refers to the mapping or list it is in"
    )


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    text = (
        f"{VALID}environments:\n"
        "  staging: &env {migrations: db/migrations, config: conf/app.yaml}\n"
        "  production:\n    <<: *env\n    port: 8800\n"
    )
    config = parse_config(text)
    assert config.environments["production"].migrations == "db/migrations"
    assert config.environments["production"].port == 8800


def test_a_file_over_the_size_limit_is_refused_from_text_as_from_disk(tmp_path: Path) -> None:
    text = VALID + "#" * MAX_BYTES + "\n"
    expected = f"shipyard.yaml:1: the file is larger than {MAX_BYTES} bytes"
    assert problem(text) == expected
    (tmp_path / "shipyard.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.problems == [
        expected.replace("shipyard.yaml", str(tmp_path / "shipyard.yaml"))
    ]


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    text = f"{VALID}x: " + "[" * 5000 + "]" * 5000 + "\n"
    assert problem(text) == "shipyard.yaml:1: the file nests mappings or lists too deeply"


ESCAPING = f"""{VALID}install: ../requirements.txt
environments:
  production:
    migrations: /etc
    config: conf/../../secrets.yaml
qa:
  quality:
    data: ~/holdout.csv
    label: y
canary:
  traffic:
    data: C:/data/rows.csv
"""


def test_paths_that_leave_the_project_are_refused_at_load_with_line_and_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(ESCAPING)
    outside = "expected a path inside the project, relative to its root"
    climbs = "expected a path inside the project (this `..` leads out of it)"
    assert caught.value.problems == [
        f"shipyard.yaml:6: install: {climbs} (got '../requirements.txt')",
        f"shipyard.yaml:9: environments.production.migrations: {outside} (got '/etc')",
        f"shipyard.yaml:10: environments.production.config: {climbs} "
        "(got 'conf/../../secrets.yaml')",
        f"shipyard.yaml:13: qa.quality.data: {outside} (got '~/holdout.csv')",
        f"shipyard.yaml:17: canary.traffic.data: {outside} (got 'C:/data/rows.csv')",
    ]


def test_paths_inside_the_project_load_even_with_a_dot_dot_that_stays_inside() -> None:
    text = ESCAPING.replace("../requirements.txt", "requirements.txt")
    text = text.replace("/etc", "db/migrations").replace("conf/../../", "conf/../")
    text = text.replace("~/holdout.csv", "data/holdout.csv")
    config = parse_config(text.replace("C:/data/rows.csv", "./data/rows.csv"))
    production = config.environments["production"]
    assert (production.migrations, production.config) == ("db/migrations", "conf/../secrets.yaml")
