"""`shipyard rollout status|promote|abort|pause|resume` and `shipyard up`.

The commands change the rollout's stored status; the process driving the rollout (the
pipeline's canary stage, `shipyard up`, or `shipyard rollout resume`) acts on it within a
fraction of a second. When no process drives it, `abort` rolls back here and `resume` drives
it here, in the foreground, to its verdict.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from shipyard.adapters import Adapters
from shipyard.canary import records
from shipyard.cli.common import (
    JsonOption,
    ProjectOption,
    StateOption,
    adapters,
    console,
    pick_project,
)
from shipyard.cli.render import print_json
from shipyard.config.schema import parse_duration
from shipyard.errors import Conflict, InvalidInput
from shipyard.store.models import Rollout

rollout_app = typer.Typer(
    name="rollout",
    help="See and steer a canary rollout: status, promote, abort, pause, resume.",
)

EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
IdOption = Annotated[
    int | None, typer.Option("--id", help="Rollout id (default: the newest of the environment).")
]


def _find(a: Adapters, project: str | None, env: str, rollout_id: int | None) -> Rollout:
    return records.find_rollout(a.store, pick_project(a, project), env, rollout_id)


def _driven(a: Adapters, rollout: Rollout) -> bool:
    return records.is_driven(a.leases, rollout.id)


@rollout_app.callback(invoke_without_command=True)
def rollout(
    ctx: typer.Context,
    env: EnvOption = "production",
    project: ProjectOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """A canary rollout: without a subcommand, the newest one's status."""
    if ctx.invoked_subcommand is None:
        status(env, None, project, state, as_json)


