"""The SQLAlchemy migration target against a real, throwaway PostgreSQL server.

Skipped where the machine has no PostgreSQL binaries or the `postgres` extra (psycopg) is not
installed; the SQLite tests cover the shared logic everywhere.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.environments.migrations import apply_migrations
from shipyard.errors import Conflict, StageFailed

pytest.importorskip("psycopg")


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))), None
    )
    if not found:
        return None
    real = Path(found).resolve().parent
    return real if (real / "initdb").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; CI runs as root, a developer usually does not.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed")
    home = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    data, port = home / "data", _free_port()
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            _as_postgres(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(home / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(home, ignore_errors=True)


def test_postgres_applies_atomically_and_remembers(postgres_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    # A % in a string must reach the server as is, not be read as a driver placeholder.
    (folder / "0001_a.sql").write_text(
        "CREATE TABLE a (id int, s text DEFAULT '50%;x');\nINSERT INTO a (id) VALUES (1);\n"
    )
    assert apply_migrations(postgres_url, folder).applied == ["0001_a.sql"]
    assert apply_migrations(postgres_url, folder).already_applied == ["0001_a.sql"]

    (folder / "0002_b.sql").write_text("CREATE TABLE b (id int);\nINSERT INTO nope VALUES (1);\n")
    with pytest.raises(
        StageFailed, match=r'0002_b.sql failed on postgresql\+psycopg://.*"nope" does not exist'
    ):
        apply_migrations(postgres_url, folder)
    (folder / "0002_b.sql").write_text("CREATE TABLE b (id int);\n")  # b was rolled back: no clash
    assert apply_migrations(postgres_url, folder).applied == ["0002_b.sql"]

    (folder / "0001_a.sql").write_text("-- edited\n")
    with pytest.raises(Conflict, match=r"0001_a\.sql was changed"):
        apply_migrations(postgres_url, folder)


def test_unreachable_server_is_a_clear_failure(tmp_path: Path) -> None:
    with pytest.raises(StageFailed, match="could not open database postgresql"):
        apply_migrations(f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/x", tmp_path)
