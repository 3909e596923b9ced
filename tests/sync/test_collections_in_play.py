"""Collection folders plan in proportion to change (issue 15): a collection's members are
planned as a set (renames, removals, emptied subfolders), so a pass plans a collection
whole, but only the collections a change could take a member from; a content that can
only be added to one is planned on its own (a slice of the contents at work). An
unchanged tree with collection folders (the default config) hands the planner nothing.

Against the emulator over loopback; the plans are dry runs, what reaches the planner is
counted (``Planned``)."""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest
import yaml

from syncd.config import Config, load_config
from syncd.emulator.mikshi import Emulator
from syncd.models import Action, RemoveFromCollection
from syncd.remote.facts import MIKSHI_PIPELINES, MIKSHI_PROCESSING_STEPS
from syncd.remote.mikshi import MikshiClient
from syncd.store.catalog import Catalog
from syncd.sync.engine import Engine, EngineOptions
from syncd.sync.planner import Snapshot
from tests.conftest import FAST_RETRY, KEY, admin_videos, collections, run_syncd, set_faults, write_config, write_random
from tests.sync.test_lifecycle import synced, tree
from tests.sync.test_scale import Planned, synced_tree

FILES = 400  # cam00..cam03, 100 files each


def with_collections(tmp_path: Path, emu: Emulator, admin: httpx.Client) -> Config:
    """A synced tree whose first-level subfolders are collections holding their files:
    every content processed, its pipelines done, marked as ours, a member of its
    subfolder's collection."""
    config = synced_tree(tmp_path, emu, admin, FILES, mirrored=False)
    assert config.source is not None
    data = yaml.safe_load(config.source.read_text())
    data["folders"][0].update(collections="subfolder", pipelines=None, remove_empty_collections=True)
    config.source.write_text(yaml.safe_dump(data))
    config = load_config(config.source, {"SYNCD_TEST_KEY": KEY})
    with Catalog.open(config.state_dir) as catalog:
        files = catalog.files()
        catalog.link_finished([(f.sha256 or "", c.video_id or "", f.rel_path) for f in files
                               for c in [catalog.content(f.sha256 or "")] if c is not None],
                              (*MIKSHI_PROCESSING_STEPS, *MIKSHI_PIPELINES))
        for name in sorted({f.rel_path.split("/")[0] for f in files}):
            catalog.set_collection(name, f"collection-{name}")
        for f in files:
            catalog.add_membership(f.rel_path.split("/")[0], f.sha256 or "")
            catalog.set_marked(f.sha256 or "", True)  # this instance's marker is on the video
    # The first pass with collection folders plans them whole (the config changed): nothing
    # to do. The mirror is left for later: it is not what these tests count.
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        report = Engine(EngineOptions.from_config(config), catalog, remote).run_pass(
            with_listing=False, defer_mirror=lambda: True)
    assert report.plan.actions == [], report.plan.actions
    return config


def dry_pass(config: Config, emu: Emulator, planned: Planned) -> tuple[Snapshot, Counter[str]]:
    """The snapshot the planner got, and the kinds of actions it planned."""
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        report = Engine(EngineOptions.from_config(config), catalog, remote, dry_run=True).run_pass(with_listing=False)
    planned.actions = list(report.plan.actions)
    return planned.snapshots[-1], Counter(type(a).__name__ for a in report.plan.actions)


def sha_of(config: Config, rel_path: str) -> str:
    with Catalog.open_readonly(config.state_dir) as catalog:
        return next(f.sha256 or "" for f in catalog.files() if f.rel_path == rel_path)


