"""The iris classifier: four measurements in, a species out."""

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
HYPERPARAMETERS = {"C": 1.0, "max_iter": 500}
