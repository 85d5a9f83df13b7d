"""Putting a version into an environment, shared by the stages and the CLI.

An environment's desired state is its rows in the ``deployments`` table (which versions run,
with which weight); the gateway's routes file is written from it, so a restarted gateway or a
later command sees the same picture.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shipyard.adapters import Adapters
from shipyard.artifacts.repository import materialize
from shipyard.artifacts.signing import KeyFile
from shipyard.config.loader import load_config
from shipyard.config.schema import EnvironmentConfig, ProjectConfig
from shipyard.coordination import new_owner
from shipyard.domain import Role
from shipyard.environments.migrations import apply_migrations, resolve_database_url
from shipyard.errors import Conflict, InvalidInput, NotFound, ShipyardError
from shipyard.paths import private_dir, private_file, project_file
from shipyard.runtime.interface import SERVING_REQUIREMENTS, Backend, ServerSpec
from shipyard.runtime.routes import Shadow
from shipyard.store.models import Deployment

DEFAULT_PRODUCTION_PORT = 8787

Say = Callable[[str], None]


def environment(config: ProjectConfig, name: str) -> EnvironmentConfig:
    try:
        return config.environments[name]
    except KeyError:
        known = ", ".join(config.environments) or "none"
        raise NotFound(
            f"Project {config.name} has no environment {name!r} (configured: {known}).",
            hint="Add it under `environments:` in shipyard.yaml.",
        ) from None


def gateway_port(name: str, env: EnvironmentConfig) -> int | None:
    """Environments with a port get a gateway; production always has one (for canaries)."""
    return env.port or (DEFAULT_PRODUCTION_PORT if name == "production" else None)


def serving_port(adapters: Adapters, project: str, name: str, env: EnvironmentConfig) -> int | None:
    """The port the environment answers on now: its running gateway's, else the configured one."""
    running_on = adapters.runtime.gateway_port(adapters.state.environment_dir(project, name))
    return running_on or gateway_port(name, env)


def pin_token(env: EnvironmentConfig) -> str | None:
    """The secret that lets a client pin a non-stable version; None (pins refused) when unset."""
    return os.environ.get(env.pin_token_env) or None if env.pin_token_env else None


def unpack(
    adapters: Adapters, project: str, environment_name: str, version: str
) -> tuple[Path, ProjectConfig]:
    """The artifact unpacked for an environment (digest checked) and the config it was built with."""
    dest = adapters.state.deployment_dir(project, environment_name, version)
    keys = KeyFile.resolve(adapters.state.signing_key)  # release artifacts must verify
    materialize(adapters.store, adapters.blobs, project, version, dest, keys=keys)
    return dest, load_config(dest / "code" / "shipyard.yaml")


def prepare(
    adapters: Adapters, config: ProjectConfig, name: str, code_dir: Path, version: str, say: Say
) -> dict[str, str]:
    """Apply the environment's migrations and write its config; return the server's variables."""
    env = environment(config, name)
    env_dir = private_dir(adapters.state.environment_dir(config.name, name))
    variables = {"SHIPYARD_ENVIRONMENT": name}
    if env.database:
        url = resolve_database_url(env.database, env_dir)
        variables["SHIPYARD_DATABASE_URL"] = url
        if env.migrations:
            result = apply_migrations(url, project_file(code_dir, env.migrations))
            say(
                f"{name}: migrations applied {result.applied or 'none'}; already applied {len(result.already_applied)}"
            )
    if env.config:
        target = env_dir / "config" / f"{version}{Path(env.config).suffix}"
        shutil.copyfile(project_file(code_dir, env.config), private_file(target))
        variables["SHIPYARD_CONFIG"] = str(target)
        say(f"{name}: config {env.config} written to {target}")
    return variables


def start(
    adapters: Adapters, project: str, name: str, version: str, role: Role, say: Say
) -> Deployment:
    """Unpack, prepare and start ``version`` in environment ``name``; returns the ready deployment."""
    dest, config = unpack(adapters, project, name, version)
    code_dir = dest / "code"
    variables = prepare(adapters, config, name, code_dir, version, say)
    lock = dest / "lock" / Path(config.install).name
    python_env = adapters.executor.python_env(lock, config.python, SERVING_REQUIREMENTS)
    say(f"{name}: environment {python_env.key[:12]} {'reused' if python_env.reused else 'created'}")
    serve = (
        config.model.serve
        if isinstance(config.model.serve, str)
        else config.model.serve.model_dump()
    )
    log = adapters.state.environment_dir(project, name) / "logs" / f"{version}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    spec = ServerSpec(
        version,
        python_env.python,
        code_dir,
        dest / "model",
        serve,
        config.model_name,
        log,
        variables,
        workers=config.model.serving.workers,
        max_batch_size=config.model.serving.max_batch_size,
        max_batch_wait_ms=config.model.serving.max_batch_wait * 1000,
        allow_pickle=pickle_allowed(adapters, project, version),
    )
    server = adapters.runtime.start_server(spec)
    say(f"{name}: {project}:{version} ready at {server.endpoint} (pid {server.pid})")
    artifact = adapters.store.get_artifact(project, version)
    row = Deployment(
        project=project,
        environment=name,
        version=version,
        artifact_id=artifact.id,
        role=role,
        weight=0,
        state="ready",
        endpoint=server.endpoint,
        pid=server.pid,
    )
    return adapters.store.save_deployment(row, "started")


