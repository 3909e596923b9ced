"""Shared helpers for the benchmark scripts (not a test module; nothing here asserts timings)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MiB = 1024 * 1024
MB = 1_000_000  # every "MB/s" figure is 10^6 bytes per second


def machine() -> dict[str, Any]:
    """The machine a figure was measured on: CPU model, nproc, memory, Python."""
    model = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "nproc": os.cpu_count(),
        "mem_total_bytes": mem_total,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        # Other work on the machine skews every figure here (2 cores!): judge by this.
        "loadavg_1_5_15m_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_random(path: Path, size: int, seed: int = 0) -> Path:
    """``size`` incompressible bytes (distinct per seed), written in 16 MiB blocks."""
    import random

    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 16 * MiB)
            fh.write(rng.randbytes(n))
            left -= n
    return path


def mbps(nbytes: int, seconds: float) -> float:
    return round(nbytes / seconds / MB, 1) if seconds > 0 else float("inf")


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit(result: dict[str, Any]) -> None:
    """Print the result as JSON on stdout (the only thing a benchmark prints there)."""
    result["loadavg_1_5_15m_at_end"] = [round(x, 2) for x in os.getloadavg()]
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
