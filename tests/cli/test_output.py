"""What the report commands print is whole and readable on a narrow terminal: tables keep the
values a user types next, `envs` says where to call, `artifacts show` sums up the SBOM, and
`rollout status` says what happened to a rollout, and why, in words."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.canary import judge_canary, records
from shipyard.config.schema import AnalysisConfig, Threshold
from shipyard.paths import StateDir
from shipyard.runtime.interface import VersionStats
from shipyard.store import Store
from shipyard.store.models import Deployment, Rollout

from .conftest import Cli, Shipyard

DIGEST = "sha256:" + "0123456789abcdef" * 4
VERSION = "12-0123456789abcdef"
ENDPOINT = "http://127.0.0.1:40123"
SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "components": [
        {"name": "numpy", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "scipy", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "rich", "licenses": [{"license": {"id": "MIT"}}]},
        {"name": "mystery"},
    ],
}


def column(text: str, index: int) -> str:
    """One column of a printed table's body, its cells joined: a value folded over lines is
    whole again."""
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    return "".join(row[index + 1].strip() for row in rows)


def deployed(store: Store, environment: str, version: str, role: str, weight: int) -> None:
    artifact = store.add_artifact("iris", version, DIGEST, 1234, {"run": 1}, None)
    row = Deployment(
        project="iris",
        environment=environment,
        version=version,
        artifact_id=artifact.id,
        role=role,
        weight=weight,
        state="ready",
        endpoint=ENDPOINT,
        pid=os.getpid(),  # alive: this process
    )
    store.save_deployment(row, "started")


@pytest.mark.parametrize("columns", ["60", "80"])
def test_envs_keeps_versions_and_endpoints_whole_on_a_narrow_terminal(
    shipyard: Shipyard, store: Store, state: Path, columns: str
) -> None:
    store.ensure_project("iris", "/repos/iris")
    deployed(store, "production", VERSION, "stable", 100)
    done = shipyard("envs", "--state", state, COLUMNS=columns)
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout, done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= int(columns), done.stdout
    assert VERSION in done.stdout and ENDPOINT in done.stdout, done.stdout  # not even folded


def test_artifacts_show_keeps_the_digest_whole_on_a_narrow_terminal(
    shipyard: Shipyard, store: Store, state: Path
) -> None:
    store.add_artifact("iris", VERSION, DIGEST, 1234, {"run": 1}, None)
    done = shipyard("artifacts", "show", f"iris:{VERSION}", "--state", state, COLUMNS="60")
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout, done.stdout
    assert f"digest         {DIGEST}\n" in done.stdout  # whole on its line, to copy


def test_a_url_wider_than_the_terminal_folds_instead_of_being_cut(
    shipyard: Shipyard, state: Path
) -> None:
    url = "https://hooks.example.com/services/T0000000/B0000000/" + "x" * 24
    added = shipyard("notify", "add", url, "--state", state)
    assert added.returncode == 0, added.stderr
    done = shipyard("notify", "list", "--state", state, COLUMNS="50")
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout, done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 50, done.stdout
    assert column(done.stdout, 1) == url, done.stdout


def test_every_table_is_made_by_the_one_helper() -> None:
    cli = Path(__file__).parents[2] / "src" / "shipyard" / "cli"
    made_elsewhere = [
        path.name
        for path in cli.glob("*.py")
        if path.name != "render.py" and re.search(r"\bTable\(", path.read_text())
    ]
    assert made_elsewhere == []


def test_envs_prints_each_environments_public_url(cli: Cli, store: Store, state: Path) -> None:
    store.ensure_project("iris", "/repos/iris")
    deployed(store, "production", "2-bbbbbbb", "stable", 100)
    deployed(store, "staging", "3-ccccccc", "stable", 100)
    gateway = StateDir(state).environment_dir("iris", "production")
    gateway.mkdir(parents=True)
    (gateway / "gateway.port").write_text("8787")

    shown = cli("envs", "--state", state)
    assert shown.exit_code == 0, shown.output
    # Production answers at its gateway; staging has none, so clients call its server.
    assert "iris/production: http://127.0.0.1:8787" in shown.stdout
    assert f"iris/staging: {ENDPOINT}" in shown.stdout
    listed = json.loads(cli("envs", "--json", "--state", state).stdout)
    urls = {env["environment"]: env["url"] for env in listed}
    assert urls == {"production": "http://127.0.0.1:8787", "staging": ENDPOINT}


def test_artifacts_show_sums_up_the_sbom_unless_asked_for_it_whole(
    cli: Cli, store: Store, state: Path
) -> None:
    store.add_artifact("iris", "1-aaaaaaa", DIGEST, 1234, {"run": 1, "sbom": SBOM}, None)

    shown = cli("artifacts", "show", "iris:1-aaaaaaa", "--state", state)
    assert shown.exit_code == 0, shown.output
    assert (
        "sbom: CycloneDX 1.5, 4 components; licences: BSD-3-Clause 2, MIT 1, unknown 1"
        " (`shipyard artifacts show iris:1-aaaaaaa --sbom` prints it whole)"
    ) in shown.stdout
    assert "numpy" not in shown.stdout and '"run": 1' in shown.stdout

    whole = cli("artifacts", "show", "iris:1-aaaaaaa", "--sbom", "--state", state)
    assert whole.exit_code == 0, whole.output
    assert json.loads(whole.stdout) == SBOM


# -- rollout status ---------------------------------------------------------------------------

ANALYSIS = AnalysisConfig(
    error_rate=Threshold(max=0.02), latency={"max_increase": 1.0}, min_requests=20
)


def verdict(step: int, canary_errors: int) -> dict[str, Any]:
    """A verdict as the controller stores it, by the real judge on a known window."""

    def window(errors: int, seed: int) -> VersionStats:
        latencies = np.random.default_rng(seed).normal(10.0, 1.0, size=100).clip(min=0.1)
        return VersionStats(100, errors, latencies.tolist(), {"setosa": 50, "virginica": 50})

    judged = judge_canary(window(0, step), window(canary_errors, step + 100), ANALYSIS)
    return {"step": step, "weight": 50, "extension": 0, "at": 1.7e9, **judged.to_dict()}


def rollout(store: Store, status: str, verdicts: list[dict[str, Any]]) -> int:
    store.ensure_project("iris", "/repos/iris")
    row = Rollout(
        project="iris",
        environment="production",
        stable_version="1-aaaaaaa",
        canary_version="2-bbbbbbb",
        steps=[{"weight": 20, "pause": 6.0}, {"weight": 50, "pause": 6.0}],
        step_index=1,
        weight=50,
        status=records.RUNNING,
        verdicts=verdicts,
    )
    number = store.save_rollout(row, "started").id

    def end(row: Rollout) -> None:
        row.status = status

    reason = "step 2 (50%): " + verdicts[-1]["checks"][0]["detail"]
    store.rollouts.update(number, status, end, reason=reason)
    return number


def test_rollout_status_after_a_rollback_says_rolled_back_and_why(
    cli: Cli, store: Store, state: Path
) -> None:
    rollout(store, records.ROLLED_BACK, [verdict(1, canary_errors=30)])

    shown = cli("rollout", "status", "--state", state)
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.stdout.split())
    assert said.startswith(
        "rollout 1: iris/production 1-aaaaaaa -> 2-bbbbbbb: rolled back (step 2 (50%): canary"
        " 30.0% vs stable 0.0% > max 2.0%, significant (p="
    ), said
    assert "rolled-back" not in shown.stdout
    assert re.search(
        r" error_rate: fail: canary 30\.0% vs stable 0\.0% > max 2\.0%, significant \(p=",
        said,
    ), shown.stdout
    listed = json.loads(cli("rollout", "status", "--json", "--state", state).stdout)
    assert listed["status"] == "rolled-back" and listed["reason"].startswith("step 2 (50%)")
    assert listed["verdicts"][0]["checks"][0]["sentence"].startswith("error_rate: fail: ")


def test_rollout_status_after_shipyard_rollback_says_so(
    cli: Cli, store: Store, state: Path
) -> None:
    rollout(store, records.PASSED, [verdict(1, canary_errors=0)])
    deployed(store, "production", "1-aaaaaaa", "stable", 100)  # as `shipyard rollback` leaves it
    deployed(store, "production", "2-bbbbbbb", "standby", 0)

    shown = cli("rollout", "status", "--state", state)
    assert shown.exit_code == 0, shown.output
    assert ": passed" in shown.stdout.splitlines()[0]
    assert (
        "since then rolled back by `shipyard rollback`: all traffic is on 1-aaaaaaa again,"
        " 2-bbbbbbb is the standby (`shipyard rollback` again rolls forward)"
    ) in " ".join(shown.stdout.split())
