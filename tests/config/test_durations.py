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
        (0, 0.0),
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