@rollout_app.command("status")
def status(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where a rollout is: its status, step, weight and the judge's last verdict."""
    a = adapters(state)
    rollout = _find(a, project, env, rollout_id)
    data = rollout_dict(rollout, driven=_driven(a, rollout))
    if as_json:
        print_json(console, data)
        return
    console.print(
        f"rollout {rollout.id}: {rollout.project}/{rollout.environment} "
        f"{rollout.stable_version} -> {rollout.canary_version}: [bold]{rollout.status}[/]"
    )
    steps = rollout.steps
    if rollout.status in records.ACTIVE and steps:
        where = f"step {rollout.step_index + 1}/{len(steps)} at {rollout.weight}%"
        driver = (
            "driven" if data["driven"] else "NOT driven: `shipyard rollout resume` or `shipyard up`"
        )
        console.print(f"{where}; {driver}")
    table = Table(title="steps", title_justify="left")
    for column in ("#", "weight", "pause", "shadow"):
        table.add_column(column)
    for index, step in enumerate(steps):
        pause = step["pause"] if step["pause"] == "manual" else f"{float(step['pause']):g}s"
        table.add_row(str(index + 1), f"{step['weight']}%", pause, f"{step.get('shadow') or ''}")
    console.print(table)
    if rollout.verdicts:
        last = rollout.verdicts[-1]
        console.print(
            f"last verdict (step {last['step'] + 1}): {last['outcome']} "
            f"({last['canary_requests']} canary / {last['stable_requests']} stable requests)"
        )
        for check in last["checks"]:
            console.print(f"  {check['name']}: {check['outcome']}: {check['detail']}")


@rollout_app.command("promote")
def promote(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """End the current step (a `pause: manual` step waits for this) and go to the next."""
    a = adapters(state)
    rollout = _find(a, project, env, rollout_id)
    _command(
        a, rollout, "promote", records.PROMOTING, (records.RUNNING, records.WAITING, records.PAUSED)
    )
    console.print(f"rollout {rollout.id}: promote requested")
    _warn_if_undriven(a, rollout)


@rollout_app.command("abort")
def abort(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """All traffic back to stable at once and stop the canary."""
    from shipyard.controllers import Reconciler

    a = adapters(state)
    rollout = _find(a, project, env, rollout_id)
    _command(a, rollout, "abort", records.ABORTING, records.ACTIVE)
    if _driven(a, rollout):
        console.print(f"rollout {rollout.id}: abort requested; its driver rolls it back")
        return
    reconciler = Reconciler(a, console.print)
    reconciler.controller(rollout, _hooks()).abort("aborted by `shipyard rollout abort`")
    console.print(f"rollout {rollout.id}: aborted; all traffic is on {rollout.stable_version}")


@rollout_app.command("pause")
def pause(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """Hold the rollout at its weights; the judge keeps watching and still rolls back."""
    a = adapters(state)
    rollout = _find(a, project, env, rollout_id)
    _command(a, rollout, "pause", records.PAUSED, (records.RUNNING, records.WAITING))
    console.print(f"rollout {rollout.id}: paused at {rollout.weight}%")


@rollout_app.command("resume")
def resume(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
) -> None:
    """Continue a paused rollout; one that no process drives is driven here to its verdict."""
    from shipyard.controllers import Reconciler

    a = adapters(state)
    rollout = _find(a, project, env, rollout_id)
    if rollout.status not in records.ACTIVE:
        raise Conflict(
            f"Rollout {rollout.id} has finished ({rollout.status}).",
            hint="`shipyard rollout status` shows its verdicts.",
        )
    if rollout.status == records.PAUSED:
        _command(a, rollout, "resume", records.RUNNING, (records.PAUSED,))
        console.print(f"rollout {rollout.id}: resumed")
    if _driven(a, rollout):
        return
    console.print(f"rollout {rollout.id}: no process drives it; driving it here from its step")
    reconciler = Reconciler(a, console.print)
    reconciler.reconcile(drive=False)
    done = reconciler.drive(records.find_rollout(a.store, rollout.project, env, rollout.id))
    console.print(f"rollout {done.id}: {done.status}")
    raise typer.Exit(0 if done.status == records.PASSED else 1)


def up(
    once: Annotated[
        bool,
        typer.Option("--once", help="One pass, drive active rollouts to their verdicts, exit."),
    ] = False,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between reconciling passes, e.g. 2s.")
    ] = "2s",
    state: StateOption = None,
) -> None:
    """Run the controllers: restart dead deployments, restore gateway routes, drive rollouts."""
    from shipyard.controllers import Reconciler

    try:
        seconds = parse_duration(interval)
    except ValueError:
        raise InvalidInput(
            f"--interval {interval!r} is not a duration.", hint="Write it as 2s, 1m or 0.5."
        ) from None
    reconciler = Reconciler(adapters(state), console.print)
    if once:
        done = reconciler.run_once()
        console.print(f"reconciled; {len(done)} rollout(s) driven to a verdict")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(
        f"controllers running (every {seconds:g} s); Ctrl-C stops them, rollouts stay resumable"
    )
    reconciler.run_forever(seconds, stop)


def _command(
    a: Adapters, rollout: Rollout, action: str, status: str, allowed: tuple[str, ...]
) -> None:
    def change(row: Rollout) -> None:
        if row.status not in allowed:
            raise Conflict(
                f"Rollout {row.id} is {row.status}; `{action}` applies to a rollout that is "
                f"{' or '.join(allowed)}.",
                hint="`shipyard rollout status` shows where it is.",
            )
        row.status = status

    records.update_rollout(a.store, rollout.id, action, change)


def _warn_if_undriven(a: Adapters, rollout: Rollout) -> None:
    if not _driven(a, rollout):
        console.print(
            "no process drives this rollout: `shipyard rollout resume` or `shipyard up` continues it"
        )


def _hooks() -> Any:
    from shipyard.canary.rollout import RolloutHooks

    return RolloutHooks.plain(console.print)


def rollout_dict(rollout: Rollout, *, driven: bool) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "project": rollout.project,
        "environment": rollout.environment,
        "stable": rollout.stable_version,
        "canary": rollout.canary_version,
        "status": rollout.status,
        "step_index": rollout.step_index,
        "weight": rollout.weight,
        "steps": rollout.steps,
        "verdicts": rollout.verdicts,
        "driven": driven,
    }


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app)
    app.command()(up)
