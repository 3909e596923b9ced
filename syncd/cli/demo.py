"""`syncd demo`: the whole product in under a minute, against the built-in emulator.

Starts the emulator in-process on a free loopback port, makes a drop folder
with two subfolders of short real clips, and runs the daemon (`syncd run`, in a
thread, with short timings) until everything is processed; shows the status
table and the remote collections. Then, with the daemon still running, deletes
one file and adds another, and shows both propagating. Ends with where the sidecars
are and a local search over the clips.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from syncd.store.catalog import Catalog
from syncd.media.clips import make_clip
from syncd.config import Config, load_config
from syncd.service.daemon import Daemon, Timings
from syncd.emulator.mikshi import Emulator, EmulatorConfig
from syncd.mirror.index import SEARCH_DIR, SearchIndex
from syncd.mirror.search import SearchFilter, format_hits, query_source, run_search
from syncd.mirror.sidecars import SidecarLayout, read_metadata
from syncd.service.notify import Notifier
from syncd.remote import open_remote
from syncd.remote.facts import MIKSHI
from syncd.sync.report import FileStatus

CLIPS = {
    "warehouse-cam3": ["forklift-loading-gate.mp4", "pallet-stack-night.mp4"],
    "parking-north": ["car-entering-gate.mp4", "truck-at-barrier.mp4"],
}
WAIT = 40.0  # seconds per phase; the whole demo stays under a minute
SEARCH_QUERY = "forklift gate"


def run_demo(workdir: Path | None = None, say: Callable[[str], None] = print, *, keep: bool = False,
             backend: str = "mikshi") -> int:
    """Run the demo against ``backend``'s emulator; afterwards remove what it made (unless ``keep``)."""
    made_root = workdir is None or not workdir.exists()
    root = Path(workdir or tempfile.mkdtemp(prefix="syncd-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if backend == "memories":  # which emulator to start: the demo's choice, not the sync code's
            from syncd.cli.demo_memories import demo_memories

            return demo_memories(root, say, keep)
        return _demo(root, say, keep)
    finally:
        if not keep:
            # Only what the demo made: a --dir that existed before keeps anything else in it.
            for made in ([root] if made_root else [root / n for n in ("drop", "emulator", "state", "config.yaml")]):
                if made.is_dir():
                    shutil.rmtree(made, ignore_errors=True)
                else:
                    made.unlink(missing_ok=True)


def _demo(root: Path, say: Callable[[str], None], keep: bool) -> int:
    key = "sk_demo_" + secrets.token_hex(8)
    drop = root / "drop"
    after = "kept afterwards" if keep else "removed afterwards; --keep keeps it"
    say(f"syncd demo, working in {root} ({after})")
    emulator_cfg = EmulatorConfig(
        data_dir=root / "emulator", api_keys=[key], port=0,
        processing_seconds=1.5, pipeline_seconds=1.5, collections_cache_seconds=0,
    )
    ok = False
    with Emulator(emulator_cfg) as emu:
        say(f"emulator of the remote service listening on {emu.base_url}")
        for seed, (sub, names) in enumerate(CLIPS.items()):
            for i, name in enumerate(names):
                make_clip(drop / sub / name, seconds=6, seed=seed * 10 + i)
        count = sum(len(v) for v in CLIPS.values())
        say(f"made {count} short clips in {drop}, in {len(CLIPS)} subfolders (one collection each)")
        config = _write_config(root, drop, emu.base_url, key)

        # The real daemon, in a thread: watcher, timers and worker as under `syncd run`.
        daemon = Daemon(config, environ={"SYNCD_DEMO_KEY": key}, notifier=Notifier(None),
                        timings=Timings(followup_cap=1.0), keep_log_level=True)
        thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, name="syncd-demo")
        started = time.monotonic()
        say("started the daemon (`syncd run`); waiting for upload, processing, pipelines and collections")
        thread.start()
        try:
            ok = daemon.wait_until(lambda s: len(s) == count and all(f.state == "done" for f in s), WAIT)
            took = time.monotonic() - started
            say(f"\n{f'all {count} clips done in {took:.1f}s' if ok else f'NOT all done after {took:.1f}s'}:")
            _show(daemon.statuses, emu, drop, say)

            ok = watch_a_change(drop, ok, lambda: _propagated(daemon.statuses, emu),
                                lambda: _show(daemon.statuses, emu, drop, say), say)
            say("\nthe remote now holds: " + ", ".join(sorted(v["name"] for v in emu.admin_videos())))
            ok = ok and _wait(lambda: _mirrored(daemon.statuses, config), WAIT)
            _show_mirror(daemon.statuses, config, say)
            if keep:
                say(f"\nkept: config {config.source}, state {config.state_dir}")
        finally:
            daemon.request_stop()
            thread.join()
    return the_end(root, keep, ok and not daemon.crashed, say)


def the_end(root: Path, keep: bool, ok: bool, say: Callable[[str], None]) -> int:
    """The last line of every demo, and its exit status."""
    removed = "" if keep else f"; {root} is removed now (`syncd demo --keep` keeps it to look around)"
    say("\ndemo " + ("finished" if ok else "FAILED") + removed)
    return 0 if ok else 1


def watch_a_change(drop: Path, ok: bool, propagated: Callable[[], bool], show: Callable[[], None],
                   say: Callable[[str], None]) -> bool:
    """The second act of every demo: delete one clip, add another, wait (if all went well so
    far) for both changes to reach the remote, and show the files."""
    gone = drop / "parking-north" / "truck-at-barrier.mp4"
    gone.unlink()
    make_clip(drop / "warehouse-cam3" / "person-at-door.mp4", seconds=6, seed=99)
    say(f"\nthe daemon keeps watching: deleted {gone.relative_to(drop)}, "
        "added warehouse-cam3/person-at-door.mp4")
    changed = time.monotonic()
    ok = ok and _wait(propagated, WAIT)
    took = time.monotonic() - changed
    say(f"{f'both changes reached the remote in {took:.1f}s' if ok else f'NOT on the remote after {took:.1f}s'}:")
    show()
    return ok


def _mirrored(statuses: list[FileStatus], config: Config) -> bool:
    """Every video's sidecars are written, embeddings included."""
    layout = SidecarLayout.from_config(config.mirror)
    for status in statuses:
        meta = read_metadata(layout.paths(Path(status.path)).json)
        if meta is None or meta.get("embeddings") is None:
            return False
    return bool(statuses)


def _show_mirror(statuses: list[FileStatus], config: Config, say: Callable[[str], None]) -> None:
    """Where the sidecars are, and a search over the demo clips (the README, "Local mirror")."""
    layout = SidecarLayout.from_config(config.mirror)
    say("\nsidecars (metadata .syncd.json, embeddings .syncd.emb):")
    for status in sorted(statuses, key=lambda s: s.path):
        say(f"  {layout.paths(Path(status.path)).json}")
    with Catalog.open(config.state_dir) as catalog:
        hits = run_search(catalog, SearchIndex(catalog, config.state_dir / SEARCH_DIR), SEARCH_QUERY, mode="local",
                          top_k=5, wanted=SearchFilter(), source=query_source(config.remote),
                          open_remote=lambda: open_remote(config.remote))
    say(f'\n$ syncd search "{SEARCH_QUERY}"')
    for line in format_hits(hits):
        say(f"  {line}")


def _write_config(root: Path, drop: Path, base_url: str, key: str) -> Config:
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump({
        "remote": {"base_url": base_url, "api_key_env": "SYNCD_DEMO_KEY"},
        "state_dir": str(root / "state"),
        "folders": [{"path": str(drop)}],
        "upload": {"settle_seconds": "500ms"},
        "safety": {"delete_grace": "1s"},
        "schedule": {"rescan": "1m", "remote_poll": "2s"},
    }))
    return load_config(path, {"SYNCD_DEMO_KEY": key})


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _propagated(statuses: list[FileStatus], emu: Emulator) -> bool:
    names = {Path(s.path).name for s in statuses}
    remote = {v["name"] for v in emu.admin_videos()}
    return (
        "person-at-door.mp4" in names and "truck-at-barrier.mp4" not in names
        and all(s.state == "done" for s in statuses)
        and "parking-north/truck-at-barrier.mp4" not in remote
    )


def _show(statuses: list[FileStatus], emu: Emulator, drop: Path, say: Callable[[str], None]) -> None:
    for status in sorted(statuses, key=lambda s: s.path):
        steps = " ".join(f"{k}={v[0]}" for k, v in status.steps.items() if k in MIKSHI.pipelines)
        say(f"  {status.words:<12} {status.collection or '-':<16} {Path(status.path).name:<28} {steps}")
    names = {v["video_id"]: v["name"] for v in emu.admin_videos()}
    for collection in sorted(emu.admin_collections(), key=lambda c: c["name"]):
        videos = sorted(Path(names.get(v, v)).name for v in collection["video_ids"])
        say(f"  collection {collection['name']!r}: {len(videos)} video(s): {', '.join(videos)}")
