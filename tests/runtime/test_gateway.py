"""The gateway as a real process before real model servers: iris is "1", always-setosa "2"."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import free_port
from shipyard.canary.judge import judge_canary
from shipyard.config.schema import AnalysisConfig
from shipyard.errors import InvalidInput, RuntimeFailure
from shipyard.runtime.gateway import Gateway
from shipyard.runtime.interface import (
    PIN_TOKEN_HEADER,
    VERSION_HEADER,
    Backend,
    RunningServer,
    VersionStats,
)
from shipyard.runtime.local import LocalRuntime
from shipyard.runtime.routes import Shadow

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
VIRGINICA_BODY = {"dataframe_split": {"columns": FEATURES, "data": [[6.7, 3.0, 5.2, 2.3]]}}
PIN_TOKEN = "operator-pin-token"
PINNED_BY_OPERATOR = {PIN_TOKEN_HEADER: PIN_TOKEN}


@dataclass(frozen=True)
class Environment:
    directory: Path
    port: int
    url: str


def gateway_in(runtime: LocalRuntime, state: Path) -> Iterator[Environment]:
    """A production gateway of a state folder, on a free port, stopped afterwards."""
    directory = state / "environments" / "iris" / "production"
    port = free_port()
    url = runtime.ensure_gateway(directory, port)
    try:
        yield Environment(directory, port, url)
    finally:
        runtime.stop_gateway(directory)


@pytest.fixture(scope="module")
def env(runtime: LocalRuntime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    yield from gateway_in(runtime, tmp_path_factory.mktemp("state"))


def route(
    runtime: LocalRuntime,
    env: Environment,
    weights: Sequence[tuple[RunningServer, int]],
    window: str,
) -> None:
    backends = [Backend(server.version, server.endpoint, weight) for server, weight in weights]
    runtime.set_routes(env.directory, backends, window, pin_token=PIN_TOKEN)


async def fire(
    url: str, count: int, *, seconds: float = 0.0, concurrency: int = 16, **request: Any
) -> list[httpx.Response | Exception]:
    """``count`` POSTs to /invocations spread over ``seconds``, ``concurrency`` at most at once."""
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def one(client: httpx.AsyncClient, index: int) -> httpx.Response | Exception:
        await asyncio.sleep(max(0.0, start + index * seconds / count - time.monotonic()))
        async with gate:
            try:
                return await client.post(f"{url}/invocations", **request)
            except httpx.HTTPError as exc:
                return exc

    async with httpx.AsyncClient(timeout=10) as client:
        return await asyncio.gather(*(one(client, i) for i in range(count)))


def served_by(responses: list[httpx.Response | Exception]) -> Counter[str]:
    assert all(isinstance(r, httpx.Response) and r.status_code == 200 for r in responses), [
        r if isinstance(r, Exception) else (r.status_code, r.text)
        for r in responses
        if not isinstance(r, httpx.Response) or r.status_code != 200
    ][:3]
    return Counter(r.headers[VERSION_HEADER] for r in responses if isinstance(r, httpx.Response))


def test_no_backends_is_503(runtime: LocalRuntime, env: Environment) -> None:
    runtime.set_routes(env.directory, [], "empty")
    response = httpx.post(f"{env.url}/invocations", json=VIRGINICA_BODY)
    assert response.status_code == 503
    assert response.json() == {"error": "no version is deployed in this environment"}


def test_weighted_split_and_per_version_stats(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    route(runtime, env, [(iris_server, 80), (setosa_server, 20)], "split")
    responses = asyncio.run(fire(env.url, 400, json=VIRGINICA_BODY))
    served = served_by(responses)
    assert 0.13 <= served["2"] / 400 <= 0.27, served  # 20% +- 3.5 standard deviations
    for response in responses:
        assert isinstance(response, httpx.Response)
        expected = "virginica" if response.headers[VERSION_HEADER] == "1" else "setosa"
        assert response.json() == {"predictions": [expected]}

    stats = runtime.gateway_stats(env.directory)
    assert stats["1"].requests == served["1"] and stats["2"].requests == served["2"]
    assert stats["1"].predictions == {"virginica": served["1"]}
    assert stats["2"].predictions == {"setosa": served["2"]}
    assert len(stats["1"].latencies_ms) == served["1"] and min(stats["1"].latencies_ms) > 0
    assert stats["1"].errors == stats["2"].errors == 0

    route(runtime, env, [(iris_server, 80), (setosa_server, 20)], "split")  # same window: kept
    assert runtime.gateway_stats(env.directory)["1"].requests == served["1"]
    route(runtime, env, [(iris_server, 80), (setosa_server, 20)], "split-2")  # new window: reset
    assert runtime.gateway_stats(env.directory) == {}


def test_pin_header_and_weight_zero(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    route(runtime, env, [(iris_server, 100), (setosa_server, 0)], "pin")
    assert served_by(asyncio.run(fire(env.url, 60, json=VIRGINICA_BODY))) == {"1": 60}
    # One version serving: nothing to compare, so the hot path parses no answer.
    assert runtime.gateway_stats(env.directory)["1"].predictions == {}
    stable = httpx.post(
        f"{env.url}/invocations", json=VIRGINICA_BODY, headers={VERSION_HEADER: "1"}
    )
    assert stable.status_code == 200 and stable.headers[VERSION_HEADER] == "1"
    refused = httpx.post(
        f"{env.url}/invocations", json=VIRGINICA_BODY, headers={VERSION_HEADER: "2"}
    )
    assert refused.status_code == 403
    assert "needs the pin token" in refused.json()["error"], refused.text
    wrong = httpx.post(
        f"{env.url}/invocations",
        json=VIRGINICA_BODY,
        headers={VERSION_HEADER: "2", PIN_TOKEN_HEADER: "guess"},
    )
    assert wrong.status_code == 403
    pinned = httpx.post(
        f"{env.url}/invocations",
        json=VIRGINICA_BODY,
        headers={VERSION_HEADER: "2", **PINNED_BY_OPERATOR},
    )
    assert pinned.headers[VERSION_HEADER] == "2"
    assert pinned.json() == {"predictions": ["setosa"]}
    unknown = httpx.post(
        f"{env.url}/invocations", json=VIRGINICA_BODY, headers={VERSION_HEADER: "7"}
    )
    assert unknown.status_code == 404
    assert "'7'" in unknown.json()["error"] and "1, 2" in unknown.json()["error"]


def test_forwarding_keeps_method_path_query_status_and_body(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    route(runtime, env, [(iris_server, 100), (setosa_server, 0)], "forward")
    metadata = httpx.get(f"{env.url}/v2/models/iris?verbose=1")
    assert metadata.status_code == 200 and metadata.json()["versions"] == ["1"]
    head = httpx.head(f"{env.url}/v2/models/iris", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(
        httpx.get(f"{env.url}/v2/models/iris").content
    )
    missing = httpx.post(f"{env.url}/v2/models/tulip/infer", json={"inputs": []})
    assert missing.status_code == 404 and "tulip" in missing.json()["error"]
    assert missing.headers[VERSION_HEADER] == "1"
    assert len(missing.headers.get_list("date")) == 1  # the backend's, not a second one
    rejected = httpx.post(f"{env.url}/invocations", json={"instances": [{"x": 1}]})
    assert rejected.status_code == 422
    crashed = httpx.post(
        f"{env.url}/invocations",
        json={"instances": [{"explode": 1}]},
        headers={VERSION_HEADER: "2", **PINNED_BY_OPERATOR},
    )
    assert crashed.status_code == 500
    stats = runtime.gateway_stats(env.directory)
    assert (stats["1"].requests, stats["1"].errors) == (5, 0)  # a 4xx is the client's fault
    assert (stats["2"].requests, stats["2"].errors) == (1, 1)


def test_set_routes_is_in_force_when_it_returns(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    for weights in ((0, 100), (100, 0), (0, 100)):
        route(runtime, env, [(iris_server, weights[0]), (setosa_server, weights[1])], "flip")
        expected = "1" if weights[0] else "2"
        assert served_by(asyncio.run(fire(env.url, 20, json=VIRGINICA_BODY))) == {expected: 20}
    on_disk = json.loads((env.directory / "routes.json").read_text())
    assert httpx.get(f"{env.url}/_shipyard/health").json()["generation"] == on_disk["generation"]


def test_bad_route_tables_are_refused(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    before = (env.directory / "routes.json").read_text()
    for weights in ((80, 10), (120, -20)):
        with pytest.raises(InvalidInput, match=r"weight"):
            route(runtime, env, [(iris_server, weights[0]), (setosa_server, weights[1])], "bad")
    with pytest.raises(InvalidInput, match=r"twice"):
        route(runtime, env, [(iris_server, 50), (iris_server, 50)], "bad")
    assert (env.directory / "routes.json").read_text() == before


def test_a_backend_that_is_not_ready_is_never_chosen(
    runtime: LocalRuntime, env: Environment, iris_server: RunningServer
) -> None:
    dead = Backend("9", f"http://127.0.0.1:{free_port()}", 50)
    backends = [Backend("1", iris_server.endpoint, 50, stable=True), dead]
    runtime.set_routes(env.directory, backends, "retry", pin_token=PIN_TOKEN)
    assert served_by(asyncio.run(fire(env.url, 40, json=VIRGINICA_BODY))) == {"1": 40}
    health = httpx.get(f"{env.url}/_shipyard/health").json()
    assert {b["version"]: b["ready"] for b in health["backends"]} == {"1": True, "9": False}
    assert health["pin_token"] is True and "pin_token_sha256" not in health  # never the digest
    pinned = httpx.post(
        f"{env.url}/invocations",
        json=VIRGINICA_BODY,
        headers={VERSION_HEADER: "9", **PINNED_BY_OPERATOR},
    )
    assert pinned.status_code == 503 and pinned.json() == {"error": "version 9 is not ready"}
    assert pinned.headers[VERSION_HEADER] == "9"


def test_a_backend_killed_under_load_loses_no_request(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    fake_code_dir: Path,
    tmp_path: Path,
    make_spec: Any,
) -> None:
    """A model server dies without warning: requests racing its death go to the other one."""
    doomed = runtime.start_server(
        make_spec("4", tmp_path, fake_code_dir, "fake_models:AlwaysSetosa", tmp_path / "4.log")
    )
    try:
        route(runtime, env, [(iris_server, 50), (doomed, 50)], "kill")

        def kill() -> None:
            # Once the doomed server has answered some of the load, not after a fixed while: on
            # a loaded machine the load may start later than that (a run saw it start after).
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if runtime.gateway_stats(env.directory).get("4", VersionStats()).requests >= 20:
                    break
                time.sleep(0.02)
            os.killpg(doomed.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill)
        killer.start()
        responses = asyncio.run(fire(env.url, 300, seconds=1.5, json=VIRGINICA_BODY))
        killer.join()
    finally:
        runtime.stop_server(doomed.pid)
    served = served_by(responses)  # every one answered 200
    assert served["4"] > 0 and served["1"] > 0, served
    stats = runtime.gateway_stats(env.directory)
    assert stats["1"].errors == 0
    health = httpx.get(f"{env.url}/_shipyard/health").json()
    assert {b["version"]: b["ready"] for b in health["backends"]} == {"1": True, "4": False}


def test_a_sticky_key_keeps_its_version_while_weights_stand(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    backends = [Backend("1", iris_server.endpoint, 50), Backend("2", setosa_server.endpoint, 50)]
    runtime.set_routes(env.directory, backends, "sticky", sticky_header="X-Shipyard-Key")
    seen: dict[str, set[str]] = {}
    with httpx.Client(base_url=env.url, timeout=10) as client:
        for round_ in range(4):
            for key in range(30):
                response = client.post(
                    "/invocations", json=VIRGINICA_BODY, headers={"x-shipyard-key": f"user-{key}"}
                )
                assert response.status_code == 200
                seen.setdefault(f"user-{key}", set()).add(response.headers[VERSION_HEADER])
            if round_ == 1:  # the same weights written again: the keys stay where they are
                runtime.set_routes(
                    env.directory, backends, "sticky", sticky_header="x-shipyard-key"
                )
    assert all(len(versions) == 1 for versions in seen.values()), seen
    assert {v for versions in seen.values() for v in versions} == {"1", "2"}
    everything_on_1 = [
        Backend("1", iris_server.endpoint, 100),
        Backend("2", setosa_server.endpoint, 0),
    ]
    runtime.set_routes(env.directory, everything_on_1, "sticky", sticky_header="x-shipyard-key")
    moved = httpx.post(
        f"{env.url}/invocations", json=VIRGINICA_BODY, headers={"x-shipyard-key": "user-1"}
    )
    assert moved.headers[VERSION_HEADER] == "1"


def test_a_shadow_gets_copies_and_never_answers(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    shadow = Shadow("2", setosa_server.endpoint, 50)
    runtime.set_routes(
        env.directory, [Backend("1", iris_server.endpoint, 100)], "shadow", shadow=shadow
    )
    responses = asyncio.run(fire(env.url, 200, json=VIRGINICA_BODY))
    assert served_by(responses) == {"1": 200}
    assert all(
        isinstance(r, httpx.Response) and r.json() == {"predictions": ["virginica"]}
        for r in responses
    )
    deadline = time.monotonic() + 5
    while runtime.gateway_stats(env.directory).get("2") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = runtime.gateway_stats(env.directory)
    assert 60 <= stats["2"].requests <= 140, stats["2"].requests  # 50% +- 5.6 sd
    assert stats["2"].predictions == {"setosa": stats["2"].requests}
    assert stats["1"].predictions == {"virginica": 200}

    broken = Shadow("8", f"http://127.0.0.1:{free_port()}", 100)
    runtime.set_routes(
        env.directory, [Backend("1", iris_server.endpoint, 100)], "shadow-2", shadow=broken
    )
    assert served_by(asyncio.run(fire(env.url, 50, json=VIRGINICA_BODY))) == {"1": 50}
    deadline = time.monotonic() + 5
    while runtime.gateway_stats(env.directory).get("8") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.gateway_stats(env.directory)["8"].errors > 0


def test_pipelined_requests_are_answered_in_order(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    route(runtime, env, [(iris_server, 100), (setosa_server, 0)], "pipeline")
    body = json.dumps(VIRGINICA_BODY).encode()
    one = (
        b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"x-shipyard-version: %s\r\nx-shipyard-pin-token: %s\r\ncontent-length: %d\r\n\r\n%s"
    )
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as sock:
        token = PIN_TOKEN.encode()
        sock.sendall(b"".join(one % (v, token, len(body), body) for v in (b"2", b"1", b"2")))
        received = b""
        while received.count(b"HTTP/1.1 200") < 3 or not received.endswith(b"]}"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    answers = [part for part in received.split(b"HTTP/1.1 ")[1:]]
    versions = [
        line.split(b": ")[1]
        for answer in answers
        for line in answer.split(b"\r\n")
        if line.lower().startswith(b"x-shipyard-version")
    ]
    assert versions == [b"2", b"1", b"2"]


def test_switching_under_load_loses_no_request(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
    fake_code_dir: Path,
    tmp_path: Path,
    make_spec: Any,
) -> None:
    """The canary's moves while traffic flows: shift, stop the old version, shift again."""
    old = runtime.start_server(
        make_spec("3", tmp_path, fake_code_dir, "fake_models:AlwaysSetosa", tmp_path / "3.log")
    )
    try:
        route(runtime, env, [(old, 100)], "load")

        def operate() -> None:
            time.sleep(0.4)
            route(runtime, env, [(old, 20), (setosa_server, 80)], "load")
            time.sleep(0.3)
            route(runtime, env, [(setosa_server, 100)], "load")
            runtime.stop_server(old.pid)
            time.sleep(0.3)
            route(runtime, env, [(iris_server, 50), (setosa_server, 50)], "load")

        operator = threading.Thread(target=operate)
        operator.start()
        responses = asyncio.run(fire(env.url, 300, seconds=2.0, json=VIRGINICA_BODY))
        operator.join()
    finally:
        runtime.stop_server(old.pid)
    served = served_by(responses)
    assert sum(served.values()) == 300
    assert served["3"] > 0 and served["2"] > 0 and served["1"] > 0, served


