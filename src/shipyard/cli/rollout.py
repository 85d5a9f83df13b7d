"""`shipyard rollout status|promote|abort|pause|resume` and `shipyard up`.

The commands change the rollout's stored status (``services/rollouts.py`` holds the rules);
the process driving the rollout (the pipeline's canary stage, a server, `shipyard up`, or
`shipyard rollout resume`) acts on it within a fraction of a second. When no process drives
it, `abort` rolls it back at once and `resume` drives it here, in the foreground, to its
verdict.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.common import (
    JsonOption,
    ProjectOption,
    ServerOption,
    StateOption,
    adapters,
    console,
    pick_project,
    services,
)
from shipyard.cli.render import print_json
from shipyard.domain import RolloutAction, RolloutStatus
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.services import Services
    from shipyard.services.remote import RemoteServices
    from shipyard.services.rollouts import RolloutView

rollout_app = typer.Typer(
    name="rollout",
    help="See and steer a canary rollout: status, promote, abort, pause, resume.",
)

EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
IdOption = Annotated[
    int | None, typer.Option("--id", help="Rollout id (default: the newest of the environment).")
]


def _steer(
    found: Services | RemoteServices,
    project: str | None,
    env: str,
    action: RolloutAction,
    rollout_id: int | None,
) -> RolloutView:
    return found.rollouts.steer(pick_project(found, project), env, action, rollout_id)


@rollout_app.callback(invoke_without_command=True)
def rollout(
    ctx: typer.Context,
    env: EnvOption = "production",
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """A canary rollout: without a subcommand, the newest one's status."""
    if ctx.invoked_subcommand is None:
        status(env, None, project, state, server, as_json)


@rollout_app.command("status")
def status(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where a rollout is: its status, step, weight and the judge's last verdict."""
    found = services(state, server)
    view = found.rollouts.get(pick_project(found, project), env, rollout_id)
    if as_json:
        print_json(console, view.model_dump(mode="json"))
        return
    _print_status(view, _rolled_back(found, view))


def _rolled_back(found: Services | RemoteServices, view: RolloutView) -> bool:
    """Whether `shipyard rollback` has since put the rollout's stable version back live."""
    if view.status != RolloutStatus.PASSED or view.stable is None:
        return False
    deployments = found.deployments.list(view.project, view.environment)
    stable = [d.version for d in deployments if d.role == "stable"]
    return stable[-1:] == [view.stable]


def _print_status(view: RolloutView, rolled_back: bool) -> None:
    from shipyard.cli.render import prose

    why = f" ({view.reason})" if view.reason else ""
    console.print(
        f"rollout {view.id}: {view.project}/{view.environment} "
        f"{view.stable} -> {view.canary}: [bold]{prose(view.status)}[/]{why}",
        highlight=False,
    )
    if rolled_back:
        console.print(
            f"since then rolled back by `shipyard rollback`: all traffic is on {view.stable}"
            f" again, {view.canary} is the standby (`shipyard rollback` again rolls forward)",
            highlight=False,
        )
    if view.active and view.steps:
        where = f"step {view.step_index + 1}/{len(view.steps)} at {view.weight}%"
        driver = (
            "driven" if view.driven else "NOT driven: `shipyard rollout resume` or `shipyard up`"
        )
        console.print(f"{where}; {driver}")
    from shipyard.cli.render import make_table

    table = make_table("#", "weight", "pause", "shadow", title="steps")
    for index, step in enumerate(view.steps):
        pause = step.pause if step.pause == "manual" else f"{float(step.pause):g}s"
        table.add_row(str(index + 1), f"{step.weight}%", pause, f"{step.shadow or ''}")
    console.print(table)
    if view.verdicts:
        last = view.verdicts[-1]
        console.print(
            f"last verdict (step {last.step + 1}): {last.outcome} "
            f"({last.canary_requests} canary / {last.stable_requests} stable requests)"
        )
        for check in last.checks:
            console.print(f"  {check.sentence}", highlight=False, markup=False)


@rollout_app.command("promote")
def promote(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """End the current step (a `pause: manual` step waits for this) and go to the next."""
    view = _steer(services(state, server), project, env, RolloutAction.PROMOTE, rollout_id)
    if as_json:
        print_json(console, view.model_dump(mode="json"))
        return
    console.print(f"rollout {view.id}: promote requested")
    if not view.driven:
        console.print(
            "no process drives this rollout: `shipyard rollout resume` or `shipyard up` continues it"
        )


@rollout_app.command("abort")
def abort(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """All traffic back to stable at once and stop the canary."""
    view = _steer(services(state, server), project, env, RolloutAction.ABORT, rollout_id)
    if as_json:
        print_json(console, view.model_dump(mode="json"))
        return
    if view.status == RolloutStatus.ABORTING:
        console.print(f"rollout {view.id}: abort requested; its driver rolls it back")
        return
    console.print(f"rollout {view.id}: {view.status}; all traffic is on {view.stable}")


@rollout_app.command("pause")
def pause(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hold the rollout at its weights; the judge keeps watching and still rolls back."""
    view = _steer(services(state, server), project, env, RolloutAction.PAUSE, rollout_id)
    if as_json:
        print_json(console, view.model_dump(mode="json"))
        return
    console.print(f"rollout {view.id}: paused at {view.weight}%")


@rollout_app.command("resume")
def resume(
    env: EnvOption = "production",
    rollout_id: IdOption = None,
    project: ProjectOption = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue a paused rollout; one that no process drives is driven here to its verdict."""
    from shipyard.canary import records
    from shipyard.cli.common import err
    from shipyard.cli.render import prose
    from shipyard.controllers import Reconciler
    from shipyard.services import Services

    found = services(state, server)
    out = err if as_json else console
    view = _steer(found, project, env, RolloutAction.RESUME, rollout_id)
    out.print(f"rollout {view.id}: resumed")
    # A server drives what it resumes; here, with no driver, this process drives it. A driver
    # that was killed still holds its lease until it runs out: wait for that, not for a pid.
    if not isinstance(found, Services):
        _print_json(view, as_json)
        return
    if view.driven:
        out.print(f"rollout {view.id}: its driver's lease is held; checking that it is alive")
        if found.adapters.leases.settle(records.driver_lease(view.id)) is not None:
            _print_json(view, as_json)
            return
    out.print(f"rollout {view.id}: no process drives it; driving it here from its step")
    reconciler = Reconciler(found.adapters, out.print)
    reconciler.reconcile(drive=False)
    done = reconciler.drive(
        records.find_rollout(found.adapters.store, view.project, view.environment, view.id)
    )
    out.print(f"rollout {done.id}: {prose(done.status)}")
    _print_json(found.rollouts.get(view.project, view.environment, view.id), as_json)
    raise typer.Exit(0 if done.status == RolloutStatus.PASSED else 1)


def _print_json(view: RolloutView, as_json: bool) -> None:
    if as_json:
        print_json(console, view.model_dump(mode="json"))


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
    from shipyard.config.schema import parse_duration
    from shipyard.controllers import Reconciler

    try:
        seconds = parse_duration(interval)
    except ValueError:
        raise InvalidInput(
            f"--interval {interval!r} is not a duration.", hint="Write it as 2s, 1m or 0.5."
        ) from None
    reconciler = Reconciler(adapters(state, create=True), console.print)
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


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app)
    app.command()(up)