def pickle_allowed(adapters: Adapters, project: str, version: str) -> bool:
    """Unpickling runs code: only a build signed by a trusted key whose model scan passed may.

    The same in every environment, so a pickled model goes through staging and qa as it will
    run in production; an artifact from elsewhere without a trusted build signature never does.
    """
    from shipyard.artifacts.attestations import may_load_pickle
    from shipyard.artifacts.catalog import Catalog

    artifact = adapters.store.get_artifact(project, version)
    keys = KeyFile.resolve(adapters.state.signing_key)
    return may_load_pickle(Catalog(adapters.store), artifact, keys)


ROUTES_TTL = 30.0  # seconds a killed route changer keeps the routes from others
ROUTES_WAIT = 45.0  # how long a route change waits for another: past a dead holder's TTL


class RoutesBusy(Conflict):
    """Another process is changing the environment's routes."""


def routes_lease(project: str, environment: str) -> str:
    return f"routes:{project}/{environment}"


@contextmanager
def changing_routes(
    adapters: Adapters, project: str, environment: str, *, wait: float = ROUTES_WAIT
) -> Iterator[None]:
    """Hold the environment's routes while they change together with the weights that mirror
    them in the store. Every route change and the reconciler's repair take it, so the
    reconciler never compares routes just written with weights read before the change (and
    writes the old routes back). Conflict when another holds it for longer than ``wait``.
    """
    name, owner = routes_lease(project, environment), new_owner("routes")
    deadline = time.monotonic() + wait
    while not adapters.leases.acquire(name, owner, ROUTES_TTL):
        if time.monotonic() >= deadline:
            holder = adapters.leases.holder(name)
            raise RoutesBusy(
                f"The routes of {project}/{environment} are being changed"
                + (f" by {holder.owner}." if holder else "."),
                hint="Try again in a moment.",
            )
        time.sleep(0.05)
    try:
        yield
    finally:
        adapters.leases.release(name, owner)


def route(
    adapters: Adapters,
    config: ProjectConfig,
    name: str,
    weights: Sequence[tuple[Deployment, int]],
    window: str,
    *,
    shadow: Shadow | None = None,
    move: bool = False,
) -> str:
    """Send traffic by weight through the environment's gateway; returns the gateway URL.

    The routes are written before the weights are stored: a process killed in between leaves
    the store one move behind, and the controller that resumes makes the move again.
    The environment stays on the port its clients use now; only a go-live (``move``) takes it
    to the port ``config`` names.
    """
    env = environment(config, name)
    port = gateway_port(name, env) if move else serving_port(adapters, config.name, name, env)
    if port is None:
        raise InvalidInput(
            f"Environment {name!r} has no gateway.",
            hint=f"Set environments.{name}.port in shipyard.yaml.",
        )
    env_dir = adapters.state.environment_dir(config.name, name)
    url = adapters.runtime.ensure_gateway(env_dir, port)
    backends = [
        Backend(d.version, d.endpoint or "", weight, stable=d.role == Role.STABLE)
        for d, weight in weights
    ]
    with changing_routes(adapters, config.name, name):
        adapters.runtime.set_routes(
            env_dir,
            backends,
            window,
            shadow=shadow,
            sticky_header=env.sticky_header,
            pin_token=pin_token(env),
        )
        for deployment, weight in weights:
            if deployment.weight != weight:
                deployment.weight = weight
                adapters.store.save_deployment(deployment, "weighted")
    return url


def go_live(
    adapters: Adapters, config: ProjectConfig, name: str, version: str, window: str, say: Say
) -> tuple[str, str | None]:
    """All traffic to ``version`` (started here unless it already runs).

    Behind a gateway, the version that was stable stays ready as ``standby`` for an instant
    `shipyard rollback`; without one (clients call the server directly) the versions it
    replaces stop. Used by staging, live and `shipyard deploy`. Returns the endpoint and
    the standby's version.

    The new version becomes ``stable`` only once it serves all traffic: when the move fails
    (the new port is taken, the gateway does not take the routes) the version is withdrawn
    and the previous stable keeps serving, as if nothing had been tried.
    """
    deployments = running(adapters, config.name, name)
    new = next((d for d in deployments if d.version == version), None)
    if new is None:
        new = start(adapters, config.name, name, version, Role.CANDIDATE, say)
    others = [d for d in deployments if d.id != new.id]
    if gateway_port(name, environment(config, name)) is None:
        new.role, new.weight = Role.STABLE, 100
        adapters.store.save_deployment(new, "live")
        for old in others:
            stop(adapters, old)
        return new.endpoint or "", None
    weights = [(new, 100), *((d, 0) for d in others)]
    try:
        url = route(adapters, config, name, weights, window, move=True)
    except BaseException:
        if new.role in (Role.CANDIDATE, Role.CANARY):  # a kept standby stays kept
            withdraw(adapters, config.name, name, version, say)
        raise
    new.role = Role.STABLE
    adapters.store.save_deployment(new, "live")
    return url, keep_one_standby(adapters, others)


