"""The daemon's periodic rescan pass, in process, on a copy of a state kept by
``bench_scale.py --keep``: its CPU seconds (the worker thread's own), optionally a
cProfile of it, and how long a new clip written as a rescan begins waits for its
upload to start.

    python benchmarks/profile_rescan.py --keep DIR [--build-mirrored] [--state mirrored] [--rescans 3]
                                        [--profile FILE.prof] [--top 25] [--new-clip] [--no-mirror]
                                        [--mirror-defer-cap SECONDS]

Copies ``DIR/STATE`` (``state-tree`` and ``emulator``; ``synced`` is what ``--keep``
builds; ``--build-mirrored`` keeps one after a mirror catch-up beside it, ``mirrored``) into a
run directory, starts the emulator on the copy and runs a ``Daemon`` (settle 1 s,
rescan 10 m, remote poll 2 m: the daemon phase's settings) in a thread of this
process on the kept tree. After its start-up pass, each rescan is asked for as the
rescan timer asks (``demand("scan")``) and its worker step timed with
``time.thread_time``. ``--new-clip``: one more rescan, with a new clip written in
the tree just after it is asked for, and a second one 0.3 s after the first's upload
started (while its video processes): seconds from each write to its upload's first
request in the emulator's log, to both clips' sidecars, and the CPU of those passes.
Prints JSON. The kept state is not touched (the clips and their sidecars are removed
at the end; the ``mirrored`` state's sidecars stay in the tree).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from _common import machine
from bench_scale import KEY, EmulatorProcess, copy_state, measured, rebind, write_config

from syncd.config import load_config
from syncd.models import SIDECAR_SUFFIXES
from syncd.mirror.mirror import Mirror
from syncd.service.daemon import Daemon, Timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, required=True)
    parser.add_argument("--state", default="synced", help="the kept state under DIR to copy (default: synced)")
    parser.add_argument("--rescans", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the rescans into this file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--new-clip", action="store_true")
    parser.add_argument("--mirror-defer-cap", type=float, default=None,
                        help="Timings.mirror_defer_cap (0: the mirror runs after every pass, as before round 5)")
    parser.add_argument("--build-mirrored", action="store_true",
                        help="first build DIR/mirrored: DIR/synced after one mirror catch-up `syncd sync` (its "
                             "sidecars stay in the tree; bench_scale.py's next mirror run removes them)")
    parser.add_argument("--no-mirror", action="store_true",
                        help="skip the mirror step (a state whose mirror never caught up would start with it)")
    args = parser.parse_args()
    keep: Path = args.keep.resolve()
    drop = keep / "drop"
    env = {**os.environ, "SYNCD_BENCH_KEY": KEY}
    if args.build_mirrored:
        build_mirrored(keep, env)
    root = Path(tempfile.mkdtemp(prefix="rescan-", dir=keep))
    result: dict[str, Any] = {"benchmark": "profile_rescan", "machine": machine(), "state": args.state}
    new_clip = drop / "cam0000" / "rescan-new-clip.mp4"
    second = drop / "cam0001" / "rescan-second-clip.mp4"
    try:
        copy_state(keep / args.state, root)
        with EmulatorProcess(root / "emulator", env) as emu:
            rebind(root / "state-tree", emu.base_url)
            config_path = write_config(root, drop, emu.base_url, "tree")
            settings = yaml.safe_load(config_path.read_text())
            settings.update(upload={"settle_seconds": 1, "direct_upload_below": "1MiB"},
                            schedule={"rescan": "10m", "remote_poll": "2m"}, log_level="warning")
            config_path.write_text(yaml.safe_dump(settings))
            config = load_config(config_path, env)
            if args.no_mirror:
                Mirror.due = lambda self, *a, **k: False  # type: ignore[method-assign]
            timings = Timings() if args.mirror_defer_cap is None else Timings(mirror_defer_cap=args.mirror_defer_cap)
            result["mirror_defer_cap"] = timings.mirror_defer_cap
            result.update(run(Daemon(config, timings=timings), args, emu.base_url, new_clip, second))
    finally:
        new_clip.unlink(missing_ok=True)
        second.unlink(missing_ok=True)
        for clip in (new_clip, second):
            for suffix in SIDECAR_SUFFIXES:
                clip.with_name(clip.name + suffix).unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.profile is not None:
        text = io.StringIO()
        for order in ("tottime", "cumulative"):
            pstats.Stats(str(args.profile), stream=text).sort_stats(order).print_stats(args.top)
        print(text.getvalue(), file=sys.stderr)


def build_mirrored(keep: Path, env: dict[str, str]) -> None:
    """``DIR/mirrored``: the kept synced state after the mirror caught up (about 12 minutes
    and 300 CPU-s at 100,000 videos), so each profile run starts with the mirror complete."""
    target = keep / "mirrored"
    shutil.rmtree(target, ignore_errors=True)
    copy_state(keep / "synced", target)
    with EmulatorProcess(target / "emulator", env) as emu:
        rebind(target / "state-tree", emu.base_url)
        config = write_config(target, keep / "drop", emu.base_url, "tree")
        done = measured([sys.executable, "-m", "syncd", "-c", str(config), "sync"], env)
        print(f"mirror catch-up: {json.dumps(done)}", file=sys.stderr, flush=True)


def run(daemon: Daemon, args: argparse.Namespace, base_url: str, new_clip: Path, second: Path) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    profiler = cProfile.Profile() if args.profile is not None else None
    real_step = daemon._step
    profiling = threading.Event()
    busy = threading.Event()

    def step() -> None:
        with daemon._demand_lock:
            demands = sorted(daemon._demands)
        busy.set()
        cpu, wall = time.thread_time(), time.monotonic()
        if profiler is not None and profiling.is_set():
            profiler.enable()
            try:
                real_step()
            finally:
                profiler.disable()
        else:
            real_step()
        steps.append({"demands": demands, "cpu_s": round(time.thread_time() - cpu, 3),
                      "wall_s": round(time.monotonic() - wall, 3)})
        busy.clear()

    daemon._step = step  # type: ignore[method-assign]
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, daemon=True)
    started = time.monotonic()
    thread.start()
    out: dict[str, Any] = {}
    try:
        wait(lambda: daemon.passes >= 1, 3600, "the start-up pass")
        out["start_up"] = {"wall_s": round(time.monotonic() - started, 1), "steps": list(steps)}
        time.sleep(3)  # let the start-up's follow-ups (if any) run
        rescans: list[dict[str, Any]] = []
        profiling.set()
        for _ in range(args.rescans):
            rescans.append(one_rescan(daemon, steps))
        out["rescans"] = rescans
        out["rescan_cpu_s"] = sorted(r["cpu_s"] for r in rescans)
        print(json.dumps(out), file=sys.stderr, flush=True)
        if args.new_clip:
            out["new_clip"] = clip_during_rescan(daemon, steps, base_url, new_clip, second, busy)
        profiling.clear()
    finally:
        daemon.request_stop()
        thread.join(60)
        if profiler is not None:
            profiler.dump_stats(str(args.profile))
    return out


def one_rescan(daemon: Daemon, steps: list[dict[str, Any]]) -> dict[str, Any]:
    before = len(steps)
    daemon._demand("scan")
    wait(lambda: any("scan" in s["demands"] for s in steps[before:]), 600, "the rescan")
    return next(s for s in steps[before:] if "scan" in s["demands"])


def clip_during_rescan(daemon: Daemon, steps: list[dict[str, Any]], base_url: str, new_clip: Path, second: Path,
                       busy: threading.Event) -> dict[str, Any]:
    with httpx.Client(base_url=f"{base_url}/_admin", timeout=60) as admin:
        admin.post("/requests/clear").raise_for_status()
        before = len(steps)
        daemon._demand("scan")
        wait(lambda: len(steps) > before or daemon._demands == set(), 60, "the rescan to begin")
        written = time.time()
        new_clip.write_bytes(b"a new clip while the rescan runs\n")

        def upload_starts() -> list[float]:
            return [float(r["time"]) for r in admin.get("/requests").json()
                    if r["path"].endswith(("/multipart/initiate", "/uploads/direct"))]

        wait(lambda: len(upload_starts()) >= 1, 300, "the new clip's upload")
        at = upload_starts()[0]
        # A second clip just after the first's upload started (while its video processes).
        time.sleep(0.3)
        second_written = time.time()
        second.write_bytes(b"a second new clip, just after the first one's upload\n")
        wait(lambda: len(upload_starts()) >= 2, 300, "the second clip's upload")
        second_at = upload_starts()[1]
        wait(lambda: all(c.with_name(c.name + SIDECAR_SUFFIXES[0]).exists() for c in (new_clip, second)), 600,
             "both clips' sidecars")
        sidecars_at = time.time()
        quiet_since = [time.monotonic()]

        def settled() -> bool:  # the passes it brought (the mirror's, say) over: 3 s without a step
            if busy.is_set():
                quiet_since[0] = time.monotonic()
            return time.monotonic() - quiet_since[0] > 3

        wait(settled, 600, "the passes after it")
        after = steps[before:]
        return {"seconds_to_upload_start": round(at - written, 2),
                "second_clip_seconds_to_upload_start": round(second_at - second_written, 2),
                "seconds_to_both_sidecars": round(sidecars_at - written, 1),
                "cpu_s_of_the_passes": round(sum(s["cpu_s"] for s in after), 2), "steps": after}


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
