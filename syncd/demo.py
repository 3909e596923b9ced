"""`syncd demo`: the whole product in under a minute, against the built-in emulator.

Starts the emulator in-process on a free loopback port, makes a drop folder
with two subfolders of short real clips, syncs until everything is processed
and shows what happened; then deletes one file and adds another, and shows
both propagating.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from syncd.catalog import Catalog
from syncd.clips import make_clip
from syncd.config import load_config
from syncd.emulator import Emulator, EmulatorConfig
from syncd.engine import Engine
from syncd.remote import open_remote

CLIPS = {
    "warehouse-cam3": ["forklift-loading-gate.mp4", "pallet-stack-night.mp4"],
    "parking-north": ["car-entering-gate.mp4", "truck-at-barrier.mp4"],
}


def run_demo(workdir: Path | None = None, say: Callable[[str], None] = print) -> int:
    root = Path(workdir or tempfile.mkdtemp(prefix="syncd-demo-"))
    key = "sk_demo_" + secrets.token_hex(8)
    drop = root / "drop"
    say(f"syncd demo in {root}")
    emulator_cfg = EmulatorConfig(
        data_dir=root / "emulator", api_keys=[key], port=0,
        processing_seconds=1.5, pipeline_seconds=1.5, collections_cache_seconds=0,
    )
    with Emulator(emulator_cfg) as emu:
        say(f"emulator listening on {emu.base_url}")
        for seed, (sub, names) in enumerate(CLIPS.items()):
            for i, name in enumerate(names):
                make_clip(drop / sub / name, seconds=6, seed=seed * 10 + i)
        say(f"made {sum(len(v) for v in CLIPS.values())} clips in {drop}")
        config_path = root / "config.yaml"
        config_path.write_text(yaml.safe_dump({
            "remote": {"base_url": emu.base_url, "api_key_env": "SYNCD_DEMO_KEY"},
            "state_dir": str(root / "state"),
            "folders": [{"path": str(drop)}],
            "upload": {"settle_seconds": 0},
        }))
        config = load_config(config_path, {"SYNCD_DEMO_KEY": key})
        with Catalog.open(config.state_dir) as catalog, open_remote(config.remote) as remote:  # type: ignore[attr-defined]
            engine = Engine(config, catalog, remote)
            started = time.monotonic()
            outcome = engine.sync(wait=True, timeout=45)
            say(f"\nsynced in {time.monotonic() - started:.1f}s:")
            _show(engine, catalog, say)

            gone = drop / "parking-north" / "truck-at-barrier.mp4"
            gone.unlink()
            make_clip(drop / "warehouse-cam3" / "person-at-door.mp4", seconds=6, seed=99)
            say(f"\ndeleted {gone.relative_to(drop)}, added warehouse-cam3/person-at-door.mp4")
            outcome = engine.sync(wait=True, timeout=45)
            _show(engine, catalog, say)
            say("\nremote now holds: " + ", ".join(sorted(v["name"] for v in emu.admin_videos())))
            say(f"\nconfig: {config_path}\nstate:  {config.state_dir}")
    return 1 if outcome.failures or outcome.timed_out else 0


def _show(engine: Engine, catalog: Catalog, say: Callable[[str], None]) -> None:
    for status in engine.statuses():
        steps = " ".join(f"{k}={v[0]}" for k, v in status.steps.items() if k in ("analyse", "search-process"))
        say(f"  {status.state:<10} {status.collection or '-':<16} {Path(status.path).name:<28} {steps}")
    members: dict[str, int] = {}
    for name, _sha in catalog.memberships():
        members[name] = members.get(name, 0) + 1
    for record in catalog.collections():
        say(f"  collection {record.name!r}: {members.get(record.name, 0)} video(s)")
