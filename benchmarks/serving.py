"""Serving: Shipyard's model server against `mlflow models serve`, and the gateway's cost.

Not a test: it downloads MLflow into a venv of its own and loads 127.0.0.1 for a few minutes.
Run it from the repository root:

    .venv/bin/python benchmarks/serving.py [--duration 10] [--cache DIR]

The same iris LogisticRegression (trained by the example's own code, with the same
scikit-learn version on both sides) is served by

* Shipyard's model server in the artifact environment the pipeline would build (skops loader,
  ``SERVING_REQUIREMENTS``), with 1 and 2 workers, batching on; and with batching off;
* ``mlflow models serve --env-manager local -w N`` from a uv venv with ``mlflow``, the model
  saved with ``mlflow.sklearn.save_model`` and a signature, so both servers check the input;
* Shipyard's gateway in front of the 1-worker server, against calling that server directly.

Load: ``wrk -t1 -c16 --latency`` with a Lua script posting one ``dataframe_split`` row to
``/invocations`` when wrk is installed, else the bundled asyncio generator below (keep-alive
connections, one request in flight per connection). The servers compared with each other run
at the same time (an idle server costs no CPU) and are loaded in turns, two rounds each, so
a noisy neighbour hits both alike. Goals from
issue 4: >= 5x MLflow's throughput and <= 1/10 of its p99 at equal workers; the gateway keeps
>= 0.7 of direct throughput; batching raises throughput at -c16 and -c64.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from shipyard.executor import LocalExecutor, PythonEnv
from shipyard.paths import StateDir
from shipyard.pipeline.context import free_port
from shipyard.runtime.interface import SERVING_REQUIREMENTS, Backend, ServerSpec
from shipyard.runtime.local import LocalRuntime

REPO = Path(__file__).resolve().parent.parent
IRIS = REPO / "examples" / "iris"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BODY = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[5.1, 3.5, 1.4, 0.2]]}})

SAVE_MLFLOW_MODEL = """
import sys
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from iris_model import FEATURES, HYPERPARAMETERS
from iris_model.data import training_split

x_train, _, y_train, _ = training_split()
frame = pd.DataFrame(x_train, columns=FEATURES)
model = LogisticRegression(**HYPERPARAMETERS).fit(frame, y_train)
signature = infer_signature(frame, model.predict(frame))
# Naming the requirements spares MLflow from inferring them (a slow subprocess).
mlflow.sklearn.save_model(model, sys.argv[1], signature=signature, pip_requirements=[])
"""


@dataclass(frozen=True)
class Result:
    server: str
    workers: int
    batching: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# --- load generators ---------------------------------------------------------------------------


def load(url: str, connections: int, duration: float) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, failed requests) of POSTing BODY to ``url``."""
    if shutil.which("wrk"):
        return load_with_wrk(url, connections, duration)
    return asyncio.run(load_with_asyncio(url, connections, duration))


def load_with_wrk(url: str, connections: int, duration: float) -> tuple[float, float, float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(BODY)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration:g}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = wrk_ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = wrk_ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    failed += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, p50, p99, failed


def wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def load_with_asyncio(
    url: str, connections: int, duration: float
) -> tuple[float, float, float, int]:
    """wrk's model without wrk: keep-alive connections, one request in flight on each."""
    parsed = httpx.URL(url)
    request = (
        f"POST {parsed.raw_path.decode()} HTTP/1.1\r\nHost: {parsed.host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n{BODY}"
    ).encode()
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + duration

    async def client() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status = (await reader.readline()).split()[1]
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            failed += status != b"200"
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return len(latencies) / elapsed, percentile(0.50), percentile(0.99), failed


# --- servers ----------------------------------------------------------------------------------------


