"""The mirror's once-per-process check of every sidecar and its listing check, in process,
at N videos: the CPU of each mirror run (``time.thread_time``), what a file arriving
during the check would wait behind.

    python benchmarks/bench_mirror_runs.py --files 20000 [--keep DIR] [--slice 2000]

Builds (or reuses, with ``--keep``) N small files catalogued, registered on an
in-process emulator as finished videos and mirrored once (details, sidecars, full
text; the build's sidecar writes skip fsync), as ``tests.sync.test_scale.synced_tree``
does. Then, each as a new process would (a new ``Engine`` on the catalog, the mirror's
"complete" record dropped so its run is due):

* ``first_run``: the process's first mirror run, yielding after each slice as the
  daemon does when a file comes in (``mirror_yield``): CPU per run, runs, total;
  on code without slices (``PYTHONPATH=/work/main``) one whole run;
* ``one_shot``: the same run as ``syncd sync`` does it (all slices in one run);
* ``listing_check``: after that, one video renamed on the remote and a pass reading the
  complete listing with the mirror's check due: its mirror run's CPU;
* ``daemon`` (``--daemon``): a ``Daemon`` in a thread (settle 1 s), its start-up pass
  running the mirror's check; once its second slice is checked a new clip is written:
  seconds from the write to its upload's first request in the emulator's log, and the
  slices checked by then and in all.

Prints JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from syncd.config import load_config
from syncd.emulator.mikshi import Emulator, EmulatorConfig
from syncd.remote.facts import MIKSHI_PROCESSING_STEPS
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog, peek_meta
from syncd.sync.engine import Engine, EngineOptions

KEY = "bench-mirror-key"


def config_file(root: Path, base_url: str) -> Path:
    path = root / "syncd.yaml"
    path.write_text(yaml.safe_dump({
        "remote": {"base_url": base_url, "api_key_env": "SYNCD_BENCH_KEY"},
        "state_dir": str(root / "state"),
        "folders": [{"path": str(root / "drop"), "collections": "none", "pipelines": []}],
        "upload": {"settle_seconds": 0},
        "log_level": "warning",
    }))
    return path


def build(root: Path, emu: Emulator, files: int) -> None:
    drop = root / "drop"
    for i in range(files):
        path = drop / f"cam{i // 1000:03d}" / f"clip{i:07d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"clip {i}\n".encode())
    config = load_config(config_file(root, emu.base_url), {"SYNCD_BENCH_KEY": KEY})
    admin = httpx.Client(base_url=emu.base_url + "/_admin", timeout=600)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY) as remote:
        Engine(EngineOptions.from_config(config), catalog, remote).observe()
        records = catalog.files()
        for start in range(0, len(records), 5000):
            batch = records[start:start + 5000]
            videos = [{"name": f.rel_path, "size": f.size, "sha256": f.sha256,
                       "md5": hashlib.md5(f.path.read_bytes()).hexdigest()} for f in batch]
            ids = admin.post("/videos/register", json={"videos": videos}).json()["video_ids"]
            catalog.link_finished([(f.sha256 or "", v, f.rel_path) for f, v in zip(batch, ids, strict=True)],
                                  MIKSHI_PROCESSING_STEPS)
        catalog.set_meta("adopt_remote", "0")
        real_fsync = os.fsync
        os.fsync = lambda fd: None  # the build only: sidecars written without fsync
        try:
            Engine(EngineOptions.from_config(config), catalog, remote).run_pass()
        finally:
            os.fsync = real_fsync
    admin.close()


def timed(engine: Engine) -> list[float]:
    """The CPU of each of the engine's mirror runs from now on."""
    runs: list[float] = []
    real = engine.mirror.run

    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return real(*args, **kwargs)
        finally:
            runs.append(round(time.thread_time() - start, 3))

    engine.mirror.run = run  # type: ignore[method-assign]
    return runs


def sliced() -> bool:
    return "mirror_yield" in inspect.signature(Engine.run_pass).parameters


def fresh(config: Any, catalog: Catalog, remote: MikshiClient, slice_size: int | None) -> Engine:
    options = EngineOptions.from_config(config)
    if slice_size is not None and sliced():
        options = dataclasses.replace(options, mirror=dataclasses.replace(options.mirror, slice=slice_size))
    catalog.mirror_completed(None)  # not known complete: the process's first pass runs the mirror
    return Engine(options, catalog, remote)


def until_verified(engine: Engine, runs: list[float], yield_to: Callable[[], bool] | None) -> None:
    for n in range(100_000):
        if sliced():
            report = engine.run_pass(with_listing=False, mirror_yield=yield_to)
        else:
            report = engine.run_pass(with_listing=False)
        assert report.mirror is not None and len(runs) == n + 1, "the mirror ran"
        if not getattr(report.mirror, "unfinished", False):
            return


