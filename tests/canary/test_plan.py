"""A canary's steps as written in shipyard.yaml, and the plan a rollout stores."""

from __future__ import annotations

import pytest

from shipyard.canary.rollout import plan_steps
from shipyard.config.loader import parse_config
from shipyard.config.schema import CanaryConfig
from shipyard.errors import ConfigError

BASE = "name: iris\nbuild: {train: python train.py}\nmodel: {serve: m:Model}\ncanary:\n"


def test_steps_mix_percentages_pauses_and_a_manual_hold() -> None:
    settings = CanaryConfig.model_validate(
        {
            "steps": [10, {"weight": 25, "pause": "30s"}, {"pause": "manual"}, 100],
            "interval": "5s",
            "shadow": {"percent": 10},
        }
    )
    assert settings.plan() == [(10, 5.0), (25, 30.0), (25, "manual"), (100, 5.0)]
    assert plan_steps(settings) == [
        {"weight": 0, "pause": 5.0, "shadow": 10.0},
        {"weight": 10, "pause": 5.0},
        {"weight": 25, "pause": 30.0},
        {"weight": 25, "pause": "manual"},
    ]


@pytest.mark.parametrize(
    ("steps", "line", "expected"),
    [
        ("[10, {weight: 5}]", 5, "canary.steps: expected increasing percentages"),
        ("[{pause: manual}, 50]", 5, "expected a weight in the first step"),
        ("[10, {weight: 20, pause: soon}]", 5, "canary.steps[1].pause: expected a duration"),
        ("[10, {wait: 5s}]", 5, "canary.steps[1].wait: unknown key"),
        ("[10, 150]", 5, "canary.steps[1]: expected a number of at most 100 (got 150)"),
    ],
)
def test_bad_steps_name_the_line_and_what_was_expected(
    steps: str, line: int, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"{BASE}  steps: {steps}\n", "shipyard.yaml")
    assert any(
        p.startswith(f"shipyard.yaml:{line}") and expected in p for p in caught.value.problems
    ), caught.value.problems


def test_a_shadow_share_must_be_a_percentage() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"{BASE}  shadow: {{percent: 0}}\n", "shipyard.yaml")
    assert "canary.shadow.percent" in caught.value.problems[0]
