"""Projects: repositories a server builds on every push to the branches it is told to watch.

Registering a project (``add``) keeps a bare mirror of its remote in the state directory (runs
read commits from it, never from someone's checkout), its branch filters (globs such as
``release/*``), an optional polling interval, and its webhook secret, sealed
(``secretbox.py``): the signature checks need the secret itself, and nothing but the sealed
text is stored. A push reaches ``push`` from a webhook (``server/hooks.py``), from polling
(``server/polling.py``) or by hand (``run``): the branch filter, the once-only delivery, the
fetch of exactly the pushed commit, and the queued run are all decided here.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard import git
from shipyard.adapters import Adapters
from shipyard.config.loader import parse_config
from shipyard.domain import Status
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.secretbox import SecretBox
from shipyard.services import registration
from shipyard.services.cache import ViewCache
from shipyard.services.runs import CONFIG_FILE, Runs
from shipyard.services.views import RunView, View
from shipyard.store.models import Project, Run, WebhookDelivery

__all__ = ["Forge", "HookResult", "HookStatus", "NewProject", "ProjectView", "Projects"]


class Forge(StrEnum):
    """Where a webhook comes from; also the trigger its runs record."""

    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"
    FORGEJO = "forgejo"


class HookStatus(StrEnum):
    QUEUED = "queued"  # a run was queued
    REFUSED = "refused"  # preflight found what would stop it: the run is recorded as failed
    DUPLICATE = "duplicate"  # this delivery was seen before: nothing new
    IGNORED = "ignored"  # not a push that starts runs (the reason says why)
    PONG = "pong"  # the forge's test delivery


class ProjectView(View):
    name: str
    registered: bool
    remote: str | None
    branches: list[str]
    poll_interval: float | None
    repository: str
    created_at: datetime
    hooks: dict[str, str]  # forge -> the path of its webhook on the server

    @classmethod
    def of(cls, row: Project) -> ProjectView:
        return cls(
            name=row.name,
            registered=row.registered,
            remote=row.remote,
            branches=list(row.branches or []),
            poll_interval=row.poll_interval,
            repository=row.repository,
            created_at=row.created_at,
            hooks={forge.value: f"/hooks/{forge.value}/{row.name}" for forge in Forge},
        )

    @property
    def default_ref(self) -> str:
        """What a run started by hand builds when no ref is given: the first watched branch
        that is a plain name, else the remote's HEAD."""
        plain = [branch for branch in self.branches if not set(branch) & set("*?[")]
        return plain[0] if plain else "HEAD"

    def watches(self, branch: str) -> bool:
        """Whether pushes to ``branch`` start runs (a glob's ``*`` also matches ``/``)."""
        return any(fnmatch.fnmatchcase(branch, glob) for glob in self.branches)


class NewProject(View):
    """A project just registered, with its webhook secret: the only time it is shown."""

    project: ProjectView
    webhook_secret: str


class HookResult(View):
    status: HookStatus
    run: int | None = None
    reason: str | None = None


