"""`shipyard analyze` and `shipyard vulndb`: the analyze stage's checks, by hand and offline."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.common import JsonOption, console
from shipyard.cli.render import print_json
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # pydantic models: imported by the command that needs them
    from shipyard.config.schema import AnalyzeConfig

vulndb_app = typer.Typer(help="The offline vulnerability database: OSV's records for PyPI.")
DatabaseOption = Annotated[
    Path | None,
    typer.Option(
        "--database",
        help="Database folder (default: vulndb/ in the machine cache, $SHIPYARD_CACHE).",
    ),
]
IMPORT_HINT = (
    "Download OSV's PyPI export (https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip) "
    "where there is network, copy it here and run `shipyard vulndb import all.zip`."
)


@vulndb_app.callback(invoke_without_command=True)
def vulndb(
    ctx: typer.Context, database: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """The offline vulnerability database: without a subcommand, its status."""
    if ctx.invoked_subcommand is None:
        vulndb_status(database, as_json)


@vulndb_app.command("import")
def vulndb_import(
    source: Annotated[Path, typer.Argument(help="OSV's PyPI all.zip, or a folder of OSV JSON.")],
    database: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the offline database with the records of an OSV export."""
    from shipyard.analysis.vulndb import default_location, import_database

    status = import_database(source, database or default_location())
    if as_json:
        print_json(console, status.to_dict())
        return
    console.print(
        f"imported {status.records} records for {status.packages} packages "
        f"({status.withdrawn} withdrawn) into {status.path}",
        highlight=False,
        soft_wrap=True,
    )
    if status.skipped:
        console.print(
            f"skipped {len(status.skipped)} files that are not OSV records, "
            f"first: {status.skipped[0]}",
            markup=False,
            soft_wrap=True,
        )


@vulndb_app.command("status")
def vulndb_status(database: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """How old the offline database is, where it came from, and what it holds."""
    from shipyard.analysis.vulndb import default_location, open_database

    location = database or default_location()
    opened = open_database(location)
    if opened is None:
        raise NotFound(f"There is no vulnerability database at {location}.", hint=IMPORT_HINT)
    try:
        status = opened.status()
    finally:
        opened.close()
    now = datetime.now(UTC)
    if as_json:
        print_json(console, status.to_dict(now))
        return
    for label, value in (
        ("database", status.path),
        ("source", status.source),
        ("imported", f"{status.imported_at:%Y-%m-%d %H:%M} UTC ({status.age_words(now)} old)"),
        ("records", f"{status.records} ({status.withdrawn} withdrawn)"),
        ("packages", status.packages),
        ("newest record", status.newest or "-"),
    ):
        console.print(f"{label:<14} {value}", markup=False, highlight=False, soft_wrap=True)


def analyze(
    path: Annotated[Path, typer.Argument(help="The working tree to analyse.")] = Path("."),
    python: Annotated[
        Path | None,
        typer.Option(
            "--python",
            help="Interpreter of the environment to inspect "
            "(default: PATH/.venv, else $VIRTUAL_ENV; none: no dependency checks).",
        ),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="A trained model folder to scan too.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write analyze.json, analysis.sarif and sbom.cdx.json here."),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option("--fail-on", help="Override `analyze.fail_on`: low, medium, high, critical."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Never ask OSV's API, whatever the config says.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the analyze stage's checks on a working tree; exit 1 when the policy fails."""
    from shipyard.analysis.run import AnalysisInput, run_analysis

    root = path.resolve()
    if not root.is_dir():
        raise InvalidInput(f"{path} is not a folder.", hint="Give the project's working tree.")
    name, config = _project_config(root, fail_on)
    interpreter = _interpreter(root, python)
    with tempfile.TemporaryDirectory(prefix="shipyard-analyze-") as scratch:
        given = AnalysisInput(
            root=root,
            reports_dir=(out.resolve() if out else Path(scratch)),
            name=name,
            version="working-tree",
            python=interpreter,
            model_dir=model.resolve() if model else None,
            online=False if offline else None,
        )
        analysis = run_analysis(given, config)
    if as_json:
        print_json(console, analysis.to_dict())
    else:
        if interpreter is None:
            console.print("no Python environment: pass --python for dependency checks")
        for line in analysis.summary_lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if out:
            files = ", ".join(str(p) for p in analysis.files.values())
            console.print(f"reports: {files}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if analysis.passed else 1)


def _project_config(root: Path, fail_on: str | None) -> tuple[str, AnalyzeConfig]:
    from shipyard.config.loader import load_config
    from shipyard.config.schema import AnalyzeConfig

    name, config = root.name, AnalyzeConfig()
    if (root / "shipyard.yaml").is_file():
        project = load_config(root / "shipyard.yaml")
        name, config = project.name, project.analyze or config
    if fail_on is None:
        return name, config
    update: dict[str, Any] = {"fail_on": fail_on}
    try:
        return name, AnalyzeConfig.model_validate(config.model_dump() | update)
    except ValueError as error:
        raise InvalidInput(
            f"--fail-on {fail_on!r} is not a severity.", hint="Use low, medium, high or critical."
        ) from error


def _interpreter(root: Path, given: Path | None) -> Path | None:
    if given is not None:
        if not given.exists():
            raise InvalidInput(f"{given} does not exist.", hint="Give a Python interpreter.")
        # absolute, not resolved: a venv's python is a symlink to the base interpreter.
        chosen = given.absolute()
        return chosen if chosen.is_file() else chosen / "bin" / "python"
    for candidate in (root / ".venv", Path(os.environ.get("VIRTUAL_ENV") or "/nonexistent")):
        if (candidate / "bin" / "python").exists():
            return candidate / "bin" / "python"
    return None


def register(app: typer.Typer) -> None:
    app.command()(analyze)
    app.add_typer(vulndb_app, name="vulndb")
