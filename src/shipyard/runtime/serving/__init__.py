"""The model server: one model version behind the Open Inference Protocol and MLflow scoring.

This package runs under the *artifact's* interpreter, not Shipyard's
(``<env>/bin/python .../runtime/serving --model-dir D --serve SPEC ...``), so it imports nothing
from ``shipyard``: only the standard library and ``SERVING_REQUIREMENTS`` (Starlette, uvicorn
with httptools and uvloop, prometheus-client), which the pipeline installs into every artifact
environment. Model libraries (numpy, skops, onnxruntime, mlflow) are imported by the loader
that needs them, from the project's own requirements.

Modules, in the order a request meets them::

    server.py       command line, worker processes sharing the listening socket
    connections.py  limits on a request head: size, header count, time (414/431/408)
    app.py          Starlette routes, the version header and metrics wrappers, readiness
    decoding.py     body bytes to JSON values: size, UTF-8, depth, duplicates, float64 range
    protocol.py     request bodies (MLflow scoring, OIP tensors, CSV) to records, and back
    signature.py    the model's input schema: 422 naming the field that does not fit
    batching.py     adaptive batching: one predict call for the requests that wait together
    loaders.py      skops, ONNX, MLflow pyfunc, pickle/joblib (signed artifacts only), a class
    metrics.py      Prometheus metrics, aggregated across workers
    errors.py       HTTPError, the one exception a handler raises
"""
