"""The iris data: data/train.csv to train on, data/holdout.csv (never trained on) to test.

Shipyard checks and profiles both files before training (`data:` in shipyard.yaml).
"""

from __future__ import annotations

import csv
from pathlib import Path

from iris_model import FEATURES

DATA = Path(__file__).resolve().parents[1] / "data"
LABEL = "species"


def read(name: str) -> tuple[list[list[float]], list[str]]:
    """The features and the labels of one data file."""
    with (DATA / name).open(newline="") as file:
        rows = list(csv.DictReader(file))
    return [[float(row[f]) for f in FEATURES] for row in rows], [row[LABEL] for row in rows]


def training_split() -> tuple[list[list[float]], list[list[float]], list[str], list[str]]:
    x_train, y_train = read("train.csv")
    x_test, y_test = read("holdout.csv")
    return x_train, x_test, y_train, y_test
