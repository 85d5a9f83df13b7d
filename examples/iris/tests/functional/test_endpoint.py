"""Functional tests against the deployed model: Shipyard sets SHIPYARD_ENDPOINT."""

import os

import httpx
import pytest

ENDPOINT = os.environ.get("SHIPYARD_ENDPOINT")
pytestmark = pytest.mark.skipif(not ENDPOINT, reason="SHIPYARD_ENDPOINT is not set")


def test_ready() -> None:
    assert httpx.get(f"{ENDPOINT}/v2/health/ready").status_code == 200


def test_invocations_returns_a_species() -> None:
    body = {
        "dataframe_split": {
            "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "data": [[5.1, 3.5, 1.4, 0.2]],
        }
    }
    response = httpx.post(f"{ENDPOINT}/invocations", json=body)
    assert response.status_code == 200
    assert response.json()["predictions"] == ["setosa"]


def test_bad_input_is_refused_not_crashing() -> None:
    response = httpx.post(
        f"{ENDPOINT}/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[1]]}}
    )
    assert response.status_code in (400, 422)
