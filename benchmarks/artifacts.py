"""Artifact repository benchmark: push, pull and promotion against the disk's own speed.

For each size (default 100M and 1G) it writes a random model into a valid Shipyard artifact
(gzip level 1, so making it is quick), then measures in the same run, each in its own child
process (peak RSS from ``resource.getrusage``):

- peer: ``cp FILE COPY`` plus ``sha256sum FILE``: copying the bytes and hashing them;
- push: ``shipyard.artifacts.transfer.push`` into a fresh state directory (hash, scan the
  gzip and tar streams, fsync, rename, record);
- pull: ``pull`` back out (digest-checked copy, fsync, manifest).

Throughput ratios are peer time / our time (goal: 0.5 or better). Promotion is timed for a
1 KB and the largest artifact (median of 15 interleaved promotions into fresh immutable
repositories); the goal is the same time within noise. Peak memory should not grow with size.

    .venv/bin/python benchmarks/artifacts.py [--sizes 100M,1G] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
op, state, file = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
from shipyard.artifacts.local import LocalBlobStore
from shipyard.artifacts.signing import KeyFile
from shipyard.artifacts.transfer import pull, push
from shipyard.paths import StateDir
from shipyard.store import Store
paths = StateDir(state).ensure()
store, blobs = Store(paths.database_url), LocalBlobStore(paths.blobs)
keys = KeyFile(paths.signing_key, create=True)
started = time.perf_counter()
if op == "push":
    done = push(store, blobs, file)
elif op == "pull":
    name, version = sys.argv[4].split(":")
    done = pull(store, blobs, name, version, file, keys=keys)
seconds = time.perf_counter() - started if op != "idle" else 0.0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rss": rss}))
"""

PROMOTE = r"""
import json, statistics, sys, time
from pathlib import Path
from shipyard.artifacts.catalog import Catalog
from shipyard.artifacts.repository import promote
from shipyard.artifacts.signing import KeyFile
from shipyard.paths import StateDir
from shipyard.store import Store
paths = StateDir(Path(sys.argv[1]))
store, keys = Store(paths.database_url), KeyFile(paths.signing_key, create=True)
catalog = Catalog(store)
keys.signer()
refs = sys.argv[2:]
for ref in refs:
    name, version = ref.split(":")
    artifact = store.get_artifact(name, version)
    catalog.set_properties(artifact, {f"{s}.status": "passed" for s in ("test", "analyze", "qa")})
times = {ref: [] for ref in refs}
for i in range(15):  # interleaved, so a growing database or a busy machine hits both alike
    for ref in refs:
        name, version = ref.split(":")
        row = catalog.create_repository(f"rel-{version}-{i}".lower()[:60], immutable=True)
        with store.session() as s:
            s.merge(row).require = ["test", "analyze", "qa"]
        started = time.perf_counter()
        assert promote(store, name, version, target=row.name, keys=keys).promoted
        times[ref].append(time.perf_counter() - started)
result = {ref: statistics.median(values) for ref, values in times.items()}
print(json.dumps(result))
"""


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def make_artifact(path: Path, version: str, size: int) -> None:
    """A valid artifact whose model is ``size`` random bytes, streamed (never all in memory)."""
    info = json.dumps({"name": "bench", "version": version}).encode()
    with (
        gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        member = tarfile.TarInfo("build-info.json")
        member.size = len(info)
        tar.addfile(member, io.BytesIO(info))
        folder = tarfile.TarInfo("model")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        weights = tarfile.TarInfo("model/weights.bin")
        weights.size = size
        tar.addfile(weights, _RandomReader(size))


class _RandomReader(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left, 1 << 20)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


def child(op: str, state: Path, file: Path, *extra: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, op, str(state), str(file), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def drop(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(str(path) + ".manifest.json").unlink(missing_ok=True)


def peer(file: Path, work: Path) -> float:
    """cp + sha256sum of the same file: the bytes copied and hashed by the standard tools."""
    copy = work / "peer-copy"
    started = time.perf_counter()
    subprocess.run(["cp", str(file), str(copy)], check=True)
    subprocess.run(["sha256sum", str(file)], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    copy.unlink()
    return seconds


def mb_per_s(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:8.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="100M,1G", help="comma-separated sizes, e.g. 100M,1G")
    parser.add_argument("--dir", default="/tmp", help="where the temporary files go")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    free = shutil.disk_usage(args.dir).free
    if free < 4 * max(sizes) + (1 << 30):
        sys.exit(
            f"not enough space in {args.dir}: {free / 1e9:.1f} GB free, need {4 * max(sizes) / 1e9:.1f}"
        )
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-", dir=args.dir))
    try:
        run(sizes, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(sizes: list[int], work: Path) -> None:
    state = work / "state"
    idle = child("idle", state, work / "none")
    print(
        f"baseline: a child that only imports and opens the store peaks at {idle['rss'] / 1e6:.0f} MB RSS\n"
    )
    header = f"{'size':>8} {'op':>5} {'ours s':>8} {'peer s':>8} {'ours MB/s':>9} {'peer MB/s':>9} {'ratio':>6} {'peak RSS MB':>11}"
    print(header)
    print("-" * len(header))
    refs = []
    for index, size in enumerate(sizes):
        file = work / f"artifact-{index}.tar.gz"
        make_artifact(file, f"{index + 1}-bench", size)
        length = file.stat().st_size
        peer_seconds = peer(file, work)
        pushed = child("push", state, file)
        drop(file)
        out = work / f"pulled-{index}.tar.gz"
        pulled = child("pull", state, out, f"bench:{index + 1}-bench")
        drop(out)
        for op, result in (("push", pushed), ("pull", pulled)):
            print(
                f"{length / 1e6:7.0f}M {op:>5} {result['seconds']:8.2f} {peer_seconds:8.2f}"
                f" {mb_per_s(length, result['seconds'])} {mb_per_s(length, peer_seconds)}"
                f" {peer_seconds / result['seconds']:6.2f} {result['rss'] / 1e6:11.0f}"
            )
        refs.append((length, f"bench:{index + 1}-bench"))
    tiny = work / "tiny.tar.gz"
    make_artifact(tiny, "0-tiny", 1024)
    child("push", state, tiny)
    refs.insert(0, (tiny.stat().st_size, "bench:0-tiny"))
    chosen = [refs[0], refs[-1]]
    done = subprocess.run(
        [sys.executable, "-c", PROMOTE, str(state), *(ref for _, ref in chosen)],
        check=True,
        capture_output=True,
        text=True,
    )
    times = json.loads(done.stdout.strip().splitlines()[-1])
    print("\npromotion (metadata only, signs; median of 15, interleaved):")
    for length, ref in chosen:
        print(f"  {length:>13,} bytes  {times[ref] * 1000:7.2f} ms")
    small, large = (times[ref] for _, ref in chosen)
    print(f"  ratio large/small: {large / small:.2f} (goal: 1 within noise)")


if __name__ == "__main__":
    main()