class Projects:
    def __init__(self, adapters: Adapters, runs: Runs) -> None:
        self.adapters, self.store, self.runs = adapters, adapters.store, runs
        self.box = SecretBox(adapters.state.secrets_key)
        self.views = ViewCache(adapters.store)  # reads until the store changes

    def add(
        self,
        name: str,
        repo: str,
        *,
        branches: list[str] | None = None,
        webhook_secret: str | None = None,
        poll_interval: float | str | None = None,
    ) -> tuple[ProjectView, str]:
        """Register ``repo`` as project ``name``; returns it with its webhook secret (shown once)."""
        registration.check_name(name)
        watched = registration.check_branches(branches or ["main"])
        remote = registration.check_remote(repo)
        interval = registration.check_interval(poll_interval)
        secret = (
            registration.new_secret()
            if webhook_secret is None
            else registration.check_secret(webhook_secret)
        )
        git.ls_remote(remote, "HEAD")  # reachable now, or refused before anything is stored
        mirror = git.repository_root(git.mirror(self.adapters.state.mirror(name)))
        with self.store.session() as s:
            row = s.scalar(select(Project).where(Project.name == name))
            if row is not None and row.registered:
                raise Conflict(
                    f"Project {name!r} is already registered (remote {row.remote}).",
                    hint=f"`shipyard project remove {name}` first to change it.",
                )
            if row is None:
                row = Project(name=name, repository=str(mirror))
                s.add(row)
            row.repository, row.registered, row.remote = str(mirror), True, remote
            row.branches, row.poll_interval = watched, interval
            row.webhook_secret = self.box.seal(secret)
            # The secret itself never goes into the audit log.
            self.store.record(
                s, "project.registered", name, remote=remote, branches=watched, poll=interval
            )
            s.flush()
            return ProjectView.of(row), secret

    def list(self, *, every: bool = False) -> list[ProjectView]:
        """The registered projects; with ``every``, also those only ever run from a CLI."""

        def read() -> list[ProjectView]:
            with self.store.session() as s:
                query = select(Project).order_by(Project.name)
                if not every:
                    query = query.where(Project.registered)
                return [ProjectView.of(row) for row in s.scalars(query)]

        return list(self.views.get(("projects", every), read))

    def get(self, name: str) -> ProjectView:
        with self.store.session() as s:
            return ProjectView.of(_registered(s, name))

    def remove(self, name: str) -> ProjectView:
        """Unregister: no more webhooks or polling; its runs, history and mirror stay."""
        with self.store.session() as s:
            row = _registered(s, name)
            row.registered, row.webhook_secret = False, None
            self.store.record(s, "project.unregistered", name)
            return ProjectView.of(row)

    def last_sha(self, name: str, branch: str) -> str | None:
        """The sha of the newest run of ``branch``: what polling compares the head with."""
        with self.store.session() as s:
            query = (
                select(Run.sha)
                .join(Project)
                .where(Project.name == name, Run.ref == branch)
                .order_by(Run.number.desc())
                .limit(1)
            )
            return s.scalar(query)

    def hook_secret(self, name: str) -> str:
        """The webhook secret, for checking a delivery's signature; never shown or logged."""
        with self.store.session() as s:
            sealed = _registered(s, name).webhook_secret
        if not sealed:
            raise NotFound(f"Project {name!r} has no webhook secret.")
        return self.box.open(sealed)

    def run(
        self, name: str, ref: str, *, trigger: str = "api", branch: str | None = None
    ) -> RunView:
        """Fetch ``ref`` (a branch, tag or full sha) of the project's remote and queue a run."""
        return self._fetch_and_queue(name, ref, trigger, branch, record_refusal=False)

    def _fetch_and_queue(
        self, name: str, ref: str, trigger: str, branch: str | None, *, record_refusal: bool
    ) -> RunView:
        """``run``; with ``record_refusal`` (see ``Runs.queue``) for pushes nobody watches."""
        project = self.get(name)
        assert project.remote is not None  # registered projects have one
        # The state's mirror, not ``repository``: a local `shipyard run` in a checkout of the
        # project points that at the checkout, which a server must never fetch into.
        mirror = git.mirror(self.adapters.state.mirror(name))
        sha, found = self._resolve(project.remote, ref)
        branch = branch or found
        git.fetch_commit(mirror, project.remote, sha, branch)
        _check_config_name(mirror, sha, name)
        return self.runs.queue(
            mirror, sha, trigger=trigger, branch=branch, record_refusal=record_refusal
        )

    def push(
        self, name: str, *, trigger: str, ref: str, sha: str, delivery: str | None = None
    ) -> HookResult:
        """A forge says ``ref`` now points at ``sha``: queue a run when the project wants one."""
        project = self.get(name)
        if not ref.startswith("refs/heads/"):
            return _ignored(f"{ref} is not a branch; only pushes to branches start runs")
        branch = ref.removeprefix("refs/heads/")
        if registration.bad_ref(branch):
            raise InvalidInput(f"ref: {ref!r} is not a valid branch name.")
        if set(sha) == {"0"}:
            return _ignored(f"branch {branch} was deleted")
        if not project.watches(branch):
            return _ignored(f"branch {branch} is not one of {', '.join(project.branches)}")
        if delivery is not None:
            seen, number = self._claim(name, trigger, delivery)
            if seen:
                return HookResult(status=HookStatus.DUPLICATE, run=number)
        try:
            # Nobody waits at a terminal for a push: a refusal is recorded as a failed run.
            run = self._fetch_and_queue(name, sha, trigger, branch, record_refusal=True)
        except BaseException:
            if delivery is not None:
                self._unclaim(trigger, delivery)  # a redelivery of it may try again
            raise
        if delivery is not None:
            self._settle(trigger, delivery, run.number)
        if run.status == Status.FAILED:  # the build stage's message has every problem
            why = run.stages[0].message or run.message
            return HookResult(status=HookStatus.REFUSED, run=run.number, reason=why)
        return HookResult(status=HookStatus.QUEUED, run=run.number)

    # -- helpers -------------------------------------------------------------------------------

    def _resolve(self, remote: str, ref: str) -> tuple[str, str | None]:
        """The sha ``ref`` names on the remote, and the branch when it is one."""
        if git.is_full_sha(ref.lower()):
            return ref.lower(), None
        if not ref or registration.bad_ref(ref.removeprefix("refs/")):
            raise InvalidInput(
                f"ref: {ref!r} is not a branch, tag or full sha.",
                hint="For example main, v1.2 or a 40-digit sha.",
            )
        heads = git.ls_remote(remote, ref)
        for full in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if full in heads:
                branch = (
                    full.removeprefix("refs/heads/") if full.startswith("refs/heads/") else None
                )
                return heads[full], branch
        raise NotFound(
            f"{remote} has no branch or tag {ref!r}.", hint="Push it first, or give a full sha."
        )

    def _claim(self, project: str, provider: str, delivery: str) -> tuple[bool, int | None]:
        """Take ``delivery``: (False, None) the first time; (True, its run) when seen before."""
        if len(delivery) > 200:
            raise InvalidInput("The delivery id is longer than 200 characters.")
        try:
            with self.store.session() as s:
                seen = s.scalar(_delivery(provider, delivery))
                if seen is not None:
                    return True, seen.run_number
                s.add(WebhookDelivery(project=project, provider=provider, delivery=delivery))
                return False, None
        except IntegrityError:  # the same delivery, at the same moment, on another connection
            return True, None

    def _unclaim(self, provider: str, delivery: str) -> None:
        with self.store.session() as s:
            row = s.scalar(_delivery(provider, delivery))
            if row is not None:
                s.delete(row)

    def _settle(self, provider: str, delivery: str, number: int) -> None:
        with self.store.session() as s:
            row = s.scalar(_delivery(provider, delivery))
            if row is not None:
                row.run_number = number


def _delivery(provider: str, delivery: str) -> Select[WebhookDelivery]:
    return select(WebhookDelivery).where(
        WebhookDelivery.provider == provider, WebhookDelivery.delivery == delivery
    )


def _registered(s: Session, name: str) -> Project:
    row = s.scalar(select(Project).where(Project.name == name, Project.registered))
    if row is None:
        raise NotFound(
            f"There is no registered project {name!r}.",
            hint="`shipyard project list` shows them; `shipyard project add` registers one.",
        )
    return row


def _ignored(reason: str) -> HookResult:
    return HookResult(status=HookStatus.IGNORED, reason=reason)


def _check_config_name(mirror: Path, sha: str, name: str) -> None:
    """A registered project runs only commits that say they are that project."""
    text = git.show_file(mirror, sha, CONFIG_FILE)
    if text is None:
        return  # Runs.queue refuses it and says what to do
    found = parse_config(text, f"{CONFIG_FILE} at {sha[:12]}").name
    if found != name:
        raise InvalidInput(
            f"Commit {sha[:12]} is project {found!r} (its {CONFIG_FILE} says so), not {name!r}.",
            hint=f"Register it as {found!r}, or fix `name` in {CONFIG_FILE}.",
        )
