"""The whole analysis on a real project: the analyze stage, and `shipyard analyze` / `vulndb`.

The "build environment" is this test's own virtualenv (a real one, with real distributions);
its vulnerability data is an OSV folder committed in the project and named in the config.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gitrepos import make_repo
from shipyard.cli.app import app
from shipyard.config.schema import ProjectConfig
from shipyard.errors import NotFound, StageFailed
from shipyard.executor.interface import PythonEnv
from shipyard.pipeline.context import RunContext
from shipyard.pipeline.stages.checks import analyze
from shipyard.wiring import open_adapters

from .osv_records import record, write_folder, write_zip

INSTALLED = version("pyyaml")  # a distribution the environment really has
ADVISORY = record(
    "GHSA-yaml-0000-0001",
    "PyYAML",
    versions=[INSTALLED],
    ranges=[[{"introduced": "0"}, {"fixed": "999.0"}]],
    aliases=["CVE-2099-0001"],
    severity="HIGH",
    summary="Arbitrary code execution in yaml.load",
)
PASSWORD = "s3cr3t-" + "Pa55w0rd!"


def project(root: Path, allow: list[dict[str, str]]) -> ProjectConfig:
    files = {
        "app/__init__.py": "",
        "app/serve.py": "def predict(rows):\n    return [len(r) for r in rows]\n",
        "config/prod.yaml": f"database:\n  password: {PASSWORD}\n",
    }
    write_folder(root / "security" / "osv", [ADVISORY])
    make_repo(root, files)
    config = {
        "name": "tiny",
        "build": {"train": "true"},
        "model": {"serve": "app.serve:Model"},
        "analyze": {
            "vulnerabilities": {"database": "security/osv"},
            "licences": {"deny": ["AGPL-*"]},
            "allow": allow,
        },
    }
    (root / "shipyard.yaml").write_text(yaml.safe_dump(config))
    return ProjectConfig.model_validate(config)


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    def build(allow: list[dict[str, str]]) -> RunContext:
        root = tmp_path / "repo"
        config = project(root, allow)
        adapters = open_adapters(tmp_path / "state", tmp_path / "cache")
        context = RunContext(adapters, "tiny", 1, "a" * 40, "main", root, config)
        context.workspace = root
        context.env = PythonEnv(Path(sys.prefix), key="test", reused=True, seconds=0.0)
        context.model_dir.mkdir(parents=True)
        (context.model_dir / "answer.txt").write_text("42")
        return context

    return build  # type: ignore[return-value]


ALLOWED = [
    {"id": "CVE-2099-0001", "reason": "yaml.load is never called", "until": "2999-01-01"},
    {"id": "secret-password:config/prod.yaml", "reason": "a local test database"},
]


def test_the_stage_passes_with_accepted_findings_and_keeps_the_reports(ctx: Any) -> None:
    context: RunContext = ctx(ALLOWED)
    outcome = analyze(context)
    summary = outcome.summary
    assert outcome.message.endswith("finding(s), none blocking") and summary["passed"] is True
    assert summary["vulnerabilities"] == [
        {
            "id": "GHSA-yaml-0000-0001",
            "aliases": ["CVE-2099-0001"],
            "package": "PyYAML",
            "version": INSTALLED,
            "severity": "high",
            "fixed": "999.0",
            "status": "allowed",
        }
    ]
    assert summary["counts"]["secret"] == {"found": 1, "blocking": 0, "allowed": 1}
    assert summary["vulnerability_data"] == ["offline"]
    assert {a["by"] for a in summary["allowed_findings"]} == {e["id"] for e in ALLOWED}
    assert (summary["findings"], summary["blocking"], summary["allowed"]) == (2, 0, 2)
    reports = context.reports_dir
    assert summary["reports"] == {
        "report": "analyze.json",
        "sarif": "analysis.sarif",
        "sbom": "sbom.cdx.json",
    }
    sbom = json.loads((reports / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"]["name"] == "tiny"
    assert sbom["metadata"]["component"]["version"] == "1-aaaaaaa"
    names = {c["name"].lower() for c in sbom["components"]}
    assert {"pyyaml", "packaging", "pytest"} <= names
    assert summary["sbom"]["components"] == len(sbom["components"])
    assert len(summary["sbom"]["sha256"]) == 64
    sarif = json.loads((reports / "analysis.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    report = (reports / "analyze.json").read_text()
    assert PASSWORD not in report and PASSWORD not in (reports / "analysis.sarif").read_text()
    log = context.log_path("analyze").read_text()
    assert "allowed  high GHSA-yaml-0000-0001" in log and "sbom: sbom.cdx.json" in log


def test_the_stage_fails_and_says_why_and_how(ctx: Any) -> None:
    context: RunContext = ctx([{"id": "B602", "reason": "old", "until": "2020-01-01"}])
    with pytest.raises(StageFailed) as failed:
        analyze(context)
    message = failed.value.message
    assert message.startswith("Analysis blocked the build (2 blocking finding(s), ")
    assert "allow entry B602 expired on 2020-01-01: renew it or fix the finding" in message
    assert "high GHSA-yaml-0000-0001 (CVE-2099-0001) PyYAML==" in message
    assert "fix: upgrade PyYAML to 999.0" in message
    assert "secret-password" in message and PASSWORD not in message
    assert failed.value.hint and "analyze.json" in failed.value.hint


def test_no_analyze_section_is_skipped(ctx: Any) -> None:
    context: RunContext = ctx([])
    context.config = context.config.model_copy(update={"analyze": None})
    assert analyze(context).status == "skipped"


# --- the CLI ---------------------------------------------------------------------------------


def test_shipyard_analyze_a_working_tree(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    project(root, [])
    runner = CliRunner()
    failed = runner.invoke(
        app, ["analyze", str(root), "--python", sys.executable, "--out", str(tmp_path / "out")]
    )
    assert failed.exit_code == 1, failed.output
    assert failed.output.startswith("analysis FAILED: 2 blocking (fail_on: high)")
    assert "BLOCKING high secret-password config/prod.yaml:2" in failed.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "analysis.sarif",
        "analyze.json",
        "sbom.cdx.json",
    ]

    critical_only = runner.invoke(
        app, ["analyze", str(root), "--fail-on", "critical", "--json", "--offline"]
    )
    assert critical_only.exit_code == 0, critical_only.output
    data = json.loads(critical_only.output)
    assert data["passed"] is True and data["fail_on"] == "critical"
    assert data["checks"]["vulnerability"]["unchecked"] == "no build environment to inspect"
    assert data["sbom"] is None

    bad = runner.invoke(app, ["analyze", str(root), "--fail-on", "severe"])
    assert bad.exit_code != 0 and "is not a severity" in str(bad.exception)


def test_shipyard_vulndb_import_and_status(tmp_path: Path) -> None:
    runner = CliRunner()
    database = tmp_path / "db"
    missing = runner.invoke(app, ["vulndb", "status", "--database", str(database)])
    assert isinstance(missing.exception, NotFound)
    assert "shipyard vulndb import all.zip" in (missing.exception.hint or "")

    source = write_zip(tmp_path / "all.zip", [ADVISORY])
    imported = runner.invoke(app, ["vulndb", "import", str(source), "--database", str(database)])
    assert imported.exit_code == 0, imported.output
    assert "imported 1 records for 1 packages (0 withdrawn)" in imported.output

    status = runner.invoke(app, ["vulndb", "status", "--database", str(database)])
    assert status.exit_code == 0, status.output
    lines = dict(line.split(maxsplit=1) for line in status.output.splitlines() if line)
    assert lines["records"] == "1 (0 withdrawn)"
    assert "less than an hour old" in lines["imported"]
    as_json = runner.invoke(app, ["vulndb", "status", "--database", str(database), "--json"])
    assert json.loads(as_json.output)["source"] == str(source)
    bare = runner.invoke(app, ["vulndb", "--database", str(database), "--json"])  # status too
    assert json.loads(bare.output)["records"] == 1
