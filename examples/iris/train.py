"""Train the iris classifier and save it with skops (no pickle)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import skops.io as sio
from iris_model import FEATURES, HYPERPARAMETERS
from iris_model.data import training_split
from sklearn.linear_model import LogisticRegression


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    x_train, x_test, y_train, y_test = training_split()
    model = LogisticRegression(**HYPERPARAMETERS).fit(x_train, y_train)

    args.out.mkdir(parents=True, exist_ok=True)
    sio.dump(model, args.out / "model.skops")
    # The model server warms up on this example before it reports ready.
    example = [dict(zip(FEATURES, map(float, x_test[0]), strict=True))]
    (args.out / "input_example.json").write_text(json.dumps(example))
    metrics = {"accuracy": float(model.score(x_test, y_test))}
    (args.out / "metrics.json").write_text(
        json.dumps({"params": HYPERPARAMETERS, "metrics": metrics})
    )
    print(f"trained LogisticRegression {HYPERPARAMETERS}: test accuracy {metrics['accuracy']:.3f}")


if __name__ == "__main__":
    main()
