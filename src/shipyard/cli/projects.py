"""`shipyard project ...` (projects a server builds on every push) and `shipyard hook install`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.common import JsonOption, ServerOption, StateOption, console, services
from shipyard.cli.render import print_json
from shipyard.errors import InvalidInput

if TYPE_CHECKING:  # the services import SQLAlchemy and cryptography: not at CLI start
    from shipyard.services.projects import ProjectView

project_app = typer.Typer(help="Projects a server builds on every push: add, list, show, remove.")
hook_app = typer.Typer(help="A local git hook that queues each new commit for the server.")

# What to set in each forge's webhook form, beside the URL and the secret.
FORGE_SETUP = {
    "github": "Settings > Webhooks: content type application/json, the secret, push events",
    "gitlab": "Settings > Webhooks: the secret as Secret token (and/or Signing token), push events",
    "gitea": "Settings > Webhooks > Gitea: POST, application/json, the secret, push events",
    "forgejo": "Settings > Webhooks > Forgejo: POST, application/json, the secret, push events",
}


def _server_url(server: str | None) -> str:
    """Where the forges post: the server this command talks to, when it talks to one."""
    return server.rstrip("/") if server else "http://<server>"


@project_app.command("add")
def project_add(
    name: Annotated[str, typer.Argument(help="The project's name, as in its shipyard.yaml.")],
    repo: Annotated[str, typer.Option("--repo", help="Its remote: a URL or a local path.")],
    branch: Annotated[
        list[str] | None,
        typer.Option("--branch", help="A branch (or glob, e.g. 'release/*') whose pushes run."),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option("--webhook-secret-file", help="Read the webhook secret from this file."),
    ] = None,
    poll: Annotated[
        str | None, typer.Option("--poll", help="Also poll the remote this often, e.g. 1m.")
    ] = None,
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a project: a mirror of its remote, the branches to run, its webhook secret."""
    secret = _read_secret(secret_file) if secret_file else None
    project, made = services(state, server, create=True).projects.add(
        name, repo, branches=branch or ["main"], webhook_secret=secret, poll_interval=poll
    )
    if as_json:
        from shipyard.services.projects import NewProject

        shown = NewProject(project=project, webhook_secret=made)
        print_json(console, shown.model_dump(mode="json"))
        return
    console.print(f"registered [bold]{project.name}[/]: {project.remote}")
    console.print(f"branches: {', '.join(project.branches)}; mirror: {project.repository}")
    if project.poll_interval:
        console.print(f"polled every {project.poll_interval:g} s")
    if secret is None:
        console.print("webhook secret (shown only now; paste it into the forge):")
        console.print(made, highlight=False, soft_wrap=True)
    else:
        console.print(f"webhook secret: the one in {secret_file}")
    _print_hooks(project, server)


@project_app.command("list")
def project_list(
    state: StateOption = None, server: ServerOption = None, as_json: JsonOption = False
) -> None:
    """The registered projects."""
    found = services(state, server).projects.list()
    if as_json:
        print_json(console, [p.model_dump(mode="json") for p in found])
        return
    from shipyard.cli.render import make_table

    table = make_table("project", "remote", "branches", "poll", typed=("project", "remote"))
    for p in found:
        poll = f"{p.poll_interval:g} s" if p.poll_interval else "-"
        table.add_row(p.name, p.remote or "", ", ".join(p.branches), poll)
    console.print(table)


@project_app.command("show")
def project_show(
    name: Annotated[str, typer.Argument(help="Project name.")],
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """A project's remote, branches, polling and webhook URLs (never its secret)."""
    project = services(state, server).projects.get(name)
    if as_json:
        print_json(console, project.model_dump(mode="json"))
        return
    console.print(f"[bold]{project.name}[/]: {project.remote}")
    console.print(f"branches: {', '.join(project.branches)}; mirror: {project.repository}")
    poll = f"every {project.poll_interval:g} s" if project.poll_interval else "off"
    console.print(f"polling: {poll}")
    _print_hooks(project, server)


@project_app.command("remove")
def project_remove(
    name: Annotated[str, typer.Argument(help="Project name.")],
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Unregister a project: no more webhooks or polling; its runs and history stay."""
    project = services(state, server).projects.remove(name)
    if as_json:
        print_json(console, project.model_dump(mode="json"))
        return
    console.print(f"unregistered {project.name}; its runs and mirror ({project.repository}) stay")


@project_app.command("run")
def project_run(
    name: Annotated[str, typer.Argument(help="Project name.")],
    ref: Annotated[str, typer.Option("--ref", help="A branch, tag or full sha.")] = "main",
    state: StateOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch a ref of the project's remote and queue a run of it for the server."""
    run = services(state, server).projects.run(name, ref, trigger="cli")
    if as_json:
        from shipyard.cli.render import run_dict

        print_json(console, run_dict(run))
        return
    console.print(f"queued [bold]{run.project}[/] run [bold]#{run.number}[/] at {run.sha[:12]}")


@hook_app.command("install")
def hook_install(
    path: Annotated[Path, typer.Argument(help="A path inside the repository.")] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Replace a post-commit hook Shipyard did not write.")
    ] = False,
    state: StateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Install a post-commit hook that queues each new commit (`shipyard run --detach`)."""
    from shipyard.githook import install_hook
    from shipyard.paths import resolve_state_dir

    hook, changed = install_hook(path, resolve_state_dir(state), force=force)
    if as_json:
        print_json(console, {"hook": str(hook), "installed": changed})
        return
    console.print(f"{'installed' if changed else 'already installed'}: {hook}")


def _print_hooks(project: ProjectView, server: str | None) -> None:
    base = _server_url(server)
    console.print("webhooks (the server's address must be reachable from the forge):")
    for forge, path in project.hooks.items():
        console.print(f"  {forge:<8} {base}{path}", highlight=False)
        console.print(f"           {FORGE_SETUP[forge]}", highlight=False)


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read the webhook secret from {path}: {exc}.") from exc


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
    app.add_typer(hook_app, name="hook")