def withdraw(adapters: Adapters, project: str, name: str, version: str, say: Say) -> None:
    """Take a version that did not go live out of the environment.

    All traffic goes back to the stable version (at the port clients use now) and the
    version's servers stop, so it can be neither the stable nor anyone's baseline later.
    A version that is already stable is left alone.
    """
    leaving = [
        d
        for d in running(adapters, project, name)
        if d.version == version and d.role != Role.STABLE
    ]
    if not leaving:
        return
    previous = stable(adapters, project, name)
    if previous is not None:
        try:
            _route_all_to(adapters, project, name, previous, leaving, f"withdraw-{version}")
        except ShipyardError as exc:  # the version stops all the same: it must not stay
            say(f"{name}: could not move traffic back to {previous.version}: {exc.message}")
    for deployment in leaving:
        stop(adapters, deployment)
    kept = f"; all traffic is on {previous.version}" if previous else ""
    say(f"{name}: {version} withdrawn{kept}")


def _route_all_to(
    adapters: Adapters,
    project: str,
    name: str,
    target: Deployment,
    leaving: Sequence[Deployment],
    window: str,
) -> None:
    """All traffic on ``target`` under its own config; ``leaving`` drops out of the routes."""
    _, config = unpack(adapters, project, name, target.version)
    if gateway_port(name, environment(config, name)) is None:
        return  # clients call the server directly: there are no routes
    gone = {d.id for d in leaving}
    staying = [d for d in running(adapters, project, name) if d.id not in gone]
    route(adapters, config, name, [(d, 100 if d.id == target.id else 0) for d in staying], window)


def keep_one_standby(adapters: Adapters, others: Sequence[Deployment]) -> str | None:
    """The version that was stable stays running for an instant rollback; older ones stop."""
    previous = next((d for d in others if d.role == Role.STABLE), None)
    for deployment in others:
        if deployment is previous:
            deployment.role = Role.STANDBY
            adapters.store.save_deployment(deployment, "standby")
        else:
            stop(adapters, deployment)
    return previous.version if previous else None


def roll_back(adapters: Adapters, project: str, name: str) -> tuple[Deployment, Deployment]:
    """All traffic back to the standby kept from the last release, in one route change.

    The two swap roles, so rolling back again rolls forward. Returns (now stable, now standby).
    """
    active = adapters.store.rollouts.active(project, name)
    if active:
        raise Conflict(
            f"Rollout {active[0].id} of {active[0].canary_version} is still going in {project}/{name}.",
            hint="`shipyard rollout abort` moves all traffic back to its stable version.",
        )
    previous = running(adapters, project, name, Role.STANDBY)
    current = stable(adapters, project, name)
    if not previous or current is None:
        raise NotFound(
            f"There is no previous version kept ready in {project}/{name}.",
            hint="`shipyard envs` shows what runs.",
        )
    back = previous[-1]
    # The environment as it runs now governs (port, sticky header), never the target's config:
    # a rollback changes routes only.
    _, config = unpack(adapters, project, name, current.version)
    route(adapters, config, name, [(back, 100), (current, 0)], f"rollback-{back.version}")
    back.role, current.role = Role.STABLE, Role.STANDBY
    adapters.store.save_deployment(back, "rolled-back-to")
    adapters.store.save_deployment(current, "standby")
    return back, current


def stop(adapters: Adapters, deployment: Deployment) -> None:
    if deployment.pid:
        adapters.runtime.stop_server(deployment.pid)
    deployment.state, deployment.role, deployment.weight = "stopped", Role.RETIRED, 0
    adapters.store.save_deployment(deployment, "stopped")


def stop_all(adapters: Adapters, project: str | None = None) -> list[Deployment]:
    """Stop every deployment and gateway (of one project); returns the deployments stopped."""
    rows = list(adapters.store.deployments(project))
    for deployment in rows:
        stop(adapters, deployment)
    for env_dir in (adapters.state.root / "environments").glob("*/*"):
        if project is None or env_dir.parent.name == project:
            adapters.runtime.stop_gateway(env_dir)
    return rows


def running(
    adapters: Adapters, project: str, name: str, role: Role | None = None
) -> list[Deployment]:
    rows = adapters.store.deployments(project, name)
    return [row for row in rows if role is None or row.role == role]


def stable(adapters: Adapters, project: str, name: str) -> Deployment | None:
    rows = running(adapters, project, name, Role.STABLE)
    return rows[-1] if rows else None
