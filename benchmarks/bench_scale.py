"""A library of many small files: passes that grow with the changes, not the library.

    python benchmarks/bench_scale.py [--files 200000] [--dir DIR] [--phases LIST] [--skip-mirror]
                                     [--idle-seconds 180] [--ingest 1000,20000] [--timeout 3600]
                                     [--repeat 2] [--keep DIR] [--clips 3] [--clip-gap 20]

Phases, each a real ``python -m syncd`` subprocess (CPU from ``wait4``'s rusage, peak RSS
``ru_maxrss``) against an emulator in its own process (``python -m syncd emulator``: its
CPU is read from ``/proc`` and reported per phase as ``emulator_cpu_s``, neither counted
in syncd's figures nor competing with this script for a GIL):

* ``walk``: the reference, a bare ``os.scandir`` + ``stat`` walk of the tree in its own
  Python process, and the same on an empty folder (start-up), measured in this run;
* ``first_pass``: ``syncd sync --dry-run`` on a fresh catalog: walk, hash every file,
  record it in the catalog (in batches), plan N uploads: files/s;
* ``synced`` (set-up, always run before the phases below): the "everything synced" state,
  reached cheaply. The emulator's admin ``videos/register`` creates N finished videos from
  their names and bytes (the content this script wrote), as direct uploads would leave
  them: the objects stored, their sha256 and MD5 ETag worked out by the emulator, so
  catalog recovery proves them as it would real uploads; 5,000 a request; the catalog is
  then populated directly (``Catalog.link_finished``, a batch a transaction) rather than
  by adoption, which would ask the remote about every file;
* ``dry_run``: ``syncd sync --dry-run`` twice (``--repeat``) over the synced tree before
  the mirror has run (walk, plan; the set-up recorded the complete listing as read, as
  the uploading sync would have, so it is not due), and ``sync`` on an empty folder:
  per-file CPU against the walk's, each minus its empty-folder run; then once with
  ``--check-deletions`` (the complete listing, which ``schedule.deletion_check`` runs hourly);
* ``catch_up``: ``syncd run`` on the synced tree before the mirror ever ran (a library
  synced by a syncd without the mirror, or whose mirror state was lost): the daemon
  pulls every video's details, ~16 ms a video, hours at 1,000,000. Once it is under way
  (the first details request), ``--clips`` new clips ``--clip-gap`` seconds apart: for
  each, seconds from the write to its ``upload started`` journal entry (a mirror run
  stops between two videos for a file due for a pass); and the catch-up's rate, the
  daemon's CPU share and RSS meanwhile. Needs no ``mirror`` phase: the way to measure a
  daemon at 1,000,000 files, whose mirror catch-up would take most of a day;
* ``mirror``: a first ``syncd sync`` mirrors every video once (details and sidecars;
  ``mirror_catch_up``: ~16 ms a video, about an hour at 200,000);
* ``unchanged`` (needs ``mirror``): ``syncd sync`` twice (``--repeat``): listing, plan,
  mirror check;
* ``status``: ``syncd status`` (counts in SQL) at N files, and on an empty catalog;
* ``daemon`` (needs ``mirror``): ``syncd run`` on the synced tree (settle 1 s, the default
  schedule): CPU share per minute and RSS over ``--idle-seconds`` after its start-up pass
  (over once five seconds pass without CPU and without a request to the emulator), then a
  new clip and one file rewritten: seconds from the write to its ``upload started``
  journal entry; the emulator's request log says what the daemon asked in each part
  (requests by route, and per minute);
* ``ingest``: a first ``syncd sync`` of 1,000 and 20,000 small files (``--ingest``; direct
  upload, no pipelines) against a fresh emulator: files/s, and the ratio of the two.

``--phases`` picks phases (comma-separated; default all); ``--skip-mirror`` leaves out
``mirror`` and so ``unchanged`` and ``daemon`` (the unchanged pass is then the dry run).
Every command is killed after ``--timeout`` seconds (reported, not fatal). ``phases`` in
the JSON holds each phase's wall seconds and the emulator's CPU seconds in it. Printed as
JSON; nothing asserted (``target_met`` says). The machine is shared: the load average at
the start is in ``machine``; compare figures with the same run's references.

``--keep DIR`` makes the long set-up reusable (at 1,000,000 files: the tree, the first
pass and the register-and-link set-up take most of an hour). The first run with it builds
the tree in ``DIR/drop`` and the "synced" state in ``DIR/synced`` (the catalog,
``state-tree``, and the emulator's data directory, ``emulator``: its store is SQLite on
disk, so the registered videos persist) and writes ``DIR/kept.json`` last, once all of it is
complete. A later run with the same ``--files`` and ``DIR`` skips the build, the first pass
and the set-up (``first_pass`` then runs only if asked for, on a scratch catalog) and
starts every phase from a copy of ``DIR/synced`` in a run directory of its own
(``DIR/run-*``, removed at the end): the kept state is never written by a measured phase,
so each reuse run starts from the same state, whatever the phases (``mirror`` and
``daemon`` write), and a catalog or emulator store migrated by newer code is migrated on
the copy only. The daemon phase puts the tree back as it found it (the new clip removed,
the rewritten clip's content and mtime restored: the kept catalog still matches it).
Another ``--files`` with the same ``DIR`` is refused; remove ``DIR`` to rebuild.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import yaml
from _common import REPO, emit, machine

from syncd.models import SIDECAR_SUFFIXES, TRASH_DIR
from syncd.remote.facts import MIKSHI_PROCESSING_STEPS as PROCESSING_STEPS
from syncd.store.catalog import Catalog

KEY = "sk_bench_scale_0123456789"
PER_DIR = 1000  # files per subfolder (a camera's day folder, say)
REGISTER_BATCH = 5000  # ~110 bytes of JSON each (name, base64 content): under the emulator's 1 MiB body limit
PHASES = ("walk", "first_pass", "dry_run", "mirror", "unchanged", "status", "catch_up", "daemon", "ingest")
NEEDS_SYNCED = {"dry_run", "catch_up", "mirror", "unchanged", "status", "daemon"}
NEEDS_MIRROR = {"unchanged", "daemon"}

WALK = """
import os, sys
def walk(path):
    n = 0
    stack = [path]
    while stack:
        for entry in os.scandir(stack.pop()):
            st = entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            else:
                n += 1
    return n
