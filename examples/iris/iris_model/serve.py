"""The class Shipyard serves: built once with the model directory, then asked for batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

from iris_model import FEATURES

# The exact types the trained model is made of. skops refuses a file that names any other
# type, so a swapped model.skops cannot make the server import something it did not expect.
TRUSTED_TYPES = ["sklearn.linear_model._logistic.LogisticRegression", "numpy.dtype"]


class Model:
    def __init__(self, model_dir: str) -> None:
        path = Path(model_dir) / "model.skops"
        self.model = sio.load(path, trusted=TRUSTED_TYPES)

    def predict(self, records: list[dict[str, Any]]) -> list[str]:
        rows = np.array([[float(record[name]) for name in FEATURES] for record in records])
        return [str(label) for label in self.model.predict(rows)]
