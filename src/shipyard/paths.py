"""Where Shipyard keeps its state on disk.

One state directory (``$SHIPYARD_STATE``, else the nearest ``.shipyard/`` in the working folder
or a parent, else a new ``./.shipyard`` for the commands that set Shipyard up) holds
the metadata database, blobs, run logs and deployments. Python environments are a cache, not
state: they are keyed by the hash of lock + Python version, so one machine-wide cache (default
``~/.cache/shipyard``, or ``$SHIPYARD_CACHE``) lets every state directory reuse them, as uv's
own cache does for packages. Every path is derived here so that no other module invents its
own layout.

The state is private: the directory and its folders are 0700, its files 0600 (0700 where the
owner must execute them), set explicitly rather than left to the umask. :func:`private_dir` and
:func:`private_file` are how state folders and files are created; a state directory left open
by an older Shipyard is tightened the first time it is opened.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import NotFound, StageFailed

STATE_ENV_VAR = "SHIPYARD_STATE"
CACHE_ENV_VAR = "SHIPYARD_CACHE"
DEFAULT_STATE_DIR = ".shipyard"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def resolve_state_dir(
    explicit: str | os.PathLike[str] | None = None, *, must_exist: bool = False
) -> Path:
    """The state directory: the explicit one, else ``$SHIPYARD_STATE``, else the nearest
    ``.shipyard/`` holding a database in this folder or a parent (as git finds ``.git``), else
    ``./.shipyard``.

    ``must_exist`` is for commands that only read or change existing state: they say there is
    none (:class:`NotFound`) instead of creating an empty one where the user happens to be.
    """
    chosen = explicit or os.environ.get(STATE_ENV_VAR)
    if chosen:
        root = Path(chosen).expanduser().resolve()
    else:
        here = Path.cwd()
        found = (folder / DEFAULT_STATE_DIR for folder in (here, *here.parents))
        root = next((r for r in found if has_state(r)), here / DEFAULT_STATE_DIR)
    if must_exist and not has_state(root):
        raise no_state(root, bool(chosen))
    return root


def has_state(root: Path) -> bool:
    return StateDir(root).database.is_file()


def no_state(root: Path, chosen: bool) -> NotFound:
    if chosen:
        where = f"{root} (from --state or ${STATE_ENV_VAR})"
    else:
        where = (
            f"{root.parent} (looked for {DEFAULT_STATE_DIR}/ here and in parent folders; "
            f"{STATE_ENV_VAR} unset)"
        )
    return NotFound(
        f"There is no Shipyard state in {where}.",
        hint="Run `shipyard init` then `shipyard run` in a project's repository first, "
        "or pass --state DIR.",
    )


def resolve_cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The environment cache: explicit, else ``$SHIPYARD_CACHE``, else the user's cache folder."""
    chosen = explicit or os.environ.get(CACHE_ENV_VAR)
    if not chosen:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        chosen = Path(base) / "shipyard"
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class StateDir:
    root: Path
    cache: Path | None = None  # shared environment cache; None keeps it inside ``root``

    @property
    def _cache_root(self) -> Path:
        return self.cache or self.root

    @property
    def database(self) -> Path:
        return self.root / "shipyard.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def signing_key(self) -> Path:
        """The Ed25519 key that signs release artifacts (created on first use, mode 0600)."""
        return self.root / "keys" / "signing.key"

    @property
    def secrets_key(self) -> Path:
        """The key that encrypts secrets Shipyard must read back (webhook secrets), 0600."""
        return self.root / "keys" / "secrets.key"

    def mirror(self, project: str) -> Path:
        """The server's bare mirror of a registered project's repository."""
        return self.root / "mirrors" / f"{project}.git"

    @property
    def envs(self) -> Path:
        """Python environments, cached by the hash of lock + Python version."""
        return self._cache_root / "envs"

    @property
    def uv_cache(self) -> Path:
        return self._cache_root / "cache" / "uv"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def env_locks(self) -> Path:
        """Locks that keep two processes from building the same environment at once."""
        return self._cache_root / "locks"

    def run_dir(self, project: str, number: int) -> Path:
        return self.root / "runs" / project / str(number)

    def stage_log(self, project: str, number: int, stage: str) -> Path:
        return self.run_dir(project, number) / "logs" / f"{stage}.log"

    def workspace(self, project: str, number: int) -> Path:
        return self.root / "workspaces" / project / str(number)

    def environment_dir(self, project: str, environment: str) -> Path:
        """Config, databases and the gateway's routes of one deployment environment."""
        return self.root / "environments" / project / environment

    def deployment_dir(self, project: str, environment: str, version: str) -> Path:
        return self.environment_dir(project, environment) / "deployments" / version

    def deployment_dirs(self) -> list[Path]:
        """Every unpacked deployment, of every project and environment."""
        pattern = "environments/*/*/deployments/*"
        return sorted(p for p in self.root.glob(pattern) if p.is_dir() and not p.is_symlink())

    def ensure(self) -> StateDir:
        """Create the layout, private; tighten a state directory that others could read."""
        opened_up = self.root.is_dir() and self.root.stat().st_mode & 0o077
        for path in (self.root, self.blobs, self.envs, self.locks, self.env_locks):
            private_dir(path)
        if opened_up:
            tighten(self.root)
        # SQLite gives the -wal and -shm files the database file's mode, so this covers all three.
        private_file(self.database)
        return self


def private_dir(path: Path) -> Path:
    """``path`` as a folder; the folders this creates are 0700 whatever the umask."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """``path``, created empty with mode 0600 (and private folders) unless it exists."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    except FileExistsError:
        return path
    os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken bits off, never added any
    os.close(fd)
    return path


def tighten(root: Path) -> None:
    """Take group and other permissions off ``root`` and everything in it (links untouched)."""
    os.chmod(root, PRIVATE_DIR)
    for folder, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
                os.chmod(path, stat.S_IMODE(mode) & 0o700)


def project_file(root: Path, relative: str) -> Path:
    """The project's file ``relative`` under ``root``, once every symlink on the way is followed.

    The config loader refuses paths that leave the project by their text; a symlink can only
    be judged here, where the file is used.
    """
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise StageFailed(
            f"{relative!r} points outside the project.",
            hint="Use a path inside the repository; a symlink must not lead out of it.",
        )
    if not path.exists():
        raise StageFailed(
            f"{relative} does not exist in the project.",
            hint="Commit it or fix the path in shipyard.yaml.",
        )
    return path