def daemon_phase(root: Path, emu: Emulator, slice_size: int | None) -> dict[str, Any]:
    from syncd.mirror.mirror import Mirror, MirrorOptions
    from syncd.service.daemon import Daemon

    path = config_file(root, emu.base_url)
    data = yaml.safe_load(path.read_text())
    data["upload"]["settle_seconds"] = 1
    path.write_text(yaml.safe_dump(data))
    config = load_config(path, {"SYNCD_BENCH_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog:
        catalog.mirror_completed(None)  # the start-up pass runs the mirror, and with it the check
    real_options, real_verified = MirrorOptions.from_config, getattr(Catalog, "mirror_verified_to", None)
    real_run = Mirror.run
    runs: list[float] = []

    def run(*args: Any, **kwargs: Any) -> Any:
        runs.append(time.monotonic())
        return real_run(*args, **kwargs)

    Mirror.run = run  # type: ignore[method-assign]
    if slice_size is not None and sliced():
        MirrorOptions.from_config = classmethod(  # type: ignore[method-assign,assignment]
            lambda cls, c: dataclasses.replace(real_options(c), slice=slice_size))
    slices: list[float] = []
    clip = root / "drop" / "new" / f"clip-{time.time():.0f}.mp4"

    def verified_to(catalog: Catalog, sha256: str) -> None:
        assert real_verified is not None
        real_verified(catalog, sha256)
        slices.append(time.monotonic())

    if real_verified is not None:
        Catalog.mirror_verified_to = verified_to  # type: ignore[method-assign,assignment]
    daemon = Daemon(config)
    thread = __import__("threading").Thread(target=daemon.run, kwargs={"install_signals": False}, daemon=True)
    admin = httpx.Client(base_url=emu.base_url + "/_admin", timeout=60)
    admin.delete("/requests")
    try:
        thread.start()
        # Sliced: once two slices are checked; before: 1 s into the start-up pass's whole run.
        while len(slices) < 2 if real_verified is not None else not runs or time.monotonic() < runs[0] + 1:
            time.sleep(0.01)
        clip.parent.mkdir(exist_ok=True)
        clip.write_bytes(f"a new clip {time.time()}\n".encode())
        written = time.monotonic()
        at_write = len(slices)
        while not [r for r in admin.get("/requests").json() if r["path"].endswith(("/multipart/initiate", "/upload"))]:
            time.sleep(0.05)
        upload = time.monotonic() - written
        by_upload = len([t for t in slices if t <= written + upload])
        done = daemon_checked(config.state_dir)
        return {"clip_to_upload_start_s": round(upload, 2), "slices_at_write": at_write,
                "slices_by_upload_start": by_upload, "slices_in_all": len(slices), "check_done": done}
    finally:
        daemon.request_stop()
        thread.join(60)
        admin.close()
        MirrorOptions.from_config = real_options  # type: ignore[method-assign]
        Mirror.run = real_run  # type: ignore[method-assign]
        if real_verified is not None:
            Catalog.mirror_verified_to = real_verified  # type: ignore[method-assign]


def daemon_checked(state_dir: Path, timeout: float = 600) -> bool:
    """Wait for the daemon's check of every sidecar to end (the ``mirror_complete`` record)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peek_meta(state_dir, ["mirror_complete"]).get("mirror_complete"):
            return True
        time.sleep(0.5)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, default=None, help="build here once, reuse after")
    parser.add_argument("--slice", type=int, default=None, help="MirrorOptions.slice (default: its own)")
    parser.add_argument("--daemon", action="store_true", help="also: a clip written during a daemon's check")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"files": args.files, "sliced": sliced(), "code": str(Path(inspect.getfile(Engine)).parents[2])}
    # The port of the build, each time: the details hold the emulator's URLs, and another
    # port would make every listing entry differ from them.
    port_file = root / "port"
    port = int(port_file.read_text()) if port_file.exists() else 0
    emu_config = EmulatorConfig(data_dir=root / "emulator", api_keys=[KEY], host="127.0.0.1", port=port,
                                processing_seconds=0.1, pipeline_seconds=0.1)
    built = (root / "built").exists()
    with Emulator(emu_config) as emu:
        port_file.write_text(emu.base_url.rsplit(":", 1)[1].strip("/"))
        if not built:
            start = time.monotonic()
            build(root, emu, args.files)
            (root / "built").write_text(str(args.files))
            out["build_s"] = round(time.monotonic() - start, 1)
        config = load_config(config_file(root, emu.base_url), {"SYNCD_BENCH_KEY": KEY})
        with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY) as remote:
            bound = catalog.bound_remote()  # the emulator listens on a new port each run
            if bound is not None:
                catalog.bind_remote(f"{bound.rsplit(' at ', 1)[0]} at {emu.base_url}", rebind=True)
            engine = fresh(config, catalog, remote, args.slice)
            runs = timed(engine)
            until_verified(engine, runs, lambda: True)
            out["first_run"] = {"runs": len(runs), "cpu_s_max": max(runs), "cpu_s_total": round(sum(runs), 2),
                                "cpu_s": list(runs)}
            engine = fresh(config, catalog, remote, args.slice)
            runs = timed(engine)
            until_verified(engine, runs, None)
            out["one_shot"] = {"runs": len(runs), "cpu_s": list(runs)}
            video_id = next(iter(catalog.mirror_videos()))
            with httpx.Client(base_url=emu.base_url + "/_admin") as admin:
                admin.patch(f"/videos/{video_id}", json={"name": f"renamed on the remote {time.time()}"})
            engine.mirror._next_check = 0.0
            runs.clear()
            report = engine.run_pass(with_listing=True)
            assert report.listing_ok and report.mirror is not None
            out["listing_check"] = {"cpu_s": list(runs), "written": len(report.mirror.written)}
        if args.daemon:
            out["daemon"] = daemon_phase(root, emu, args.slice)
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
