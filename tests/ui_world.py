"""A synced folder of real clips against the emulator, shared by the UI tests (issue 17)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from syncd.media.clips import make_clip
from syncd.config import Config, load_config
from syncd.emulator.mikshi import Emulator
from tests.conftest import KEY, emulator_config, run_syncd, write_config

CLIPS = {
    "warehouse-cam3/forklift-loading-gate.mp4": 12,
    "warehouse-cam3/pallet-stack-night.mp4": 9,
    "parking-north/car-entering-gate.mp4": 8,
    "parking-north/truck-at-barrier.mp4": 7,
}


class UiWorld:
    def __init__(self, root: Path, emu: Emulator) -> None:
        self.root, self.emu = root, emu
        self.drop = root / "drop"
        self.config_path = write_config(root, emu.base_url)
        self.admin = httpx.Client(base_url=f"{emu.base_url}/_admin", timeout=10)

    def config(self, **env: str) -> Config:
        return load_config(self.config_path, {"SYNCD_TEST_KEY": KEY, **env})

    def requests(self, fragment: str) -> list[dict[str, object]]:
        return [r for r in self.admin.get("/requests").json() if fragment in r["path"]]


@contextmanager
def ui_world(root: Path) -> Iterator[UiWorld]:
    """Clips synced (with thumbnails, HLS, embeddings), plus one video whose local file is
    gone (moved out and linked back: the catalog still tracks it)."""
    with Emulator(emulator_config(root / "emulator", processing_seconds=0.1, pipeline_seconds=0.1)) as emu:
        world = UiWorld(root, emu)
        for i, (rel, seconds) in enumerate(CLIPS.items()):
            make_clip(world.drop / rel, seconds=seconds, seed=i, keyframe_every=20)  # 2 s HLS segments
        result = run_syncd(world.config_path, "sync", "--wait", "--timeout", "60")
        assert result.returncode == 0, result.stdout + result.stderr
        try:
            yield world
        finally:
            world.admin.close()
            shutil.rmtree(root / "outside", ignore_errors=True)