def build_envs(executor: LocalExecutor, root: Path) -> tuple[PythonEnv, PythonEnv]:
    artifact = executor.python_env(IRIS / "requirements.txt", PYTHON, SERVING_REQUIREMENTS)
    sklearn = subprocess.run(
        [str(artifact.python), "-c", "import sklearn; print(sklearn.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    requirements = root / "mlflow-requirements.txt"
    requirements.write_text(f"mlflow\nscikit-learn=={sklearn}\n")
    return artifact, executor.python_env(requirements, PYTHON)


def train(artifact: PythonEnv, mlflow: PythonEnv, root: Path) -> tuple[Path, Path]:
    env = {**os.environ, "PYTHONPATH": str(IRIS)}
    model_dir = root / "model"
    subprocess.run(
        [str(artifact.python), str(IRIS / "train.py"), "--out", str(model_dir)],
        env=env,
        check=True,
        capture_output=True,
    )
    mlflow_dir = root / "mlflow-model"
    subprocess.run(
        [str(mlflow.python), "-c", SAVE_MLFLOW_MODEL, str(mlflow_dir)],
        env=env,
        check=True,
        capture_output=True,
    )
    return model_dir, mlflow_dir


@contextlib.contextmanager
def shipyard_server(
    runtime: LocalRuntime,
    artifact: PythonEnv,
    model_dir: Path,
    root: Path,
    workers: int,
    batch: int,
) -> Iterator[str]:
    spec = ServerSpec(
        version="1",
        python=artifact.python,
        code_dir=IRIS,
        model_dir=model_dir,
        serve={"format": "skops", "path": "model.skops"},
        model_name="iris",
        log=root / "logs" / f"shipyard-{workers}-{batch}.log",
        workers=workers,
        max_batch_size=batch,
    )
    server = runtime.start_server(spec, ready_timeout=120)
    try:
        yield server.endpoint
    finally:
        runtime.stop_server(server.pid)


@contextlib.contextmanager
def mlflow_server(mlflow: PythonEnv, model_dir: Path, root: Path, workers: int) -> Iterator[str]:
    port = free_port()
    command = [str(mlflow.bin / "mlflow"), "models", "serve", "-m", str(model_dir)]
    command += ["--env-manager", "local", "-w", str(workers), "-h", "127.0.0.1", "-p", str(port)]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{mlflow.bin}{os.pathsep}{env.get('PATH', '')}"
    log = (root / "logs" / f"mlflow-{workers}.log").open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not answers(f"{endpoint}/ping"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mlflow models serve did not start; see {log.name}")
            time.sleep(0.2)
        yield endpoint
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def gateway(runtime: LocalRuntime, root: Path, endpoint: str) -> Iterator[str]:
    env_dir = root / "environments" / "bench" / "production"
    url = runtime.ensure_gateway(env_dir, free_port())
    try:
        runtime.set_routes(env_dir, [Backend("1", endpoint, 100)], "bench")
        yield url
    finally:
        runtime.stop_gateway(env_dir)


# --- the run --------------------------------------------------------------------------------------


def measure(
    name: str, workers: int, batching: str, url: str, connections: int, seconds: float
) -> Result:
    rps, p50, p99, failed = load(f"{url}/invocations", connections, seconds)
    return Result(name, workers, batching, connections, rps, p50, p99, failed)


def alternate(
    servers: dict[str, tuple[str, int, str]], connections: int, duration: float, rounds: int = 2
) -> list[Result]:
    """Each server for ``duration`` in all, taken in turns, so a noisy neighbour hits all alike.

    ``servers`` maps a label to (url, workers, batching). Rates are averaged over the rounds,
    and so are the percentiles (an approximation: the rounds are equally long).
    """
    for url, _, _ in servers.values():
        load(f"{url}/invocations", connections, min(2.0, duration))  # warm connections, workers
    runs: dict[str, list[Result]] = {label: [] for label in servers}
    for _ in range(rounds):
        for label, (url, workers, batching) in servers.items():
            runs[label].append(
                measure(label, workers, batching, url, connections, duration / rounds)
            )
    results = []
    for label, taken in runs.items():
        result = Result(
            label,
            taken[0].workers,
            taken[0].batching,
            connections,
            sum(r.rps for r in taken) / rounds,
            sum(r.p50_ms for r in taken) / rounds,
            sum(r.p99_ms for r in taken) / rounds,
            sum(r.errors for r in taken),
        )
        print(
            f"  {label:<18} w{result.workers} batching {result.batching:<3} -c{connections:<3}"
            f" {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms",
            flush=True,
        )
        results.append(result)
    return results


def run(options: argparse.Namespace, root: Path) -> list[Result]:
    cache = options.cache or root / "cache"
    executor = LocalExecutor(StateDir(root / "state", cache=cache).ensure())
    print("building environments (the first run downloads MLflow) ...", flush=True)
    artifact, mlflow = build_envs(executor, root)
    model_dir, mlflow_dir = train(artifact, mlflow, root)
    runtime = LocalRuntime()
    duration, results = options.duration, []
    for workers in (1, 2):
        with (
            shipyard_server(runtime, artifact, model_dir, root, workers, 32) as ours,
            mlflow_server(mlflow, mlflow_dir, root, workers) as theirs,
        ):
            peers = {"shipyard": (ours, workers, "on"), "mlflow": (theirs, workers, "-")}
            results += alternate(peers, 16, duration)
    with (
        shipyard_server(runtime, artifact, model_dir, root, 1, 32) as on,
        shipyard_server(runtime, artifact, model_dir, root, 1, 1) as off,
    ):
        for connections in (16, 64):
            pair = {"shipyard": (on, 1, "on"), "shipyard-unbatched": (off, 1, "off")}
            results += alternate(pair, connections, duration)
        with gateway(runtime, root, on) as through:
            pair = {"direct": (on, 1, "on"), "gateway": (through, 1, "on")}
            results += alternate(pair, 16, duration)
    return results


def report(results: list[Result]) -> None:
    def find(server: str, workers: int = 1, connections: int = 16) -> Result:
        return next(
            r
            for r in results
            if (r.server, r.workers, r.connections) == (server, workers, connections)
        )

    print()
    print(
        f"{'server':<18} {'workers':>7} {'batching':>8} {'conns':>5} {'req/s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'failed':>6}"
    )
    for r in results:
        print(
            f"{r.server:<18} {r.workers:>7} {r.batching:>8} {r.connections:>5} {r.rps:>8.0f} "
            f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.errors:>6}"
        )
    print()
    for workers in (1, 2):
        ours, theirs = find("shipyard", workers), find("mlflow", workers)
        print(
            f"shipyard/mlflow, {workers} worker(s), -c16: {ours.rps / theirs.rps:5.1f}x req/s "
            f"(goal >= 5), p99 {ours.p99_ms / theirs.p99_ms:5.3f}x (goal <= 0.1)"
        )
    for connections in (16, 64):
        on = find("shipyard", 1, connections)
        off = find("shipyard-unbatched", 1, connections)
        print(
            f"batching on/off, 1 worker, -c{connections}: {on.rps / off.rps:.2f}x req/s, "
            f"p99 {on.p99_ms / off.p99_ms:.2f}x"
        )
    direct, through = find("direct"), find("gateway")
    print(
        f"gateway/direct, 1 worker, -c16: {through.rps / direct.rps:.2f}x req/s (goal >= 0.7), "
        f"p99 {through.p99_ms / direct.p99_ms:.2f}x"
    )
    generator = "wrk -t1" if shutil.which("wrk") else "bundled asyncio generator"
    print(f"load generator: {generator}; cores: {os.cpu_count()}; load average: {load_average()}")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--cache", type=Path, help="environment cache to reuse between runs")
    return parser.parse_args()


def main() -> None:
    options = parse_args()
    print(f"load average at start: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="shipyard-serving-bench-") as root:
        (Path(root) / "logs").mkdir()
        report(run(options, Path(root)))


if __name__ == "__main__":
    main()
