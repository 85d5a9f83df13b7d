"""Terminal rendering: the live run view and the tables the report commands print."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from rich.console import Console, RenderableType
from rich.status import Status as Spinner
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from shipyard.domain import Status

if TYPE_CHECKING:  # the services import SQLAlchemy and pydantic: not at CLI start
    from shipyard.services.views import LogChunk, RunView

STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "waiting": "yellow",
    "passed": "green",
    "failed": "bold red",
    "skipped": "dim",
    "cancelled": "yellow",
    "rolled-back": "bold magenta",
}
STATUS_MARK = {"passed": "✔", "failed": "✘", "skipped": "·", "cancelled": "■", "rolled-back": "↺"}


def styled_state(state: str) -> Text:
    """A deployment's state: ready, starting, stopped, failed."""
    return Text(
        state, style={"ready": "green", "starting": "cyan", "failed": "bold red"}.get(state, "dim")
    )


def prose(status: str) -> str:
    """A status word as a sentence writes it: ``rolled-back`` is "rolled back"."""
    return status.replace("-", " ")


def styled(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


class RichReporter:
    """Streams each stage's log lines with a spinner naming the stage at work."""

    def __init__(self, console: Console, *, verbose: bool = True) -> None:
        self.console = console
        self.verbose = verbose
        self._spinner: Spinner | None = None

    def stage_started(self, stage: str) -> None:
        self.console.print(Text.assemble(("▶ ", "cyan"), (stage, "bold")))
        self._spinner = self.console.status(f"[cyan]{stage}[/] running…")
        self._spinner.start()

    def line(self, stage: str, text: str) -> None:
        if self.verbose:
            self.console.print(
                Text(f"  {stage:<8}│ ", style="dim") + Text(text.rstrip()), highlight=False
            )

    def stage_finished(self, stage: str, status: Status, message: str, seconds: float) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        mark = STATUS_MARK.get(status.value, "•")
        timing = f" {seconds:.1f}s" if seconds else ""
        self.console.print(
            Text.assemble(
                (f"{mark} {stage} ", STATUS_STYLE.get(status.value, "")),
                (status.value, STATUS_STYLE.get(status.value, "")),
                (timing, "dim"),
                ("  " + message, ""),
            )
        )


class LogSource(Protocol):
    def log(self, project: str, number: int, stage: str, offset: int = 0) -> LogChunk: ...


class LogTail:
    """One stage's log printed as ``stage   | line``, each time from where it was left.

    A line still being written is held back until it ends (or the stage does), so following a
    log never splits a line in two.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.offset = 0
        self.partial = ""
        self.finished = False

    def read(
        self, source: LogSource, project: str, number: int, out: TextIO, *, follow: bool
    ) -> None:
        while not self.finished:
            chunk = source.log(project, number, self.stage, self.offset)
            self.offset, self.finished = chunk.offset, chunk.finished
            self._write(chunk.text, out)
            if not chunk.text:
                break
        if self.partial and (self.finished or not follow):
            out.write(f"{self.stage:<8}| {self.partial}")
            self.partial = ""

    def _write(self, text: str, out: TextIO) -> None:
        lines = (self.partial + text).splitlines(keepends=True)
        self.partial = lines.pop() if lines and not lines[-1].endswith("\n") else ""
        for line in lines:
            out.write(f"{self.stage:<8}| {line}")


class FittedTable(Table):
    """A table whose typed cells fold rather than being cut (see :func:`make_table`)."""

    def add_row(
        self,
        *renderables: RenderableType | None,
        style: StyleType | None = None,
        end_section: bool = False,
    ) -> None:
        # Rich crops a cell of a no_wrap column; the cell's own Text decides, so give it one
        # that folds (and reads no markup: these are data, not prose).
        cells = [
            Text(cell, no_wrap=False, overflow="fold")
            if isinstance(cell, str) and column.no_wrap
            else cell
            for cell, column in zip(renderables, self.columns, strict=False)
        ]
        super().add_row(*cells, style=style, end_section=end_section)


def make_table(*columns: str, typed: Collection[str] = (), title: str | None = None) -> Table:
    """A table that fits the terminal and never cuts what a user types next.

    The ``typed`` columns hold what a user copies into the next command (versions, digests,
    URLs, run numbers, names): they do not wrap while the other columns can wrap to make room,
    and on a terminal too narrow even for them they fold onto the next line instead of ending
    in an ellipsis. Every command's table is made here, so they all behave alike.
    """
    made = FittedTable(title=title, title_justify="left")
    for column in columns:
        made.add_column(column, no_wrap=column in typed, overflow="fold")
    return made


def run_table(run: RunView) -> Table:
    title = f"{run.project} run #{run.number}  {run.sha[:12]}  {run.status}"
    made = make_table("stage", "status", "time", "message", typed=("stage",), title=title)
    for stage in run.stages:
        made.add_row(
            stage.name,
            styled(stage.status),
            _duration(stage.started_at, stage.finished_at),
            stage.message or "",
        )
    return made


def runs_table(runs: list[RunView]) -> Table:
    columns = ("project", "run", "commit", "status", "started", "time", "at stage")
    made = make_table(*columns, typed=("project", "run", "commit"), title="runs")
    for run in runs:
        current = next((s.name for s in run.stages if s.status in ("running", "waiting")), "")
        started = run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else ""
        made.add_row(
            run.project,
            f"#{run.number}",
            run.sha[:10],
            styled(run.status),
            started,
            _duration(run.started_at, run.finished_at),
            current,
        )
    return made


def run_dict(run: RunView) -> dict[str, Any]:
    return {
        "project": run.project,
        "number": run.number,
        "sha": run.sha,
        "ref": run.ref,
        "status": run.status,
        "message": run.message,
        "trigger": run.trigger,
        "actor": run.actor,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "stages": [
            {
                "name": s.name,
                "status": s.status,
                "message": s.message,
                "started_at": _iso(s.started_at),
                "finished_at": _iso(s.finished_at),
                "summary": s.summary,
            }
            for s in run.stages
        ],
    }


def print_json(console: Console, value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    seconds = ((end or datetime.utcnow()) - start).total_seconds()
    return f"{seconds:.1f}s"