def test_collections_are_planned_whole_but_only_those_a_change_touches(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    config = with_collections(tmp_path, emu, admin)
    drop = config.folders[0].path
    planned = Planned(monkeypatch)
    planned.actions: list[Action] = []

    snap, actions = dry_pass(config, emu, planned)  # unchanged: nothing reaches the planner
    assert (len(snap.files), len(snap.contents), snap.memberships) == (0, 0, frozenset())
    assert snap.whole_collections == frozenset() and actions == Counter()

    # A new clip in cam01: only the clip. It can only be added to cam01, so cam01 is not
    # planned whole (a first sync's million clips in one subfolder are planned a slice at
    # a time).
    (drop / "cam01" / "new.mp4").write_bytes(b"a new clip in cam01\n")
    snap, actions = dry_pass(config, emu, planned)
    assert snap.whole_collections == frozenset()
    assert [f.rel_path for f in snap.files] == ["cam01/new.mp4"] and snap.memberships == frozenset()
    assert actions == Counter(Upload=1)

    # A membership the catalog lost (an add that failed): that content, to add it back.
    lost = sha_of(config, "cam02/clip00205.mp4")
    with Catalog.open(config.state_dir) as catalog:
        catalog.remove_membership("cam02", lost)
    snap, actions = dry_pass(config, emu, planned)
    assert snap.whole_collections == frozenset() and lost in snap.contents and len(snap.files) == 2
    assert actions == Counter(Upload=1, AddToCollection=1)

    # A membership no file backs (a remove that failed after a move): both collections the
    # content is in or under are decided whole, without their other 200 members (none of
    # which can leave), and only that membership is removed.
    moved = sha_of(config, "cam00/clip00007.mp4")
    with Catalog.open(config.state_dir) as catalog:
        catalog.add_membership("cam03", moved)
    snap, actions = dry_pass(config, emu, planned)
    assert snap.whole_collections == frozenset({"cam00", "cam03"}) == snap.occupied
    assert sorted(f.rel_path for f in snap.files) == ["cam00/clip00007.mp4", "cam01/new.mp4", "cam02/clip00205.mp4"]
    assert actions == Counter(Upload=1, AddToCollection=1, RemoveFromCollection=1)
    assert [(a.collection, a.sha256) for a in planned.actions if isinstance(a, RemoveFromCollection)] == [
        ("cam03", moved)]

    # A clip deleted from cam02: that clip's content, and cam02 decided whole (its 99 other
    # files keep it from being empty), not planned with its members.
    (drop / "cam02" / "clip00210.mp4").unlink()
    snap, actions = dry_pass(config, emu, planned)
    assert "cam02" in snap.whole_collections and "cam02" in snap.occupied
    assert len(snap.files) == 4 and not next(f for f in snap.files if f.rel_path == "cam02/clip00210.mp4").present
    assert actions == Counter(Upload=1, AddToCollection=1, RemoveFromCollection=2, DeleteRemote=1)
    deleted = sha_of(config, "cam02/clip00210.mp4")
    assert sorted((a.collection, a.sha256) for a in planned.actions if isinstance(a, RemoveFromCollection)) == sorted(
        [("cam03", moved), ("cam02", deleted)])


def test_a_failed_add_to_a_collection_is_tried_again_on_a_later_pass(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """The video is processed and at rest, but not in its collection: the next sync adds
    it (its content stays changed until a plan finds nothing left to do for it)."""
    tree(tmp_path, {"cam1/a.mp4": 1, "cam2/b.mp4": 2})
    config = write_config(tmp_path, emu.base_url, remote={"max_retries": 1})  # a 503 fails the add at once
    synced(config)
    write_random(tmp_path / "drop" / "cam1" / "late.mp4", 50_003, seed=3)
    cam1 = next(c["collection_id"] for c in admin.get("/collections").json() if c["name"] == "cam1")
    set_faults(admin, error_share=1.0, error_statuses=[503], path_glob=f"*/collections/{cam1}/videos")
    failed = run_syncd(config, "sync", "--wait", "--timeout", "10")
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "add-to-collection      failed" in failed.stdout, failed.stdout
    assert "still adding to collection" in failed.stderr, failed.stderr
    assert collections(admin)["cam1"] == ["cam1/a.mp4"]
    set_faults(admin)
    synced(config)
    assert collections(admin) == {"cam1": ["cam1/a.mp4", "cam1/late.mp4"], "cam2": ["cam2/b.mp4"]}


def test_a_pass_with_a_folder_not_read_keeps_its_changes_for_the_pass_after(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """A copy deleted from cam2 while another watched folder is unmounted: that pass
    removes nothing from any collection (the unread folder could hold members), so the
    content stays changed, and the first pass with the folder back removes the video
    from cam2. Had the pass recorded it as seen, no later pass would look at cam2 again."""
    drop = tree(tmp_path, {"cam1/a.mp4": 1, "cam2/b.mp4": 2})
    shutil.copyfile(drop / "cam1" / "a.mp4", drop / "cam2" / "a-copy.mp4")
    other = tmp_path / "other"
    write_random(other / "c.mp4", 50_003, seed=3)
    config = write_config(tmp_path, emu.base_url, [{"path": str(drop)}, {"path": str(other), "collections": "none"}])
    synced(config)
    assert collections(admin) == {"cam1": ["cam1/a.mp4"], "cam2": ["cam1/a.mp4", "cam2/b.mp4"]}

    other.rename(tmp_path / "unmounted")
    (drop / "cam2" / "a-copy.mp4").unlink()
    unmounted = run_syncd(config, "sync")
    assert str(other) in unmounted.stdout + unmounted.stderr
    assert collections(admin)["cam2"] == ["cam1/a.mp4", "cam2/b.mp4"]  # nothing removed this pass

    (tmp_path / "unmounted").rename(other)
    synced(config)
    assert collections(admin) == {"cam1": ["cam1/a.mp4"], "cam2": ["cam2/b.mp4"]}


def test_a_first_sync_with_collection_folders_is_planned_a_slice_at_a_time(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first sync of a tree whose subfolders are collections plans its new contents a
    slice (``EngineOptions.batch``) at a time, as without collections (a whole plan of a
    million new files was ~2.4 GB): no plan sees more than a slice of files, each content
    is uploaded once, each collection created once, and the passes after it, each a slice
    at a time as well, add every video to its subfolder's collection."""
    batch = 10
    spec = {f"cam{i % 3}/clip{i:02d}.mp4": i + 1 for i in range(36)}
    tree(tmp_path, spec)
    config = load_config(write_config(tmp_path, emu.base_url), {"SYNCD_TEST_KEY": KEY})
    options = dataclasses.replace(EngineOptions.from_config(config), batch=batch)
    planned = Planned(monkeypatch)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        first = Engine(options, catalog, remote).run_pass(with_listing=True)
        assert first.result.failed == [] and len(planned.snapshots) == -(-len(spec) // batch)
        assert max(len(s.files) for s in planned.snapshots) <= batch, [len(s.files) for s in planned.snapshots]
        # New contents can only be added to a collection: no plan sees one whole, so no
        # plan can remove, rename or delete one.
        assert all(s.whole_collections == frozenset() for s in planned.snapshots)
        Engine(options, catalog, remote).sync(wait=True, timeout=60)
        # The passes after it (processing, pipelines, markers, adds) take the contents at
        # work a slice at a time too.
        assert len(planned.snapshots) > 4 and max(len(s.files) for s in planned.snapshots) <= batch
    assert sorted(v["name"] for v in admin_videos(admin)) == sorted(spec)  # each uploaded once
    names = [c["name"] for c in admin.get("/collections").json() if not c["name"].startswith("syncd-instance:")]
    assert sorted(names) == ["cam0", "cam1", "cam2"]  # each created once
    assert collections(admin) == {f"cam{k}": sorted(p for p in spec if p.startswith(f"cam{k}/")) for k in range(3)}


def test_collection_folders_switched_on_add_every_video_a_slice_at_a_time(
        tmp_path: Path, emu: Emulator, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A synced tree whose folder becomes a collection folder: the catalog's rows say
    nothing of what that asks for, so every content of the folder counts as changed, and
    the passes after it run the collection pipelines and add every video to its
    subfolder's collection, a slice at a time (it was one plan of the whole catalog)."""
    spec = {f"cam{i % 3}/clip{i:02d}.mp4": i + 1 for i in range(24)}
    drop = tree(tmp_path, spec)
    folder = {"path": str(drop), "collections": "none", "pipelines": []}
    synced(write_config(tmp_path, emu.base_url, [folder]))
    assert collections(admin) == {}
    config = load_config(write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "subfolder"}]),
                         {"SYNCD_TEST_KEY": KEY})
    batch = 5
    options = dataclasses.replace(EngineOptions.from_config(config), batch=batch)
    planned = Planned(monkeypatch)
    with Catalog.open(config.state_dir) as catalog, MikshiClient(emu.base_url, KEY, retry=FAST_RETRY) as remote:
        outcome = Engine(options, catalog, remote).sync(wait=True, timeout=60)
        assert not outcome.timed_out and outcome.failures == []
    assert max(len(s.files) for s in planned.snapshots) <= batch
    assert collections(admin) == {f"cam{k}": sorted(p for p in spec if p.startswith(f"cam{k}/")) for k in range(3)}


def test_collections_switched_off_everywhere_leave_the_remote_collections_as_they_are(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """With no collection folder left, syncd changes no collection: what is on the remote
    stays, with its members, even with ``remove_empty_collections`` (the code before
    deleted every known collection at the first pass, and took out of its collection any
    video it happened to plan). A video deleted locally still goes, with its memberships."""
    spec = {f"cam{i % 3}/clip{i:02d}.mp4": i + 1 for i in range(9)}
    drop = tree(tmp_path, spec)
    synced(write_config(tmp_path, emu.base_url, [{"path": str(drop), "remove_empty_collections": True}]))
    before = collections(admin)
    assert before == {f"cam{k}": sorted(p for p in spec if p.startswith(f"cam{k}/")) for k in range(3)}
    off = write_config(tmp_path, emu.base_url, [{"path": str(drop), "collections": "none", "pipelines": [],
                                                  "remove_empty_collections": True}])
    synced(off)
    assert collections(admin) == before
    (drop / "cam1" / "clip04.mp4").unlink()
    synced(off)
    assert collections(admin) == {**before, "cam1": [p for p in before["cam1"] if p != "cam1/clip04.mp4"]}
    assert "cam1/clip04.mp4" not in {v["name"] for v in admin_videos(admin)}


def test_a_folder_switched_off_beside_a_collection_folder_takes_its_videos_out(
        tmp_path: Path, emu: Emulator, admin: httpx.Client) -> None:
    """While a collection folder is left, collections hold what collection folders hold:
    the videos of a folder switched to ``collections: none`` leave their collections, the
    others stay, and an emptied collection is kept (no ``remove_empty_collections``)."""
    drop = tree(tmp_path, {"cam0/a.mp4": 1, "cam1/b.mp4": 2})
    other = tree(tmp_path / "o", {"cam1/c.mp4": 3, "cam2/d.mp4": 4})
    synced(write_config(tmp_path, emu.base_url, [{"path": str(drop)}, {"path": str(other)}]))
    assert collections(admin) == {"cam0": ["cam0/a.mp4"], "cam1": ["cam1/b.mp4", "cam1/c.mp4"],
                                  "cam2": ["cam2/d.mp4"]}
    synced(write_config(tmp_path, emu.base_url, [{"path": str(drop)}, {"path": str(other), "collections": "none"}]))
    assert collections(admin) == {"cam0": ["cam0/a.mp4"], "cam1": ["cam1/b.mp4"], "cam2": []}
