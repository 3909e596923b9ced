"""`syncd demo --backend memories`: the same walk-through against the built-in memories.ai
emulator (v1 and v2 on one loopback port).

What it shows that differs from Mikshi: subfolders become tags sent with each upload (no
collections), capture metadata read from the clips (time, camera, place) goes with them,
parsing starts by itself (no pipelines), and uploads are paced by the client-side rate
limiter. The service's published upload limit is about one a minute; the demo lifts it to
two a second on both sides so it ends in under a minute.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from syncd.cli.demo import CLIPS, WAIT, the_end, watch_a_change
from syncd.config import Config, load_config
from syncd.emulator.memories import MemoriesConfig, MemoriesEmulator
from syncd.media.clips import make_clip
from syncd.service.daemon import Daemon, Timings
from syncd.service.notify import Notifier
from syncd.sync.report import FileStatus

#: Pacing for the demo, on both sides (the published figures: see the README).
DEMO_LIMITS: dict[str, str | None] = {"upload": "2/s", "list": "5/s", "delete": "5/s", "metadata": "5/s",
                                      "search": "1/s", "download": "12/min", "task_status": "1/s",
                                      "stream": "1/s"}
#: Capture metadata the first subfolder's clips carry, as a phone writes it.
PHONE_TAGS = {"creation_time": "2024-05-01T10:20:30.000000Z", "location": "+48.8577+002.2950/",
              "com.apple.quicktime.make": "Google", "com.apple.quicktime.model": "Pixel 8"}


def demo_memories(root: Path, say: Callable[[str], None], keep: bool) -> int:
    key = "sk-mavi-demo-" + secrets.token_hex(8)
    drop = root / "drop"
    after = "kept afterwards" if keep else "removed afterwards; --keep keeps it"
    say(f"syncd demo (memories.ai), working in {root} ({after})")
    emulator_cfg = MemoriesConfig(data_dir=root / "emulator", api_keys=[key], port=0, parse_seconds=1.5,
                                  rate_limits=dict(DEMO_LIMITS))
    ok = False
    with MemoriesEmulator(emulator_cfg) as emu:
        say(f"memories.ai emulator listening on {emu.base_url} (v1 and v2)")
        for seed, (sub, names) in enumerate(CLIPS.items()):
            for i, name in enumerate(names):
                make_clip(drop / sub / name, seconds=6, seed=seed * 10 + i, tags=PHONE_TAGS if seed == 0 else None)
        count = sum(len(v) for v in CLIPS.values())
        say(f"made {count} short clips in {drop}, in {len(CLIPS)} subfolders (one tag each)")
        config = _write_config(root, drop, emu, key)

        daemon = Daemon(config, environ={"SYNCD_DEMO_KEY": key}, notifier=Notifier(None),
                        timings=Timings(followup_cap=1.0), keep_log_level=True)
        thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, name="syncd-demo")
        started = time.monotonic()
        say("started the daemon (`syncd run`); uploads are paced at 2 a second "
            "(the real service: about 1 a minute), then the service parses each video")
        thread.start()
        try:
            ok = daemon.wait_until(lambda s: len(s) == count and all(f.state == "done" for f in s), WAIT)
            took = time.monotonic() - started
            say(f"\n{f'all {count} clips parsed in {took:.1f}s' if ok else f'NOT all parsed after {took:.1f}s'}:")
            _show(daemon.statuses, emu, say)

            ok = watch_a_change(drop, ok, lambda: _propagated(daemon.statuses, emu),
                                lambda: _show(daemon.statuses, emu, say), say)
            if keep:
                say(f"\nkept: config {config.source}, state {config.state_dir}")
        finally:
            daemon.request_stop()
            thread.join()
    return the_end(root, keep, ok and not daemon.crashed, say)


def _write_config(root: Path, drop: Path, emu: MemoriesEmulator, key: str) -> Config:
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump({
        "remote": {"backend": "memories", "base_url": emu.v1_url, "v2_base_url": emu.v2_url,
                   "api_key_env": "SYNCD_DEMO_KEY", "rate_limits": DEMO_LIMITS},
        "state_dir": str(root / "state"),
        "folders": [{"path": str(drop), "collections": "subfolder"}],
        "upload": {"settle_seconds": "500ms"},
        "safety": {"delete_grace": "1s"},
        "schedule": {"rescan": "1m", "remote_poll": "2s"},
    }))
    return load_config(path, {"SYNCD_DEMO_KEY": key})


def _propagated(statuses: list[FileStatus], emu: MemoriesEmulator) -> bool:
    names = {Path(s.path).name for s in statuses}
    remote = {v["filename"] for v in emu.admin_videos()}
    return ("person-at-door.mp4" in names and "truck-at-barrier.mp4" not in names
            and all(s.state == "done" for s in statuses) and "truck-at-barrier.mp4" not in remote)


def _show(statuses: list[FileStatus], emu: MemoriesEmulator, say: Callable[[str], None]) -> None:
    for status in sorted(statuses, key=lambda s: s.path):
        say(f"  {status.words:<10} tag {status.remote_tag or '-':<16} {Path(status.path).name:<28} "
            f"video {status.video_id}")
    for video in sorted(emu.admin_videos(), key=lambda v: v["filename"]):
        shot = [f"camera {video['camera_model']}"] if video.get("camera_model") else []
        if video.get("latitude") is not None:
            shot.append(f"at {video['latitude']:.4f},{video['longitude']:.4f}")
        tags = [t for t in video["tags"] if not t.startswith(("sha256:", "syncd-instance:"))]
        say(f"  remote {video['filename']:<28} {video['status']:<7} tags {', '.join(tags) or '-'}"
            + (f"; {', '.join(shot)}" if shot else ""))
