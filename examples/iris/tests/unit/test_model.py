import subprocess
import sys
from pathlib import Path

import pytest
from iris_model.serve import Model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    out = tmp_path_factory.mktemp("model")
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--out", str(out)], check=True, cwd=ROOT
    )
    return Model(str(out))


def test_predicts_one_species_per_record(model: Model) -> None:
    records = [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
    ]
    assert model.predict(records) == ["setosa", "virginica"]


def test_missing_feature_is_an_error(model: Model) -> None:
    with pytest.raises(KeyError):
        model.predict([{"sepal_length": 5.1}])