print(walk(sys.argv[1]))
"""

KEPT_MARK = "kept.json"  # written last by a --keep build: its presence means complete

TIMEOUT = [3600.0]  # seconds a command may take (``--timeout``); a list so main() can set it


# Runs each measured command and waits for it with ``wait4``. Linux carries a parent's
# high-water RSS into a child it spawns (``vfork`` + ``exec`` keeps the larger of the two
# in the child's ``ru_maxrss``), so a benchmark process that had grown (a million rows of
# set-up in memory) made every command it ran report at least that: 1,027 MB for a
# ``sync --dry-run`` of ~85 MB. The spawner is a small process of its own (~12 MB).
SPAWNER = r"""
import json, os, subprocess, sys, threading, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["out"], "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(job["args"], env=job["env"], stdout=out, stderr=subprocess.STDOUT, cwd=job["cwd"])
        fired = []
        killer = threading.Timer(job["timeout"], lambda: (fired.append(True), proc.kill()))
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
    print(json.dumps({"wall": time.monotonic() - start, "exit": os.waitstatus_to_exitcode(status),
                      "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
                      "timed_out": bool(fired)}), flush=True)
"""
_SPAWNERS: list[subprocess.Popen[str]] = []  # the one spawner, started at the first measured command


def measured(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run a process to the end: wall seconds, CPU seconds (user + system, from its own
    rusage via ``wait4``), peak RSS, exit status and the tail of its output. Killed after
    ``--timeout`` seconds (``timed_out``), so one stuck command cannot hang the run.
    ``cwd``: where it runs (``python -m`` and ``-c`` import from there before PYTHONPATH).
    Run by the spawner (``SPAWNER``), so that its peak RSS is its own."""
    if not _SPAWNERS or _SPAWNERS[0].poll() is not None:
        _SPAWNERS[:] = [subprocess.Popen([sys.executable, "-c", SPAWNER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)]
    spawner = _SPAWNERS[0]
    assert spawner.stdin is not None and spawner.stdout is not None
    with tempfile.NamedTemporaryFile() as out:
        job = {"args": args, "env": dict(os.environ if env is None else env), "out": out.name,
               "cwd": None if cwd is None else str(cwd), "timeout": TIMEOUT[0]}
        spawner.stdin.write(json.dumps(job) + "\n")
        spawner.stdin.flush()
        done = json.loads(spawner.stdout.readline())
        text = Path(out.name).read_bytes().decode(errors="replace")
    if done["exit"] not in (0, 1) and not done["timed_out"]:
        raise SystemExit(f"{' '.join(args[:6])} failed ({done['exit']}): {text[-2000:]}")
    result = {"wall_s": round(done["wall"], 3), "cpu_s": round(done["cpu"], 3),
              "peak_rss_mb": round(done["maxrss_kb"] * 1024 / 1e6, 1), "exit": done["exit"],
              "output_bytes": len(text), "output_head": text[:600], "output_tail": text[-300:]}
    if done["timed_out"]:
        result["timed_out"] = True
    return result


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class EmulatorProcess:
    """``python -m syncd emulator`` in a process of its own, on a free loopback port."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.log_path = data_dir.with_suffix(".log")
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "emulator", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(data_dir), "--processing-seconds", "0.1", "--pipeline-seconds", "0.1"],
            env={**env, "SYNCD_EMULATOR_API_KEYS": KEY}, stdout=subprocess.PIPE, stderr=self._log)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()  # "emulator listening on http://..."
        if "listening on " not in line:
            self.stop()
            raise SystemExit(f"emulator did not start: {line!r} {self.log_path.read_text()[-2000:]}")
        self.base_url = line.rsplit(" ", 1)[1].strip()

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def video_count(self) -> int:
        with httpx.Client(base_url=self.base_url, timeout=600) as admin:
            response = admin.get("/_admin/videos")
            response.raise_for_status()
            return len(response.json())


def rel_path(i: int) -> str:
    return f"cam{i // PER_DIR:04d}/clip{i:07d}.mp4"


def content(i: int) -> bytes:
    return f"clip {i} of a long camera day\n".encode()


def build_tree(drop: Path, files: int) -> None:
    for i in range(files):
        if i % PER_DIR == 0:
            (drop / rel_path(i)).parent.mkdir(parents=True, exist_ok=True)
        (drop / rel_path(i)).write_bytes(content(i))


def write_config(root: Path, drop: Path, base_url: str, name: str) -> Path:
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "remote": {"base_url": base_url, "api_key_env": "SYNCD_BENCH_KEY"},
        "state_dir": str(root / f"state-{name}"),
        "folders": [{"path": str(drop), "collections": "none", "pipelines": []}],
        "upload": {"settle_seconds": 0},
        "log_level": "warning",
    }))
    return config


def listing_just_read(config_path: Path) -> None:
    """Record the complete remote listing as read in ``config_path``'s catalog (and no
    catalog recovery pending, which would read it too)."""
    with Catalog.open(Path(yaml.safe_load(config_path.read_text())["state_dir"])) as catalog:
        catalog.set_meta("adopt_remote", "0")
        catalog.listing_read(time.time())


def synced_state(config_path: Path, base_url: str, files: int) -> dict[str, Any]:
    """Register every file of the tree as a finished remote video and link them in the
    catalog, a batch at a time: hashes from the content this script wrote (no file read),
    one admin request and one catalog transaction per batch, nothing held for all N."""
    state_dir = Path(yaml.safe_load(config_path.read_text())["state_dir"])
    start = time.monotonic()
    register_s = link_s = 0.0
    with Catalog.open(state_dir) as catalog, httpx.Client(base_url=f"{base_url}/_admin", timeout=600) as admin:
        for first in range(0, files, REGISTER_BATCH):
            batch = range(first, min(files, first + REGISTER_BATCH))
            shas = [hashlib.sha256(content(i)).hexdigest() for i in batch]
            videos = [{"name": rel_path(i), "content": base64.b64encode(content(i)).decode()} for i in batch]
            t = time.monotonic()
            response = admin.post("/videos/register", json={"videos": videos})
            response.raise_for_status()
            register_s += time.monotonic() - t
            t = time.monotonic()
            catalog.link_finished([(sha, video_id, rel_path(i)) for i, sha, video_id
                                   in zip(batch, shas, response.json()["video_ids"], strict=True)], PROCESSING_STEPS)
            link_s += time.monotonic() - t
            if (first // REGISTER_BATCH) % 20 == 19:
                say(f"  {first + len(batch)} of {files} registered and linked")
        catalog.set_meta("adopt_remote", "0")
        # The sync that uploaded them read the complete listing then: the next one is due
        # after schedule.deletion_check (1 h), as in a library synced for real.
        catalog.listing_read(time.time())
    return {"videos": files, "seconds": round(time.monotonic() - start, 1),
            "register_requests_s": round(register_s, 1), "link_finished_s": round(link_s, 1)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return round(int(line.split()[1]) * 1024 / 1e6, 1)
    return 0.0


ID_IN_PATH = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|[0-9a-fA-F]{24,}|\d+")


class RequestTally:
    """What the daemon asked the emulator, read from its request log (``/_admin/requests``)
    in steps: requests per method and path (ids as ``{id}``), and per minute of the window."""

    def __init__(self, base_url: str) -> None:
        self.admin = httpx.Client(base_url=f"{base_url}/_admin", timeout=600)
        self.admin.post("/requests/clear").raise_for_status()  # sequence numbers keep rising
        self.seq = 0

    def last_seq(self) -> int:
        """The newest request's sequence number (without taking anything)."""
        entries = self.admin.get("/requests", params={"since": self.seq}).json()
        return max([self.seq, *(e["seq"] for e in entries)])

    def peek(self) -> set[str]:
        """The paths asked since the last take (without taking them)."""
        return {e["path"] for e in self.admin.get("/requests", params={"since": self.seq}).json()}

    def take(self, since: float) -> dict[str, Any]:
        """Requests answered since the last take: counts by route, and per minute from ``since``."""
        entries = self.admin.get("/requests", params={"since": self.seq}).json()
        self.seq = max([self.seq, *(e["seq"] for e in entries)])
        routes: dict[str, int] = {}
        minutes: dict[int, int] = {}
        for e in entries:
            route = f"{e['method']} {ID_IN_PATH.sub('{id}', e['path'])}"
            routes[route] = routes.get(route, 0) + 1
            minute = max(0, int((e["time"] - since) // 60))
            minutes[minute] = minutes.get(minute, 0) + 1
        return {"requests": len(entries), "by_route": dict(sorted(routes.items(), key=lambda kv: -kv[1])),
                "per_minute": [minutes.get(m, 0) for m in range(max(minutes, default=-1) + 1)]}

    def close(self) -> None:
        self.admin.close()


def daemon_config(root: Path, config: Path) -> tuple[Path, Path]:
    """The tree's config as the daemon phases run it (settle 1 s, the default schedule,
    logging at info), and its state directory."""
    settings = yaml.safe_load(config.read_text())
    settings.update(upload={"settle_seconds": 1, "direct_upload_below": "1MiB"},
                    schedule={"rescan": "10m", "remote_poll": "2m"}, log_level="info")
    path = root / "daemon.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path, Path(settings["state_dir"])


def upload_start(state_dir: Path, path: Path, content: bytes) -> float | None:
    """Write ``path``; seconds until the daemon journals its upload as started."""
    path.write_bytes(content)
    written = time.time()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.2)
        with Catalog.open_readonly(state_dir) as catalog:
            started = [e.time for e in catalog.journal(50) if e.action == "upload"
                       and e.outcome == "started" and e.target == str(path)]
        if started:
            return round(min(started) - written, 3)
    return None


def start_daemon(config: Path, log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(config), "run"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=120)


def phase_daemon(root: Path, config: Path, drop: Path, env: dict[str, str], idle_seconds: float,
                 base_url: str) -> dict[str, Any]:
    """``syncd run`` on the synced tree: idle CPU and RSS, then one changed file's upload
    start; the emulator's request log says what the daemon asked in each part."""
    config, state_dir = daemon_config(root, config)
    log_path = root / "daemon.log"
    new_clip, old_clip = drop / "cam0000" / "new-clip.mp4", drop / "cam0000" / "clip0000000.mp4"
    old_content, old_stat = old_clip.read_bytes(), old_clip.stat()
    tally = RequestTally(base_url)
    begun = time.time()
    proc = start_daemon(config, log_path, env)
    try:
        start = time.monotonic()
        quiet, last, last_request = 0, 0.0, 0
        # The start-up pass is work, not idleness: wait for the daemon to say it watches,
        # then for five quiet seconds in a row: no CPU and no request to the emulator (a
        # daemon waiting on a slow listing page is quiet on CPU but still in its pass).
        while quiet < 5 or "running: watching" not in log_path.read_text():
            time.sleep(1)
            if proc.poll() is not None:
                raise SystemExit(f"syncd run exited: {log_path.read_text()[-2000:]}")
            now, newest = cpu_seconds(proc.pid), tally.last_seq()
            quiet = quiet + 1 if now - last < 0.02 and newest == last_request else 0
            last, last_request = now, newest
        startup = {"wall_s": round(time.monotonic() - start, 1), "cpu_s": round(cpu_seconds(proc.pid), 2),
                   "rss_mb": rss_mb(proc.pid), "remote": tally.take(begun)}
        t0, idle_begun = time.monotonic(), time.time()
        cpu, rss = [cpu_seconds(proc.pid)], [rss_mb(proc.pid)]
        while time.monotonic() - t0 < idle_seconds:
            time.sleep(10)
            cpu.append(cpu_seconds(proc.pid))
            rss.append(rss_mb(proc.pid))
        minutes = [(cpu[i + 6] - cpu[i]) / 60 for i in range(len(cpu) - 6)]
        idle = {"seconds": round(time.monotonic() - t0), "cpu_share_of_one_core": round((cpu[-1] - cpu[0]) /
                                                                                       (time.monotonic() - t0), 5),
                "worst_minute_cpu_share": round(max(minutes), 5) if minutes else None,
                "rss_start_mb": rss[0], "rss_end_mb": rss[-1], "rss_max_mb": max(rss),
                # whole minutes from the start of the idle window (sliding ones give the worst)
                "cpu_share_per_minute": [round((cpu[i + 6] - cpu[i]) / 60, 4) for i in range(0, len(cpu) - 6, 6)],
                "rss_mb_per_minute": rss[::6], "remote": tally.take(idle_begun)}
        # A new clip among N; then one rewritten in place (a path that changes after it had
        # settled waits twice the settle time: a slow writer's pause).
        new = upload_start(state_dir, new_clip, b"a new clip from the benchmark\n")
        time.sleep(5)
        rewritten = upload_start(state_dir, old_clip, b"clip 0, rewritten by the benchmark\n")
        out = {"startup_pass": startup, "idle": idle, "peak_rss_mb": rss_mb(proc.pid, "VmHWM"),
               "changed_files_remote": tally.take(time.time()),
               "changed_file_upload_start_s": new, "rewritten_file_upload_start_s": rewritten, "settle_s": 1}
        if new is None or new > 3:
            out["log_tail"] = log_path.read_text()[-3000:]
        return out
    finally:
        stop_daemon(proc)
        tally.close()
        # The tree as it was (a --keep tree is reused): same content, mtime and inode, so
        # the kept catalog's record of the rewritten clip still matches it.
        new_clip.unlink(missing_ok=True)
        old_clip.write_bytes(old_content)
        os.utime(old_clip, ns=(old_stat.st_atime_ns, old_stat.st_mtime_ns))


DETAILS_ROUTE = "get-video-details"


def phase_catch_up(root: Path, config: Path, drop: Path, env: dict[str, str], base_url: str,
                   clips: int, gap: float) -> dict[str, Any]:
    """``syncd run`` on the synced tree whose mirror never ran: new clips written while it
    catches up; see the module's docstring."""
    config, state_dir = daemon_config(root, config)
    log_path = root / "catch-up.log"
    tally = RequestTally(base_url)
    written: list[Path] = []
    begun = time.time()
    proc = start_daemon(config, log_path, env)
    try:
        start = time.monotonic()
        while not any(DETAILS_ROUTE in route for route in tally.peek()):
            time.sleep(1)
            if proc.poll() is not None:
                raise SystemExit(f"syncd run exited: {log_path.read_text()[-2000:]}")
            if time.monotonic() - start > TIMEOUT[0]:
                return {"timed_out": True, "log_tail": log_path.read_text()[-3000:]}
        startup = {"wall_s": round(time.monotonic() - start, 1), "cpu_s": round(cpu_seconds(proc.pid), 2),
                   "rss_mb": rss_mb(proc.pid), "remote": tally.take(begun)}
        t0, cpu0, latencies = time.monotonic(), cpu_seconds(proc.pid), []
        rss = [rss_mb(proc.pid)]
        for i in range(clips):
            time.sleep(gap)
            path = drop / "cam0000" / f"catch-up-{i}.mp4"
            written.append(path)
            latencies.append(upload_start(state_dir, path, f"a clip written during the catch-up, {i}\n".encode()))
            rss.append(rss_mb(proc.pid))
        seconds = time.monotonic() - t0
        remote = tally.take(begun)
        details = sum(n for route, n in remote["by_route"].items() if DETAILS_ROUTE in route)
        out = {"startup_until_catch_up": startup, "seconds": round(seconds, 1),
               "cpu_share_of_one_core": round((cpu_seconds(proc.pid) - cpu0) / seconds, 4),
               "rss_mb": rss, "peak_rss_mb": rss_mb(proc.pid, "VmHWM"),
               "videos_caught_up_per_s": round(details / seconds, 1), "remote": remote,
               "clip_upload_start_s": latencies, "settle_s": 1}
        if any(v is None or v > 3 for v in latencies):
            out["log_tail"] = log_path.read_text()[-3000:]
        return out
    finally:
        stop_daemon(proc)
        tally.close()
        for path in written:
            path.unlink(missing_ok=True)


def phase_ingest(root: Path, sizes: list[int], env: dict[str, str]) -> dict[str, Any]:
    """A first ``syncd sync`` of small files on a fresh emulator (direct upload, no pipelines)."""
    out: dict[str, Any] = {}
    for n in sizes:
        where = root / f"ingest-{n}"
        drop = where / "drop"
        for i in range(n):
            folder = drop / f"cam{i // PER_DIR:04d}"
            if i % PER_DIR == 0:
                folder.mkdir(parents=True, exist_ok=True)
            (folder / f"clip{i:07d}.mp4").write_bytes(f"ingest clip {i} of {n}\n".encode())
        with EmulatorProcess(where / "emulator", env) as emu:
            config = write_config(where, drop, emu.base_url, "ingest")
            settings = yaml.safe_load(config.read_text())
            settings["upload"]["direct_upload_below"] = "1MiB"
            config.write_text(yaml.safe_dump(settings))
            cpu = emu.cpu_s()
            run = measured([sys.executable, "-m", "syncd", "-c", str(config), "sync"], env)
            emulator_cpu = round(emu.cpu_s() - cpu, 2)
            uploaded = emu.video_count()
        out[str(n)] = {**run, "uploaded": uploaded, "files_per_s": round(n / run["wall_s"], 1),
                       "emulator_cpu_s": emulator_cpu}
        shutil.rmtree(where, ignore_errors=True)
    if len(sizes) == 2:
        small, large = (out[str(n)]["files_per_s"] for n in sizes)
        out["ratio_large_to_small"] = round(large / small, 3)
    return out


def chosen_phases(phases: str | None, skip_mirror: bool, reuse: bool = False) -> list[str]:
    """The phases asked for, in run order, with what they need: ``synced`` (set-up) needs
    the first pass's catalog (unless a kept one is reused), and ``unchanged`` / ``daemon``
    need the mirror caught up."""
    wanted = set(PHASES if phases is None else (p.strip() for p in phases.split(",") if p.strip()))
    unknown = wanted - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phase(s) {', '.join(sorted(unknown))}; choose from {', '.join(PHASES)}")
    if skip_mirror:
        wanted -= {"mirror", *NEEDS_MIRROR}
    if "catch_up" in wanted and wanted & {"mirror", *NEEDS_MIRROR}:
        raise SystemExit("catch_up runs without mirror, unchanged and daemon: it needs the mirror not caught up, "
                         "and leaves it half caught up")
    if wanted & NEEDS_MIRROR:
        wanted.add("mirror")
    if wanted & NEEDS_SYNCED and not reuse:
        wanted.add("first_pass")
    return [p for p in PHASES if p in wanted]


def kept_files(keep: Path) -> int | None:
    """The file count of a complete ``--keep`` build in ``keep``, or None if there is none."""
    mark = keep / KEPT_MARK
    return int(json.loads(mark.read_text())["files"]) if mark.exists() else None


def git_head() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def copy_state(source: Path, target: Path) -> float:
    """Copy a kept "synced" state (catalog and emulator data, neither open) to a run directory."""
    start = time.monotonic()
    for name in ("state-tree", "emulator"):
        shutil.copytree(source / name, target / name)
    return round(time.monotonic() - start, 1)


def rebind(state_dir: Path, base_url: str) -> None:
    """The copied catalog belongs to the emulator at its new address (a free port each run):
    what ``syncd sync --rebind`` records for the same account under a new address."""
    if not state_dir.exists():
        return
    with Catalog.open(state_dir) as catalog:
        bound = catalog.bound_remote()
        if bound is not None:
            catalog.bind_remote(f"{bound.rsplit(' at ', 1)[0]} at {base_url}", rebind=True)


def unmirror_tree(drop: Path) -> int:
    """Remove what the mirror wrote into a kept tree (sidecars, the trash folder), so the
    next reuse run walks the tree as built; the number of files removed."""
    removed = 0
    shutil.rmtree(drop / TRASH_DIR, ignore_errors=True)
    stack = [drop]
    while stack:
        for entry in os.scandir(stack.pop()):
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.name.endswith(SIDECAR_SUFFIXES):
                os.unlink(entry.path)
                removed += 1
    return removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the tree goes (default: system temp)")
    parser.add_argument("--phases", default=None, help=f"comma-separated, of {','.join(PHASES)} (default: all)")
    parser.add_argument("--skip-mirror", action="store_true",
                        help="no mirror catch-up, full unchanged sync or daemon phase (see above)")
    parser.add_argument("--idle-seconds", type=float, default=180.0, help="the daemon left idle (default 180)")
    parser.add_argument("--ingest", default="1000,20000", help="first-sync sizes, comma-separated ('' skips)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds any one command may take")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each unchanged pass, the best one counted (default 2; 1 halves the long part)")
    parser.add_argument("--clips", type=int, default=3, help="catch_up: new clips written during the catch-up")
    parser.add_argument("--clip-gap", type=float, default=20.0, help="catch_up: seconds before each clip")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="build the tree and the synced state in DIR once; reuse them on later runs (see above)")
    args = parser.parse_args()
    TIMEOUT[0] = args.timeout
    keep: Path | None = args.keep.resolve() if args.keep else None
    kept = kept_files(keep) if keep else None
    if keep and kept is not None and kept != args.files:
        raise SystemExit(f"{keep} holds a kept state of {kept} files, not {args.files}: remove it to rebuild")
    reuse = kept is not None
    phases = chosen_phases(args.phases, args.skip_mirror, reuse)
    if keep and not reuse and "first_pass" not in phases and any(p != "ingest" for p in phases):
        phases.insert(phases.index("walk") + 1 if "walk" in phases else 0, "first_pass")  # the build needs it
    sizes = [int(n) for n in args.ingest.split(",") if n.strip()]
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="run-", dir=keep))
    else:
        root = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.dir))
    env = {**os.environ, "SYNCD_BENCH_KEY": KEY, "PYTHONPATH": str(REPO)}
    syncd = [sys.executable, "-m", "syncd", "-c"]
    result: dict[str, Any] = {"benchmark": "bench_scale", "files": args.files, "phases_run": phases,
                              "machine": machine(), "code": git_head(), "phases": {}}
    emu: EmulatorProcess | None = None

    @contextmanager
    def phase(name: str, text: str) -> Iterator[None]:
        """Log the phase; record its wall seconds and the emulator's CPU seconds in it."""
        say(text)
        start, cpu = time.monotonic(), emu.cpu_s() if emu else 0.0
        yield
        result["phases"][name] = {"wall_s": round(time.monotonic() - start, 1),
                                  "emulator_cpu_s": round(emu.cpu_s() - cpu, 2) if emu else None}

    try:
        drop, empty = (keep or root) / "drop", root / "empty"
        golden = keep / "synced" if keep else root  # where the set-up builds the synced state
        empty.mkdir()
        tree_phases = [p for p in phases if p != "ingest"]
        if tree_phases and reuse:
            assert keep is not None
            with phase("copy_kept", f"reusing the kept tree and synced state in {keep} (a copy of the state)"):
                result["kept"] = {"dir": str(keep), "reused": True, **json.loads((keep / KEPT_MARK).read_text()),
                                  "copy_s": copy_state(golden, root)}
            emu = EmulatorProcess(root / "emulator", env)
            rebind(root / "state-tree", emu.base_url)
            config, config_empty = (write_config(root, d, emu.base_url, n) for d, n in ((drop, "tree"), (empty, "empty")))
            # As just synced: a kept state over an hour old would otherwise have its
            # complete listing due in every "unchanged" pass (``dry_run_listing`` measures it).
            listing_just_read(config)
        elif tree_phases:
            if keep:  # a build cut short before kept.json: start again
                shutil.rmtree(drop, ignore_errors=True)
                shutil.rmtree(golden, ignore_errors=True)
                golden.mkdir()
            with phase("build_tree", f"building a tree of {args.files} files in {drop}"):
                build_tree(drop, args.files)
            result["build_tree_s"] = result["phases"]["build_tree"]["wall_s"]
            emu = EmulatorProcess(golden / "emulator", env)
            config = write_config(golden, drop, emu.base_url, "tree")
            config_empty = write_config(root, empty, emu.base_url, "empty")
        if "walk" in phases:
            with phase("walk", "walks (the tree and an empty folder)"):
                result["walk"] = {"empty": measured([sys.executable, "-c", WALK, str(empty)]),
                                  "tree": measured([sys.executable, "-c", WALK, str(drop)])}
        if {"dry_run", "unchanged"} & set(phases):
            # Start-up only: the complete listing is not due, as in the tree's catalog (a
            # fresh catalog would read all N remote videos first, and that is not start-up).
            listing_just_read(config_empty)
            result["unchanged"] = {"empty": measured([*syncd, str(config_empty), "sync"], env)}
        if "first_pass" in phases:
            # On a reused state, on a scratch catalog of its own (the kept one is synced).
            first_config = write_config(root, drop, emu.base_url, "first") if reuse and emu else config
            with phase("first_pass", "first pass (hash and catalog every file)"):
                first = measured([*syncd, str(first_config), "sync", "--dry-run"], env)
            result["first_pass"] = {**first, "files_per_s": round(args.files / first["wall_s"], 1)}
            if reuse:
                shutil.rmtree(root / "state-first", ignore_errors=True)
        if (NEEDS_SYNCED & set(phases) or keep) and not reuse and tree_phases:
            assert emu is not None
            with phase("synced", "registering videos, linking the catalog"):
                result["synced"] = synced_state(config, emu.base_url, args.files)
            if keep:
                # Kept as built; the phases run on a copy, the emulator restarted on it.
                emu.stop()
                emu = None
                (keep / KEPT_MARK).write_text(json.dumps({"files": args.files, "built_by": git_head(),
                                                          "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
                result["kept"] = {"dir": str(keep), "reused": False, "copy_s": copy_state(golden, root)}
                emu = EmulatorProcess(root / "emulator", env)
                for state in ("state-tree", "state-empty"):  # the empty folder's sync ran already
                    rebind(root / state, emu.base_url)
                config, config_empty = (write_config(root, d, emu.base_url, n)
                                        for d, n in ((drop, "tree"), (empty, "empty")))
        if "dry_run" in phases:
            with phase("dry_run", "unchanged dry runs (walk, listing, plan; no mirror)"):
                result["unchanged"]["dry_run"] = [measured([*syncd, str(config), "sync", "--dry-run"], env)
                                                  for _ in range(args.repeat)]
            with phase("dry_run_listing", "an unchanged dry run with the complete listing (the hourly check)"):
                result["unchanged"]["dry_run_listing"] = measured(
                    [*syncd, str(config), "sync", "--dry-run", "--check-deletions"], env)
        if "mirror" in phases:
            with phase("mirror", "mirror catch-up (details of every video, once)"):
                result["mirror_catch_up"] = measured([*syncd, str(config), "sync"], env)
        if "unchanged" in phases:
            with phase("unchanged", "unchanged syncs"):
                result["unchanged"]["tree"] = [measured([*syncd, str(config), "sync"], env)
                                               for _ in range(args.repeat)]
        if "status" in phases:
            with phase("status", "status (N files, and an empty catalog)"):
                result["status"] = {"empty": measured([*syncd, str(config_empty), "status"], env),
                                    "tree": measured([*syncd, str(config), "status"], env)}
        if "catch_up" in phases:
            with phase("catch_up", f"daemon catching up the mirror; {args.clips} new clips meanwhile"):
                assert emu is not None
                result["catch_up"] = phase_catch_up(root, config, drop, env, emu.base_url, args.clips, args.clip_gap)
        if "daemon" in phases:
            with phase("daemon", f"daemon: start-up pass, {args.idle_seconds:.0f} s idle, one changed file"):
                assert emu is not None
                result["daemon"] = phase_daemon(root, config, drop, env, args.idle_seconds, emu.base_url)
        if emu is not None:
            result["emulator"] = {"cpu_s": round(emu.cpu_s(), 2), "peak_rss_mb": rss_mb(emu.proc.pid, "VmHWM")}
            emu.stop()
            emu = None
        if "ingest" in phases and sizes:
            with phase("ingest", f"first sync of {', '.join(map(str, sizes))} small files"):
                result["ingest"] = phase_ingest(root, sizes, env)
        summarize(result, args.files)
    finally:
        if emu is not None:
            emu.stop()
        if keep and {"mirror", "catch_up"} & set(phases):
            say("removing the mirror's sidecars from the kept tree")
            result["kept"]["sidecars_removed"] = unmirror_tree(drop)
        shutil.rmtree(root, ignore_errors=True)
    emit(result)


def summarize(result: dict[str, Any], files: int) -> None:
    """Per-file figures against the same run's references, and which targets are met
    (each only from the phases that ran)."""
    summary: dict[str, Any] = {}
    met: dict[str, Any] = {}
    walk = result.get("walk")
    per_file_walk = (walk["tree"]["cpu_s"] - walk["empty"]["cpu_s"]) / files if walk else None
    unchanged = result.get("unchanged", {})
    empty = unchanged.get("empty")

    def per_file(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], float]:
        best = min(runs, key=lambda r: r["cpu_s"])
        return best, (best["cpu_s"] - empty["cpu_s"]) / files

    if unchanged.get("dry_run") and empty:
        best_dry, per_file_dry = per_file(unchanged["dry_run"])
        summary.update(unchanged_dry_run_cpu_s=best_dry["cpu_s"], unchanged_dry_run_wall_s=best_dry["wall_s"],
                       unchanged_dry_run_peak_rss_mb=best_dry["peak_rss_mb"])
        if per_file_walk:
            summary["per_file_cpu_ratio_dry_run"] = round(per_file_dry / per_file_walk, 1)
    if unchanged.get("dry_run_listing") and empty:
        listing, per_file_listing = per_file([unchanged["dry_run_listing"]])
        summary.update(hourly_listing_dry_run_cpu_s=listing["cpu_s"], hourly_listing_dry_run_wall_s=listing["wall_s"],
                       hourly_listing_dry_run_peak_rss_mb=listing["peak_rss_mb"])
        if per_file_walk:
            summary["per_file_cpu_ratio_hourly_listing"] = round(per_file_listing / per_file_walk, 1)
    runs = unchanged.get("tree") or unchanged.get("dry_run")
    if runs and empty:
        best, per_file_sync = per_file(runs)
        summary["unchanged_measured_by"] = "sync" if unchanged.get("tree") else "sync --dry-run (no mirror)"
        summary.update(unchanged_sync_cpu_s=best["cpu_s"], unchanged_sync_wall_s=best["wall_s"],
                       unchanged_peak_rss_mb=best["peak_rss_mb"])
        if per_file_walk:
            ratio = per_file_sync / per_file_walk
            summary["per_file_cpu_us"] = {"sync": round(per_file_sync * 1e6, 2), "walk": round(per_file_walk * 1e6, 2)}
            summary["per_file_cpu_ratio"] = round(ratio, 1)
            met["per_file_cpu_within_3x_walk"] = ratio <= 3.0
    if walk:
        summary["bare_walk_cpu_s"] = walk["tree"]["cpu_s"]
    if "first_pass" in result:
        summary["first_pass_files_per_s"] = result["first_pass"]["files_per_s"]
    if "status" in result:
        status, status_empty = result["status"]["tree"], result["status"]["empty"]
        summary.update(status_wall_s=status["wall_s"], status_small_wall_s=status_empty["wall_s"])
        met["status_small_under_0.3s"] = status_empty["wall_s"] < 0.3
        met["status_under_3s"] = status["wall_s"] < 3.0
        met["status_under_3s_extrapolated_to_1M"] = (
            (status["wall_s"] - status_empty["wall_s"]) * 1e6 / files + status_empty["wall_s"] < 3.0)
    if "daemon" in result:
        d = result["daemon"]
        met["daemon_idle_under_1pct"] = d["idle"]["cpu_share_of_one_core"] < 0.01
        met["daemon_rss_under_400MB"] = d["peak_rss_mb"] < 400
        latency = d["changed_file_upload_start_s"]
        met["changed_file_within_settle_plus_2s"] = latency is not None and latency <= 3.0
    if "catch_up" in result and "clip_upload_start_s" in result["catch_up"]:
        latencies = result["catch_up"]["clip_upload_start_s"]
        summary["catch_up_clip_upload_start_s"] = latencies
        met["clip_during_catch_up_within_settle_plus_2s"] = all(v is not None and v <= 3.0 for v in latencies)
    if "ingest" in result and "ratio_large_to_small" in result["ingest"]:
        met["ingest_20k_at_least_0.9x_1k"] = result["ingest"]["ratio_large_to_small"] >= 0.9
    timed_out = sorted(name for name, value in result.items() if "'timed_out': True" in str(value))
    if timed_out:
        summary["timed_out_in"] = timed_out
    result["summary"] = summary
    result["target_met"] = met


if __name__ == "__main__":
    main()
