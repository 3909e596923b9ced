"""A poll asks a bounded number of the videos in flight, those asked longest ago first
(issue 15, Deliver 2): a first sync's 100,000 uploads still processing on a backend with
one status request a video cost a poll ``EngineOptions.polls`` requests, not 100,000,
and each of them is still asked in turn. Real engine and client against the emulator over
loopback, the budget made small; requests counted from the emulator's log."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from syncd.emulator.mikshi import Emulator
from syncd.remote.facts import MIKSHI_PROCESSING_STEPS
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions
from tests.conftest import FAST_RETRY, KEY, emulator_config
from tests.sync.test_first_pass_batches import config_for, tree

POLLS = 4
# Processing so slow its percentages stand still while the test runs (1 % in ~4,000 s of
# the emulator's clock): a poll's answers are as last seen until the clock is advanced.
PROCESSING = 1_000_000
STATUS = "/uploads/status/"


def asked(emu: Emulator) -> list[str]:
    """The video ids whose processing state was asked since the log was last cleared, and clear it."""
    ids = [r["path"].rsplit("/", 1)[-1] for r in emu.requests() if STATUS in r["path"]]
    emu.clear_requests()
    return ids


def test_a_poll_asks_a_few_of_the_videos_in_flight_each_in_turn(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    tree(drop, 10)
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=PROCESSING)) as slow:
        config = config_for(tmp_path, slow)
        with Catalog.open(config.state_dir) as catalog, MikshiClient(slow.base_url, KEY, retry=FAST_RETRY) as remote:
            def poll() -> list[str]:
                report = Engine(replace(EngineOptions.from_config(config), polls=POLLS), catalog, remote).run_pass()
                assert not report.result.failed
                return asked(slow)

            poll()  # uploads the ten
            videos = {c.video_id for c in catalog.contents()}
            assert len(videos) == 10

            # Ten in flight, four asked a poll: every video within three polls, the
            # ones asked longest ago first, none twice before all were asked once.
            rounds = [poll() for _ in range(3)]
            assert all(len(ids) == POLLS for ids in rounds), rounds
            first_ten = [v for ids in rounds for v in ids][:10]
            assert set(first_ten) == videos
            assert rounds[2][2:] == rounds[0][:2]  # the round goes on where it began
            # Answers as last seen write nothing a decision reads: no catalog change, so
            # no recount and no mirror run follows a poll.
            generation = catalog.generation
            assert len(poll()) == POLLS
            assert catalog.generation == generation

            # A new upload is asked at the next poll, before any asked already.
            tree(drop, 1, start=10)
            poll()  # uploads it
            [new_video] = {c.video_id for c in catalog.contents()} - videos
            assert poll()[0] == new_video

            # Processing ends: each video is seen done within a round of polls, and a
            # poll with nothing left in flight asks nothing.
            slow.advance_clock(PROCESSING)
            for _ in range(3):
                poll()
            assert all(c.processed(MIKSHI_PROCESSING_STEPS) for c in catalog.contents())
            assert poll() == []


def test_a_sync_that_waits_sees_every_video_done_whatever_the_budget(tmp_path: Path) -> None:
    """``sync --wait`` over more videos in flight than a poll asks: the passes go on until
    the last of them is seen done."""
    tree(tmp_path / "drop", 9)
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=0.5)) as emu:
        config = config_for(tmp_path, emu)
        with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
            engine = Engine(replace(EngineOptions.from_config(config), polls=2), catalog, remote)
            outcome = engine.sync(wait=True, timeout=60, poll_start=0.1, poll_max=0.5)
            assert outcome.overview.counts == {"done": 9}
            assert all(c.processed(MIKSHI_PROCESSING_STEPS) for c in catalog.contents())
