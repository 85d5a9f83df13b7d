"""The data split shared by training and data/holdout.csv: holdout rows are never trained on."""

from __future__ import annotations

from typing import Any

from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split


def training_split() -> Any:
    iris = load_iris()
    labels = iris.target_names[iris.target]
    return train_test_split(iris.data, labels, test_size=0.3, random_state=7, stratify=labels)
