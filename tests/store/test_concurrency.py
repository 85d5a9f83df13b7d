"""Two processes creating runs of one project at once, on one SQLite file.

This is what two `shipyard run` commands (or a webhook and a CLI user) do. Each must get its
own run number, the numbers must leave no gap, and neither may see an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shipyard.store import Store

RUNS_EACH = 20

WORKER = """\
import json, os, sys, time
from shipyard.store import Store

store = Store(sys.argv[1], run_migrations=False)
store.list_projects()  # connect before the start line, so both start at full speed
print("ready", flush=True)
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.002)
numbers = [store.create_run("iris", f"{i:040x}", None).number for i in range({runs})]
print(json.dumps(numbers))
"""


def start_workers(tmp_path: Path, db_url: str, go: Path, count: int) -> list[subprocess.Popen[str]]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER.replace("{runs}", str(RUNS_EACH)))
    return [
        subprocess.Popen(
            [sys.executable, str(script), db_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def test_two_processes_get_distinct_consecutive_run_numbers(tmp_path: Path, db_url: str) -> None:
    setup = Store(db_url)
    try:
        setup.ensure_project("iris", "/repos/iris")
        outputs = run_workers(tmp_path, db_url, 2)
        for code, _, err in outputs:
            assert code == 0, err[-2000:]
        numbers = [json.loads(out) for _, out, _ in outputs]
        for own in numbers:
            assert own == sorted(own)  # each process sees its own runs in order
        expected = list(range(1, 2 * RUNS_EACH + 1))
        assert sorted(numbers[0] + numbers[1]) == expected
        runs = setup.run_records("iris", limit=100)
        assert sorted(record.run["number"] for record in runs) == expected
        assert all(len(record.stages) == 9 for record in runs)
    finally:
        setup.close()


def run_workers(tmp_path: Path, db_url: str, count: int) -> list[tuple[int, str, str]]:
    """Start ``count`` workers, let them go at the same moment, and collect their output."""
    go = tmp_path / "go"
    workers = start_workers(tmp_path, db_url, go, count)
    outputs: list[tuple[int, str, str]] = []
    try:
        # Both have imported SQLAlchemy and connected before either starts creating runs.
        assert [worker.stdout.readline().strip() for worker in workers if worker.stdout] == [
            "ready"
        ] * count
        go.touch()
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            outputs.append((worker.returncode, out, err))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return outputs
