"""One syncd command under cProfile on a copy of a state kept by ``bench_scale.py --keep``.

    python benchmarks/profile_kept.py --keep DIR [--out FILE.prof] [--top 30] -- sync --dry-run

Copies ``DIR/synced`` (catalog and emulator store) into a run directory, starts the
emulator on the copy, rebinds the copied catalog to it, and runs
``python -m cProfile -o FILE -m syncd -c CONFIG ARGS...`` on the kept tree, then prints the
functions with the most time of their own and the most cumulative time. The kept state is
not touched; the run directory is removed at the end (the profile stays at ``--out``).
Profiling slows Python code about 1.5-2x: read the shares, not the seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO
from bench_scale import KEY, KEPT_MARK, EmulatorProcess, copy_state, rebind, write_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, required=True, help="a directory built by bench_scale.py --keep")
    parser.add_argument("--out", type=Path, default=None, help="where the profile goes (default: DIR/profile.prof)")
    parser.add_argument("--top", type=int, default=30, help="rows of each table (default 30)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the syncd command after --, e.g. sync --dry-run")
    args = parser.parse_args()
    keep: Path = args.keep.resolve()
    command = [a for a in args.command if a != "--"] or ["sync", "--dry-run"]
    if not (keep / KEPT_MARK).exists():
        raise SystemExit(f"{keep} holds no complete kept state (no {KEPT_MARK}): run bench_scale.py --keep first")
    out = (args.out or keep / "profile.prof").resolve()
    env = {**os.environ, "SYNCD_BENCH_KEY": KEY, "PYTHONPATH": str(REPO)}
    root = Path(tempfile.mkdtemp(prefix="profile-", dir=keep))
    try:
        copy_state(keep / "synced", root)
        with EmulatorProcess(root / "emulator", env) as emu:
            rebind(root / "state-tree", emu.base_url)
            config = write_config(root, keep / "drop", emu.base_url, "tree")
            start = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "syncd", "-c", str(config),
                                   *command], env=env, capture_output=True, text=True)
            print(f"{' '.join(command)}: exit {done.returncode}, {time.monotonic() - start:.1f} s wall under cProfile")
            print(done.stdout[-1500:], done.stderr[-1500:], sep="\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(str(out), stream=text).sort_stats(order).print_stats(args.top)
        print(text.getvalue())


if __name__ == "__main__":
    main()
