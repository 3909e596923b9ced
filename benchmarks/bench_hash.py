"""Hashing throughput: syncd's ``sha256_file`` against Python's own ``hashlib``.

    python benchmarks/bench_hash.py [--size 1GiB] [--repeat 5] [--dir /tmp]

One file of random bytes is written and read once to warm the page cache; each contender
runs once untimed, then ``--repeat`` timed times, in turn (interleaved, so drift on a
shared machine hits all alike):

* ``syncd``        ``syncd.sync.hashing.sha256_file`` (what the engine runs);
* ``file_digest``  ``hashlib.file_digest(fh, "sha256")`` (the reference);
* ``read_loop``    a plain ``fh.read(1 MiB)`` + ``update`` loop (a second reference).

It also sweeps the block size of a readinto-a-reused-buffer loop (the shape of
``sha256_file``), which is how ``syncd.sync.hashing.BLOCK`` was chosen. Figures are medians,
in MB/s (10^6 bytes/s), printed as JSON. Nothing is asserted: the target (syncd at least
90% of file_digest) is reported as ``target_met``.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import MiB, emit, machine, mbps, median, write_random

from syncd.sync.hashing import BLOCK, sha256_file
from syncd.units import parse_size


def file_digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_loop(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def readinto_loop(block: int) -> Callable[[Path], str]:
    def run(path: Path) -> str:
        digest = hashlib.sha256()
        buffer = bytearray(block)
        view = memoryview(buffer)
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(buffer):
                digest.update(view[:n])
        return digest.hexdigest()

    return run


def timed(fn: Callable[[Path], str], path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    digest = fn(path)
    return time.perf_counter() - start, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB", help="file size (default 1GiB)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per contender (default 5)")
    parser.add_argument("--dir", default=None, help="where to write the temp file (default: system temp)")
    parser.add_argument("--blocks", default="64KiB,256KiB,1MiB,4MiB,16MiB",
                        help="block sizes for the readinto sweep; empty to skip")
    args = parser.parse_args()
    host = machine()  # before any work: includes the load average at start
    size = parse_size(args.size)

    with tempfile.TemporaryDirectory(prefix="syncd-bench-hash-", dir=args.dir) as tmp:
        path = write_random(Path(tmp) / "data.bin", size)
        expected = file_digest(path)  # warm the page cache once (and know the answer)

        contenders: dict[str, Callable[[Path], str]] = {
            "syncd": sha256_file,
            "file_digest": file_digest,
            "read_loop": read_loop,
        }
        sweep = [parse_size(b) for b in args.blocks.split(",") if b.strip()]
        for block in sweep:
            contenders[f"readinto_{block // 1024}KiB"] = readinto_loop(block)

        for name, fn in contenders.items():  # one untimed run each: caches, allocator, clocks
            fn(path)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeat):
            for name, fn in contenders.items():
                seconds, digest = timed(fn, path)
                if digest != expected:
                    raise SystemExit(f"{name}: wrong digest {digest} != {expected}")
                times[name].append(seconds)

    results = {
        name: {
            "median_s": round(median(t), 4),
            "median_MBps": mbps(size, median(t)),
            "runs_MBps": [mbps(size, s) for s in t],
        }
        for name, t in times.items()
    }
    ratio = median(times["file_digest"]) / median(times["syncd"])
    emit({
        "benchmark": "hash",
        "machine": host,
        "file_bytes": size,
        "repeat": args.repeat,
        "page_cache": "warm (file read once, each contender run once untimed, before timing)",
        "syncd_block_bytes": BLOCK,
        "reference": "hashlib.file_digest(fh, 'sha256')",
        "results": results,
        "syncd_vs_reference": round(ratio, 3),
        "target": "syncd >= 0.90 x reference",
        "target_met": ratio >= 0.90,
    })


if __name__ == "__main__":
    main()