def test_a_restarted_gateway_serves_the_same_routes(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    route(runtime, env, [(iris_server, 30), (setosa_server, 70)], "restart")
    before = httpx.get(f"{env.url}/_shipyard/health").json()
    os.killpg(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while runtime.is_alive(before["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not runtime.is_alive(before["pid"])

    assert runtime.ensure_gateway(env.directory, env.port) == env.url
    after = httpx.get(f"{env.url}/_shipyard/health").json()
    assert after["pid"] != before["pid"]
    assert {k: after[k] for k in ("generation", "window", "backends")} == {
        k: before[k] for k in ("generation", "window", "backends")
    }
    assert sum(served_by(asyncio.run(fire(env.url, 20, json=VIRGINICA_BODY))).values()) == 20
    assert runtime.ensure_gateway(env.directory, env.port) == env.url  # running: left alone
    assert httpx.get(f"{env.url}/_shipyard/health").json()["pid"] == after["pid"]


def test_a_port_taken_by_another_program_is_reported(runtime: LocalRuntime, tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(RuntimeFailure) as failure:
            runtime.ensure_gateway(tmp_path / "staging", port)
    assert failure.value.message.startswith(f"port {port} is in use by another program")
    assert failure.value.hint == "stop it or set environments.staging.port in shipyard.yaml"


def test_stop_gateway_stops_it(runtime: LocalRuntime, tmp_path: Path) -> None:
    directory = tmp_path / "qa"
    url = runtime.ensure_gateway(directory, free_port())
    try:
        pid = httpx.get(f"{url}/_shipyard/health").json()["pid"]
    finally:
        runtime.stop_gateway(directory)
    assert not runtime.is_alive(pid)
    assert not (directory / "gateway.pid").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_shipyard/health")
    with pytest.raises(RuntimeFailure, match=r"no gateway is running"):
        runtime.gateway_stats(directory)
    runtime.stop_gateway(directory)  # already stopped: silent


CLIENT_ERRORS: list[bytes] = [
    b"{not json",
    json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[6.7, 3.0]]}}).encode(),
    json.dumps({"dataframe_split": {"columns": ["petal"], "data": [[1.0]]}}).encode(),
    json.dumps({"instances": [{"sepal_length": "wide"}]}).encode(),
]


def test_client_errors_aimed_at_the_canary_cannot_fail_it(
    runtime: LocalRuntime,
    env: Environment,
    iris_server: RunningServer,
    setosa_server: RunningServer,
) -> None:
    """A rollout's traffic: always-setosa is stable (80), iris the canary (20)."""
    backends = [
        Backend("2", setosa_server.endpoint, 80, stable=True),
        Backend("1", iris_server.endpoint, 20),
    ]
    runtime.set_routes(env.directory, backends, "judged", pin_token=PIN_TOKEN)
    with httpx.Client(base_url=env.url, timeout=10) as client:
        for index in range(60):
            body = CLIENT_ERRORS[index % len(CLIENT_ERRORS)]
            pin = {VERSION_HEADER: "1"}
            headers = [pin, {**pin, **PINNED_BY_OPERATOR}, {}][index % 3]
            json_type = {"content-type": "application/json"}
            answer = client.post("/invocations", content=body, headers={**json_type, **headers})
            if headers == pin:
                assert answer.status_code == 403, answer.text
                assert "needs the pin token" in answer.json()["error"]
                continue
            if PIN_TOKEN_HEADER in headers:
                assert answer.headers[VERSION_HEADER] == "1", "a pin with the token is obeyed"
            if answer.headers[VERSION_HEADER] == "1":  # always-setosa takes any input
                assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    responses = asyncio.run(fire(env.url, 300, json=VIRGINICA_BODY))
    served = served_by(responses)

    stats = runtime.gateway_stats(env.directory)
    canary_client_errors = stats["1"].requests - served["1"]
    assert canary_client_errors >= 20  # the 20 pinned with the token, and a share of the rest
    assert stats["1"].errors == stats["2"].errors == 0
    verdict = judge_canary(stats["2"], stats["1"], AnalysisConfig())
    error_rate = next(check for check in verdict.checks if check.name == "error_rate")
    assert error_rate.outcome == "pass", error_rate.detail


def test_a_remote_client_reaches_neither_admin_nor_metrics(
    runtime: LocalRuntime, env: Environment, iris_server: RunningServer
) -> None:
    route(runtime, env, [(iris_server, 100)], "remote")
    assert httpx.get(f"{env.url}/metrics").status_code == 200  # this machine may read them
    # 127.0.0.2 is not the gateway's loopback address: the request counts as remote.
    remote = httpx.Client(
        base_url=env.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10
    )
    with remote:
        for target in ("/metrics", "/metrics/", "/%6detrics", "/metrics?x=1", "/_shipyard/stats"):
            answer = remote.get(target)
            assert answer.status_code == 404, (target, answer.status_code, answer.text[:80])
        assert remote.post("/invocations", json=VIRGINICA_BODY).status_code == 200
    # A reverse proxy on this machine connects from loopback for a remote client.
    for header in ("x-forwarded-for", "forwarded", "x-real-ip"):
        for target in ("/metrics", "/_shipyard/health"):
            answer = httpx.get(f"{env.url}{target}", headers={header: "203.0.113.9"})
            assert answer.status_code == 404, (header, target, answer.status_code)


def test_steering_headers_are_read_and_never_forwarded(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path / "routes.json")
    raw = [
        (b"X-Shipyard-Version", b" 4 "),
        (b"x-shipyard-pin-token", b"secret"),
        (b"content-type", b"application/json"),
        (b"connection", b"keep-alive, x-private"),
        (b"x-private", b"hop"),
    ]
    headers, steering = gateway.forwarded_headers(raw)
    assert headers == [(b"content-type", b"application/json")]
    assert (steering.pinned, steering.pin_token, steering.sticky) == ("4", b"secret", None)
