"""A first pass over a huge tree holds a batch, not the tree (issue 15, Deliver 3 and 4):
the walk hands new files on a batch at a time to be hashed and recorded, and the new
contents are planned (and uploaded, or linked in catalog recovery) a slice at a time.
Real engine and client against the emulator over loopback, batches made small; counted
(bytes traced, requests, catalog rows), never timed."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from syncd.cli.main import main
from syncd.config import Config, load_config
from syncd.emulator.mikshi import Emulator
from syncd.models import Upload
from syncd.remote.facts import MIKSHI_PROCESSING_STEPS
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync import engine as engine_module
from syncd.sync.engine import Engine, EngineOptions
from tests.conftest import FAST_RETRY, KEY, REPO, admin_videos, emulator_config, syncd_env, wait_for, write_config
from tests.sync.test_scale import Planned
from tests.traced import traced

BATCH = 7
UPLOADS = ("/uploads/direct", "/uploads/multipart/initiate")  # one request starts each upload


def tree(drop: Path, files: int, start: int = 0) -> list[Path]:
    """``files`` small files of distinct content, a hundred a subfolder."""
    paths = []
    for i in range(start, start + files):
        path = drop / f"cam{i // 100:03d}" / f"clip{i:06d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"clip {i} of a long camera day\n".encode())
        paths.append(path)
    return paths


def config_for(tmp_path: Path, emu: Emulator | str) -> Config:
    """A config watching ``tmp_path/drop`` on ``emu`` (or the emulator at that base URL)."""
    base_url = emu if isinstance(emu, str) else emu.base_url
    folders = [{"path": str(tmp_path / "drop"), "collections": "none", "pipelines": []}]
    return load_config(write_config(tmp_path, base_url, folders), {"SYNCD_TEST_KEY": KEY})


def options(config: Config, batch: int = BATCH) -> EngineOptions:
    return replace(EngineOptions.from_config(config), batch=batch)


def traced_first_pass(tmp_path: Path, base_url: str, files: int) -> int:
    """Peak bytes traced by tracemalloc above the start of a dry-run first pass (walk,
    hash, record, plan every new file, the outcome's counts) over ``files`` new files on
    a fresh catalog, against the emulator at ``base_url``."""
    root = tmp_path / f"n{files}"
    # Every Path interns its parts in the process-wide table of interned strings, whose
    # growth steps (a 1.9 MB resize, say) fall where the process's history puts them, not
    # where the pass does: the names are interned, and held, before the trace starts.
    names = {sys.intern(part) for path in tree(root / "drop", files) for part in path.parts}
    config = config_for(root, base_url)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(base_url, KEY, retry=FAST_RETRY) as remote:
        engine = Engine(options(config, batch=500), catalog, remote, dry_run=True)
        outcome, _, peak = traced(engine.sync)
        report = outcome.reports[-1]
        assert report.hashed == files and report.plan.total == files
        assert outcome.overview.counts["new"] == files and len(outcome.not_done) <= engine_module.PENDING_KEPT
        assert len(catalog.files()) == files
    del names
    return peak


def test_a_first_pass_holds_a_batch_not_the_tree(tmp_path: Path, emu: Emulator) -> None:
    """Four times the files, not four times the memory: the traced peak grows by less
    than 400 bytes a file (measured: 2.55 MB at 500 files, 2.71 at 2,000, 4.2 at 8,000,
    6.0 at 20,000: 100, then 250 and 150 bytes a file; before the batches ~2 KB a file, a
    ``LocalFile``, a file and content record and an ``Upload`` each, held to the end of
    the pass). 500 and 2,000 files: a third of the time of 2,000 and 8,000 (7 CPU-s, was
    24), the same verdict.
    Measured in a process of its own, the emulator left in this one: tracemalloc traces
    every thread, and a test run beside others shares its process with their threads, as
    an in-process emulator would with its server's."""
    code = ("import json, sys; from tests.sync.test_first_pass_batches import measured; "
            "print(json.dumps(measured(sys.argv[1], sys.argv[2])))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path), emu.base_url], env=syncd_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    few, many = json.loads(done.stdout.splitlines()[-1])
    assert many - few < 1500 * 400, (few, many)


def measured(root: str, base_url: str) -> tuple[int, int]:
    """The traced peaks of first passes over 500 and then 2,000 new files (see above)."""
    engine_module.PENDING_KEPT = 300
    logging.disable(logging.INFO)  # no record a request
    return traced_first_pass(Path(root), base_url, 500), traced_first_pass(Path(root), base_url, 2000)


def uploads(emu: Emulator) -> list[str]:
    return [r["path"] for r in emu.requests() if r["path"].endswith(UPLOADS)]


def test_a_sync_over_many_batches_uploads_each_content_once(tmp_path: Path, emu: Emulator,
                                                            admin: httpx.Client) -> None:
    paths = tree(tmp_path / "drop", 30)
    # Two more files holding contents already in the tree, in other subfolders (other batches).
    for i, source in ((0, paths[3]), (1, paths[25])):
        copy = tmp_path / "drop" / "copies" / f"copy{i}.mp4"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(source.read_bytes())
    config = config_for(tmp_path, emu)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        report = Engine(options(config), catalog, remote).run_pass()
        assert report.hashed == 32 and report.result.uploaded_files == 30 and not report.result.failed
        # The first slice is listed (7 contents), the other 23 counted.
        assert len(report.plan.of(Upload)) == BATCH and report.plan.unlisted == {"Upload": 30 - BATCH}
        assert {c.state for c in catalog.contents()} == {"uploaded"} and len(catalog.contents()) == 30
        assert len(catalog.files()) == 32 and all(f.present for f in catalog.files())
        # Nothing new is left: the next pass uploads nothing.
        again = Engine(options(config), catalog, remote).run_pass()
        assert again.plan.of(Upload) == [] and again.plan.unlisted == {}
    videos = admin_videos(admin)
    assert len(videos) == 30 and len({v["name"] for v in videos}) == 30
    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(shas) == 30


def test_the_pass_after_a_first_sync_plans_the_videos_processing_a_slice_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a first sync every video is still processing, and each pass polls and
    plans them (for their pipelines, markers and collections): a slice at a time, as the
    uploads were, not a million contents in one plan (~2.4 KB a file)."""
    tree(tmp_path / "drop", 30)
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=600)) as slow:
        config = config_for(tmp_path, slow)
        with Catalog.open(config.state_dir) as catalog, MikshiClient(slow.base_url, KEY, retry=FAST_RETRY) as remote:
            assert Engine(options(config), catalog, remote).run_pass().result.uploaded_files == 30
            planned = Planned(monkeypatch)
            again = Engine(options(config), catalog, remote).run_pass()
            assert again.plan.actions == [] and again.plan.unlisted == {} and not again.result.failed
            assert [len(s.contents) for s in planned.snapshots] == [BATCH] * (30 // BATCH) + [30 % BATCH]
            assert sum(len(s.files) for s in planned.snapshots) == 30


def test_catalog_recovery_links_and_uploads_across_batches(tmp_path: Path, emu: Emulator,
                                                           admin: httpx.Client) -> None:
    """A fresh catalog, the remote holding every third file already (uploaded by an
    earlier catalog) and one name with other bytes: each held one is linked by proof,
    whatever slice it falls in, the rest uploaded once, the impostor's file beside it."""
    drop = tmp_path / "drop"
    paths = tree(drop, 24)
    held, impostor = paths[::3], paths[1]
    real = impostor.read_bytes()
    for path in paths:
        if path not in held and path != impostor:
            path.unlink()
    impostor.write_bytes(b"other bytes under the same name\n")
    first = config_for(tmp_path / "first", emu)
    first = replace(first, folders=tuple(replace(f, path=drop) for f in first.folders))
    with Catalog.open(first.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        assert Engine(options(first), catalog, remote).run_pass().result.uploaded_files == len(held) + 1
    tree(drop, 24)  # the rest of the tree, and the impostor's name with its own bytes
    assert impostor.read_bytes() == real
    emu.clear_requests()

    config = config_for(tmp_path, emu)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        dry = Engine(options(config), catalog, remote, dry_run=True).run_pass()
        kinds = dict(dry.plan.unlisted)
        for action in dry.plan.actions:
            kinds[action.kind] = kinds.get(action.kind, 0) + 1
        assert kinds == {"LinkVideo": len(held), "Upload": 24 - len(held)} and dry.plan.total == 24
        assert catalog.get_meta("adopt_remote") == "1" and uploads(emu) == []

        report = Engine(options(config), catalog, remote).run_pass()
        assert report.result.uploaded_files == 24 - len(held) and not report.result.failed
        assert catalog.get_meta("adopt_remote") == "0"  # recovery done, across every slice
        assert len(catalog.contents()) == 24 and {c.state for c in catalog.contents()} == {"uploaded"}
        assert len({c.video_id for c in catalog.contents()}) == 24
        assert len(uploads(emu)) == 24 - len(held)
    names = sorted(v["name"] for v in admin_videos(admin))
    # Every file once, the impostor's name twice (its video, and the file's own upload).
    assert len(names) == 25 and names.count(impostor.relative_to(drop).as_posix()) == 2


def test_a_dry_run_counts_every_new_file_and_lists_a_slice(tmp_path: Path, emu: Emulator, admin: httpx.Client,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    tree(tmp_path / "drop", 23)
    config = config_for(tmp_path, emu)
    monkeypatch.setenv("SYNCD_TEST_KEY", KEY)
    monkeypatch.setattr(engine_module, "BATCH", BATCH)
    code = main(["-c", str(tmp_path / "config.yaml"), "sync", "--dry-run"])
    out = capfd.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "dry run: 23 change(s) planned, none made"
    assert sum(1 for line in lines if line.startswith("  would upload ")) == BATCH
    assert "  ... and 16 more: 16 upload(s)" in lines
    assert "23 file(s): 23 waiting to upload; uploaded 0 file(s), 0 B" in lines
    assert admin_videos(admin) == []
    with Catalog.open(config.state_dir) as catalog:
        assert len(catalog.files()) == 23 and {c.state for c in catalog.contents()} == {"new"}


def shas_of(paths: list[Path]) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def planned_contents(planned: Planned) -> set[str]:
    """Every content the planner got since ``planned`` was last cleared, and clear it."""
    shas = {sha for s in planned.snapshots for sha in s.contents}
    planned.snapshots.clear()
    return shas


def test_videos_processing_are_planned_again_only_once_their_state_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what changed is planned: once a pass saw the videos processing (nothing to do
    for them yet), the next passes poll their states but plan none of them until one
    changes; then that one alone. A first sync's million videos processing do not cost a
    million plans a pass."""
    drop = tmp_path / "drop"
    first = tree(drop, 30)
    # Processing takes 600 s of the emulator's clock; its tasks change state at fixed
    # fractions of it (thumbnail running from 0, transcoding from 60 s, done at 600 s).
    with Emulator(emulator_config(tmp_path / "emulator", processing_seconds=600)) as slow:
        config = config_for(tmp_path, slow)
        with Catalog.open(config.state_dir) as catalog, MikshiClient(slow.base_url, KEY, retry=FAST_RETRY) as remote:
            def run() -> set[str]:
                report = Engine(options(config), catalog, remote).run_pass()
                assert not report.result.failed
                return planned_contents(planned)

            planned = Planned(monkeypatch)
            run()  # uploads the 30
            assert run() == shas_of(first)  # uploaded, now processing: each planned once, in slices
            slow.clear_requests()
            assert run() == set()  # still processing, as last seen: polled, not planned
            assert len([r for r in slow.requests() if "/status" in r["path"]]) >= 30, slow.requests()

            slow.advance_clock(570)  # the 30 nearly done (hls running); five new files
            later = tree(drop, 5, start=30)
            assert run() == shas_of(first) | shas_of(later)
            assert run() == shas_of(later)  # the five started processing; the 30 as they were
            slow.advance_clock(30)  # the 30 done, the five at 30 s of 600: as they were
            assert run() == shas_of(first)
            assert run() == set()
            assert {c.sha256 for c in catalog.contents() if c.processed(MIKSHI_PROCESSING_STEPS)} == shas_of(first)


def test_a_failed_processing_is_tried_again_once_due_though_no_row_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A video whose processing failed is uploaded again once its retry falls due: it stays
    planned while it waits, since the clock, not a change of its rows, makes that plan differ."""
    drop = tmp_path / "drop"
    paths = tree(drop, 12)
    broken = paths[3]
    now = [time.time()]
    settings = emulator_config(tmp_path / "emulator", processing_seconds=600,
                               fail_name_glob=f"*{broken.name}", fail_pipeline="thumbnail")
    with Emulator(settings) as slow:
        config = config_for(tmp_path, slow)
        with Catalog.open(config.state_dir) as catalog, MikshiClient(slow.base_url, KEY, retry=FAST_RETRY) as remote:
            def run() -> tuple[set[str], int]:
                report = Engine(options(config), catalog, remote, clock=lambda: now[0]).run_pass()
                return planned_contents(planned), report.result.uploaded_files

            planned = Planned(monkeypatch)
            assert run()[1] == 12
            run()  # each planned once, processing
            slow.advance_clock(130)  # the thumbnail of one failed (at 120 s); the others running
            assert run() == (shas_of(paths), 0)
            [failed] = [c for c in catalog.contents() if c.processing_failed(MIKSHI_PROCESSING_STEPS)]
            assert failed.sha256 in shas_of([broken]) and failed.next_attempt_at > now[0]
            assert run() == (shas_of([broken]), 0)  # waits for its retry: still planned
            slow.clear_requests()
            now[0] = failed.next_attempt_at + 1
            assert run() == (shas_of([broken]), 1)  # due: uploaded again
            assert len(uploads(slow)) == 1


def test_a_pipeline_added_to_a_folder_reaches_every_video_at_rest(tmp_path: Path, emu: Emulator,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of a library at rest is planned, until the rule of what a video needs
    changes (a folder given a pipeline): then every video of the folder is, a slice at a
    time, and once every slice ran the passes plan only what changed again."""
    paths = tree(tmp_path / "drop", 12)
    config = config_for(tmp_path, emu)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        planned = Planned(monkeypatch)

        def run(config: Config) -> tuple[set[str], list[str]]:
            report = Engine(options(config), catalog, remote).run_pass()
            kinds = [a.kind for a in report.plan.actions] + [k for k, n in report.plan.unlisted.items() for _ in range(n)]
            return planned_contents(planned), kinds

        def at_rest() -> bool:
            quiet = run(config)[0] == set()
            return quiet and {c.sha256 for c in catalog.contents()
                              if c.processed(MIKSHI_PROCESSING_STEPS)} == shas_of(paths)

        wait_for(at_rest, 30, "every video processed and at rest")
        assert run(config) == (set(), [])
        analysed = replace(config, folders=tuple(replace(f, pipelines=("analyse",)) for f in config.folders))
        shas, kinds = run(analysed)
        assert shas == shas_of(paths) and kinds == ["StartPipeline"] * 12
        assert run(analysed)[1] == []  # started: running, as last seen
