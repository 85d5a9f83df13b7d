"""Durations: the few spellings a user writes, and clear refusals for the rest."""

from __future__ import annotations

import pytest

from shipyard.config import parse_config, parse_duration
from shipyard.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20s", 20.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        (" 7 s ", 7.0),
        (30, 30.0),
        (0.5, 0.5),
        ("45", 45.0),
        ("168h", 7 * 86400.0),
    ],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5d", "-5s", "1h30m", True, None, [5], ""])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 20s, 5m or 1h"):
        parse_duration(bad)


def test_negative_number_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(-1)


def test_duration_error_in_a_file_names_field_and_value() -> None:
    text = "name: a\nbuild:\n  train: x\n  timeout: 5 days\nmodel: {serve: a:B}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.problems == [
        "shipyard.yaml:4: build.timeout: expected a duration such as 20s, 5m or 1h (got '5 days')"
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("0s", "expected a duration such as 20s, 5m or 1h, above 0"),
        (0, "expected a duration such as 20s, 5m or 1h, above 0"),
        ("8d", "expected a duration such as 20s, 5m or 1h"),
        ("1e9s", "expected a duration such as 20s, 5m or 1h"),
        ("169h", "expected a duration of at most 7 days (168h)"),
        (1e9, "expected a duration of at most 7 days (168h)"),
        pytest.param(10**400, "expected a duration of at most 7 days (168h)", id="10**400"),
        pytest.param("9" * 400 + "s", "expected a duration of at most 7 days (168h)", id="9**400s"),
        (float("inf"), "expected a duration of at most 7 days (168h)"),
        (float("nan"), "expected a duration such as 20s, 5m or 1h"),
    ],
)
def test_durations_are_above_zero_and_at_most_a_week(bad: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(bad)
    assert str(caught.value) == message


CONFIG = """\
name: a
build:
  train: x
  timeout: 20m
model:
  serve: a:B
  serving: {{max_batch_wait: 0}}
canary:
  steps: [10, {{weight: 50, pause: {pause}}}, 100]
  interval: {interval}
  rollback_window: {window}
"""


def test_every_duration_in_a_file_is_bounded_and_named_by_line() -> None:
    text = CONFIG.format(pause="0s", interval="-5s", window=".inf")
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.problems == [
        "shipyard.yaml:9: canary.steps[1].pause: "
        "expected a duration such as 20s, 5m or 1h, above 0 (got '0s')",
        "shipyard.yaml:10: canary.interval: expected a duration such as 20s, 5m or 1h (got '-5s')",
        "shipyard.yaml:11: canary.rollback_window: "
        "expected a duration of at most 7 days (168h) (got Infinity)",
    ]


def test_absurd_numbers_are_refused_at_load() -> None:
    text = CONFIG.format(pause="1e9", interval="8d", window=10**30)
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert [p.split(": ", 1)[1].split(":")[0] for p in caught.value.problems] == [
        "canary.steps[1].pause",
        "canary.interval",
        "canary.rollback_window",
    ]
    assert all("expected a duration" in problem for problem in caught.value.problems)


def test_a_wait_of_zero_and_a_month_old_database_limit_are_still_fine() -> None:
    config = parse_config(
        CONFIG.format(pause="5m", interval="1m", window="7 h")
        + "analyze:\n  vulnerabilities: {max_age: 30}\n"
    )
    assert config.model.serving.max_batch_wait == 0
    assert config.canary is not None and config.canary.rollback_window == 7 * 3600
