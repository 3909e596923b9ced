"""The planner, scenario by scenario, without HTTP or disk."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from syncd.models import (
    AbortUpload,
    AddToCollection,
    CollectionRecord,
    ContentRecord,
    CreateCollection,
    DeleteRemote,
    FileRecord,
    ForgetFile,
    LinkVideo,
    MarkVideo,
    RemoteDeleted,
    RemoveFromCollection,
    RenameCollection,
    StartPipeline,
    StepRecord,
    Superseded,
    UnknownFile,
    UnlinkVideo,
    Upload,
    UploadRecord,
)
from syncd.sync.planner import Adoptable, FolderPolicy, RemoteView, Settings, Snapshot, plan
from syncd.remote.facts import MIKSHI

DROP = Path("/data/drop")
CAM = Path("/data/cam")
NOW = 1_000_000.0


def policy(path: Path = DROP, **kw: object) -> FolderPolicy:
    base = dict(path=path, scan_ok=True, collections=True, pipelines=("analyse", "search-process"),
                delete_remote=True, on_remote_delete="trash",
                processing_steps=MIKSHI.processing_steps, collection_pipelines=MIKSHI.collection_pipelines)
    base.update(kw)
    return FolderPolicy(**base)  # type: ignore[arg-type]


def file(rel: str, sha: str, folder: Path = DROP, present: bool = True, missing_since: float | None = None) -> FileRecord:
    return FileRecord(folder, rel, 100, 1, 1, sha, present, NOW - 100, NOW, missing_since)


DONE = {n: StepRecord(n, "done") for n in ("thumbnail", "transcoding", "hls", "analyse", "search-process")}


def content(sha: str, state: str = "uploaded", video: str | None = "auto", steps: dict | None = None, **kw: object) -> ContentRecord:
    vid = f"vid-{sha}" if video == "auto" else video
    return ContentRecord(sha, 100, state, vid if state == "uploaded" else None, steps=steps if steps is not None else {}, **kw)  # type: ignore[arg-type]


def snap(files=(), contents=(), folders=(policy(),), uploads=(), collections=(), memberships=(), remote=None, **kw) -> Snapshot:  # type: ignore[no-untyped-def]
    return Snapshot(
        folders=tuple(folders), files=tuple(files), contents={c.sha256: c for c in contents},
        uploads=tuple(uploads), collections=tuple(collections), memberships=frozenset(memberships),
        remote=remote, now=NOW, **kw,
    )


def kinds(p) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.kind for a in p.actions]


# ----------------------------------------------------------------- uploads
def test_new_content_is_uploaded_once_even_with_two_copies() -> None:
    p = plan(snap([file("a.mp4", "s1"), file("b/a-copy.mp4", "s1")], [content("s1", "new")]), Settings())
    uploads = p.of(Upload)
    assert len(uploads) == 1 and uploads[0].name == "a.mp4"


def test_known_content_is_not_uploaded_again() -> None:
    p = plan(snap([file("x.mp4", "s1")], [content("s1", steps=DONE)], folders=[policy(collections=False)]), Settings())
    assert p.of(Upload) == []


def test_interrupted_upload_resumes_and_failed_upload_waits_for_backoff() -> None:
    up = UploadRecord("u1", "s1", "token", 5 << 20, False)
    p = plan(snap([file("a.mp4", "s1")], [content("s1", "uploading")], uploads=[up]), Settings())
    assert kinds(p) == ["Upload"]
    later = content("s1", "failed", attempts=1, next_attempt_at=NOW + 60)
    waiting = plan(snap([file("a.mp4", "s1")], [later]), Settings())
    assert waiting.of(Upload) == [] and waiting.revisit_at == NOW + 60  # the same inputs plan otherwise then
    exhausted = content("s1", "failed", attempts=5)
    given_up = plan(snap([file("a.mp4", "s1")], [exhausted]), Settings(max_attempts=5))
    assert given_up.of(Upload) == [] and given_up.revisit_at is None  # only a change of input can help


def test_failed_processing_reuploads_replacing_the_failed_video() -> None:
    steps = {"transcoding": StepRecord("transcoding", "failed", error="bad codec")}
    c = content("s1", steps=steps, attempts=1)
    (up,) = plan(snap([file("a.mp4", "s1")], [c]), Settings()).of(Upload)
    assert up.replaces_video == "vid-s1"


def test_tombstoned_content_is_never_uploaded_and_is_reported() -> None:
    p = plan(snap([file("a.mp4", "s1")], [content("s1", "remote_deleted")]), Settings())
    assert p.of(Upload) == [] and "syncd restore" in p.notes[0]


def test_unreadable_folder_uploads_nothing_and_deletes_nothing() -> None:
    bad = policy(scan_ok=False)
    files = [file("a.mp4", "s1"), file("b.mp4", "s2")]
    p = plan(snap(files, [content("s1", "new"), content("s2", steps=DONE)], folders=[bad],
                  remote=RemoteView(frozenset())), Settings())
    assert p.actions == []


def test_catalog_recovery_links_only_proved_videos_and_uploads_the_rest() -> None:
    """Names pick candidates; only a video the engine proved to hold the bytes is linked.
    Same-named videos that proved nothing (b.mp4) do not stop its upload."""
    remote = RemoteView(frozenset({"r1", "r2", "r3", "r4"}))
    s = snap([file("a.mp4", "s1"), file("b.mp4", "s2"), file("c.mp4", "s3")],
             [content("s1", "new"), content("s2", "new"), content("s3", "new")], remote=remote,
             adoptable={f"{DROP}\0a.mp4": Adoptable("r1", True, "S3 ETag"),
                        f"{DROP}\0c.mp4": Adoptable("r4", False, "S3 ETag")})
    p = plan(s, Settings(adopt_remote=True))
    assert [(a.video_id, a.owned) for a in p.of(LinkVideo)] == [("r1", True), ("r4", False)]
    assert [a.name for a in p.of(Upload)] == ["b.mp4"]


def test_a_new_catalog_uploads_nothing_before_a_listing() -> None:
    s = snap([file("a.mp4", "s1")], [content("s1", "new")], remote=None)
    assert plan(s, Settings(adopt_remote=True)).of(Upload) == []


def test_a_local_deletion_deletes_only_what_this_instance_owns_alone() -> None:
    gone = [file("a.mp4", "s1", present=False, missing_since=NOW - 60)]
    mine = content("s1", steps=DONE)
    for marks, owned, expect in (
        ({"vid-s1": frozenset({"me"})}, True, "DeleteRemote"),
        ({}, True, "DeleteRemote"),
        (None, True, "DeleteRemote"),  # not read yet: the engine reads them and plans again
        ({"vid-s1": frozenset({"me", "other"})}, True, "UnlinkVideo"),
        ({}, False, "UnlinkVideo"),
    ):
        p = plan(snap(gone, [replace(mine, owned=owned)], instance="me", marks=marks), Settings())
        assert kinds(p) == [expect], (marks, owned)
    held = plan(snap(gone, [replace(mine, owned=False)], instance="me"), Settings()).of(UnlinkVideo)
    assert "another syncd instance uploaded it" in held[0].describe()
    unreadable = plan(snap(gone, [mine], instance="me", marks_error="timeout"), Settings())
    assert unreadable.actions == [] and "timeout" in unreadable.notes[0]


def test_own_videos_are_marked_once_fully_processed() -> None:
    files = [file("a.mp4", "s1"), file("b.mp4", "s2"), file("c.mp4", "s3"), file("d.mp4", "s4")]
    contents = [content("s1", steps=DONE), content("s2", steps=DONE, marked=True),
                content("s3", steps=DONE, owned=False), content("s4")]
    p = plan(snap(files, contents, memberships={("x", "s1")}), Settings(mark_videos=True))
    assert [a.sha256 for a in p.of(MarkVideo)] == ["s1"]
    assert plan(snap(files, contents), Settings()).of(MarkVideo) == []


# --------------------------------------------------------------- pipelines
def test_pipelines_start_after_transcoding_and_failed_ones_retry_within_limits() -> None:
    processed = {n: StepRecord(n, "done") for n in ("thumbnail", "transcoding", "hls")}
    p = plan(snap([file("a.mp4", "s1")], [content("s1", steps=processed)]), Settings())
    assert sorted(a.pipeline for a in p.of(StartPipeline)) == ["analyse", "search-process"]
    failing = dict(processed, analyse=StepRecord("analyse", "failed", attempts=1), **{"search-process": StepRecord("search-process", "running", attempts=1)})
    (retry,) = plan(snap([file("a.mp4", "s1")], [content("s1", steps=failing)]), Settings()).of(StartPipeline)
    assert retry.retry and retry.pipeline == "analyse"
    gave_up = dict(failing, analyse=StepRecord("analyse", "failed", attempts=5))
    assert plan(snap([file("a.mp4", "s1")], [content("s1", steps=gave_up)]), Settings()).of(StartPipeline) == []
    backing_off = dict(failing, analyse=StepRecord("analyse", "failed", attempts=2, next_attempt_at=NOW + 8))
    p = plan(snap([file("a.mp4", "s1")], [content("s1", steps=backing_off)]), Settings())
    assert p.of(StartPipeline) == [] and p.revisit_at == NOW + 8


def test_unprocessed_video_gets_no_pipeline() -> None:
    p = plan(snap([file("a.mp4", "s1")], [content("s1", steps={"transcoding": StepRecord("transcoding", "running")})]), Settings())
    assert p.of(StartPipeline) == []


# ------------------------------------------------------------- collections
def test_subfolders_become_collections_and_ready_videos_join() -> None:
    files = [file("cam1/a.mp4", "s1"), file("cam2/b.mp4", "s2"), file("top.mp4", "s3")]
    p = plan(snap(files, [content("s1", steps=DONE), content("s2"), content("s3", steps=DONE)]), Settings())
    assert [a.name for a in p.of(CreateCollection)] == ["cam1", "cam2"]
    assert [(a.collection, a.sha256) for a in p.of(AddToCollection)] == [("cam1", "s1")]  # s2 not processed


def test_move_between_subfolders_swaps_membership_without_upload() -> None:
    files = [file("cam2/a.mp4", "s1"), file("cam1/a.mp4", "s1", present=False, missing_since=NOW)]
    cols = [CollectionRecord("cam1", "c1"), CollectionRecord("cam2", "c2")]
    p = plan(snap(files, [content("s1", steps=DONE)], collections=cols, memberships={("cam1", "s1")}), Settings())
    assert p.of(Upload) == [] and p.of(DeleteRemote) == []
    assert [(a.collection) for a in p.of(AddToCollection)] == ["cam2"]
    assert [(a.collection) for a in p.of(RemoveFromCollection)] == ["cam1"]
    assert [a.rel_path for a in p.of(ForgetFile)] == ["cam1/a.mp4"]


def test_same_content_in_two_subfolders_is_in_both_collections() -> None:
    files = [file("cam1/a.mp4", "s1"), file("cam2/a.mp4", "s1")]
    p = plan(snap(files, [content("s1", steps=DONE)]), Settings())
    assert sorted(a.collection for a in p.of(AddToCollection)) == ["cam1", "cam2"]


def test_renamed_subfolder_renames_the_collection() -> None:
    files = [file("north/a.mp4", "s1"), file("north/b.mp4", "s2")]
    cols = [CollectionRecord("south", "c1")]
    p = plan(snap(files, [content("s1", steps=DONE), content("s2", steps=DONE)], collections=cols,
                  memberships={("south", "s1"), ("south", "s2")}), Settings())
    assert p.of(RenameCollection) == [RenameCollection("south", "north", "c1")]
    assert p.of(CreateCollection) == [] and p.of(AddToCollection) == [] and p.of(RemoveFromCollection) == []


# --------------------------------------------------------------- deletions
def test_last_local_copy_deleted_deletes_remote_but_a_move_does_not() -> None:
    gone = [file("a.mp4", "s1", present=False, missing_since=NOW), file("b.mp4", "s2"), file("c.mp4", "s3")]
    contents = [content(s, steps=DONE) for s in ("s1", "s2", "s3")]
    p = plan(snap(gone, contents, folders=[policy(collections=False)]), Settings())
    assert [a.video_id for a in p.of(DeleteRemote)] == ["vid-s1"]
    moved = [file("a.mp4", "s1", present=False, missing_since=NOW), file("sub/a.mp4", "s1")]
    p = plan(snap(moved, contents[:1], folders=[policy(collections=False)]), Settings())
    assert p.of(DeleteRemote) == [] and kinds(p) == ["ForgetFile"]


def test_delete_waits_for_grace_period_in_the_daemon() -> None:
    gone = [file("a.mp4", "s1", present=False, missing_since=NOW - 5), file("b.mp4", "s2"), file("c.mp4", "s3")]
    contents = [content(s, steps=DONE) for s in ("s1", "s2", "s3")]
    s = snap(gone, contents, folders=[policy(collections=False)])
    waiting = plan(s, Settings(delete_grace=30))
    assert waiting.of(DeleteRemote) == [] and waiting.revisit_at == NOW + 25
    assert len(plan(s, Settings(delete_grace=3)).of(DeleteRemote)) == 1


def test_delete_remote_false_only_forgets() -> None:
    gone = [file("a.mp4", "s1", present=False, missing_since=NOW), file("b.mp4", "s2")]
    p = plan(snap(gone, [content("s1"), content("s2")], folders=[policy(delete_remote=False, collections=False)]), Settings())
    assert p.of(DeleteRemote) == [] and [a.rel_path for a in p.of(ForgetFile)] == ["a.mp4"]


def test_deleted_file_with_open_upload_aborts_it() -> None:
    gone = [file("a.mp4", "s1", present=False, missing_since=NOW)]
    up = UploadRecord("u1", "s1", "token", 5 << 20, False)
    p = plan(snap(gone, [content("s1", "uploading")], uploads=[up]), Settings())
    assert p.of(AbortUpload) == [AbortUpload("u1", "s1", "local file deleted")]
    assert p.of(DeleteRemote) == []


def test_mass_local_delete_is_refused_whole() -> None:
    files = [file(f"{i}.mp4", f"s{i}", present=i >= 3, missing_since=NOW) for i in range(5)]
    contents = [content(f"s{i}", steps=DONE) for i in range(5)]
    s = snap(files, contents, folders=[policy(collections=False)])
    p = plan(s, Settings(max_delete_percent=50))
    assert p.of(DeleteRemote) == [] and "refusing to delete 3 of 5" in p.blocked[0]
    assert len(plan(s, Settings(max_delete_percent=50, allow_mass_delete=True)).of(DeleteRemote)) == 3
    assert len(plan(s, Settings(max_delete_percent=60)).of(DeleteRemote)) == 3


def test_remote_deletion_needs_a_complete_listing() -> None:
    files = [file("a.mp4", "s1"), file("b.mp4", "s2"), file("c.mp4", "s3")]
    contents = [content(s, steps=DONE) for s in ("s1", "s2", "s3")]
    folders = [policy(collections=False)]
    assert plan(snap(files, contents, folders=folders, remote=None), Settings()).actions == []
    listing = RemoteView(frozenset({"vid-s2", "vid-s3"}))
    (gone,) = plan(snap(files, contents, folders=folders, remote=listing), Settings()).of(RemoteDeleted)
    assert (gone.video_id, gone.rel_paths, gone.policy) == ("vid-s1", ("a.mp4",), "trash")


def test_remote_listing_that_lost_most_videos_is_refused() -> None:
    files = [file(f"{i}.mp4", f"s{i}") for i in range(4)]
    contents = [content(f"s{i}", steps=DONE) for i in range(4)]
    p = plan(snap(files, contents, folders=[policy(collections=False)], remote=RemoteView(frozenset())), Settings())
    assert p.of(RemoteDeleted) == [] and p.blocked


@pytest.mark.parametrize("on_delete", ["keep", "delete"])
def test_remote_deletion_policy_is_carried(on_delete: str) -> None:
    files = [file("a.mp4", "s1"), file("b.mp4", "s2"), file("c.mp4", "s3")]
    contents = [content(s, steps=DONE) for s in ("s1", "s2", "s3")]
    folders = [policy(collections=False, on_remote_delete=on_delete)]
    (gone,) = plan(snap(files, contents, folders=folders, remote=RemoteView(frozenset({"vid-s2", "vid-s3"}))), Settings()).of(RemoteDeleted)
    assert gone.policy == on_delete


def test_deleted_then_readded_content_is_uploaded_again() -> None:
    p = plan(snap([file("a.mp4", "s1")], [replace(content("s1", "deleted"), video_id=None)]), Settings())
    assert len(p.of(Upload)) == 1


# ------------------------------------------- a move is never a deletion (issue 11)
def unknown(rel: str, size: int = 100, inode: int = 99, folder: Path = DROP, settling: bool = True) -> UnknownFile:
    return UnknownFile(folder, rel, size, inode, settling)


def test_a_deletion_waits_while_an_unknown_file_could_hold_the_content() -> None:
    gone = [file("a.mp4", "s1", present=False, missing_since=NOW), file("b.mp4", "s2"), file("c.mp4", "s3")]
    contents = [content(s, steps=DONE) for s in ("s1", "s2", "s3")]
    folders = [policy(collections=False)]
    for could in (unknown("copy.mp4", size=100),  # a finished copy, not settled yet
                  unknown("copy.mp4", size=40),  # a copy still being written
                  unknown("x/a.mp4", size=300, inode=1),  # renamed (same inode), then appended to
                  unknown("a.mp4", size=300, settling=False),  # at the very path, not hashed yet
                  unknown("copy.mp4", folder=CAM, size=100)):  # in another watched folder
        p = plan(snap(gone, contents, folders=[*folders, policy(CAM, collections=False)], unknown=(could,)), Settings())
        assert p.of(DeleteRemote) == [], could
        (deferred,) = p.deferred
        assert deferred.waiting_for == (could.path,) and p.waiting_summary() == "1 deletion waits for 1 unsettled file"
        assert p.revisit_at == NOW + Settings().delete_wait
    for cannot in (unknown("big.mp4", size=300), unknown("done.mp4", size=40, settling=False)):
        p = plan(snap(gone, contents, folders=folders, unknown=(cannot,)), Settings())
        assert len(p.of(DeleteRemote)) == 1 and p.deferred == [], cannot


def test_the_wait_for_unknown_files_is_bounded() -> None:
    gone = [file("a.mp4", "s1", present=False, missing_since=NOW - 61), file("b.mp4", "s2"), file("c.mp4", "s3")]
    contents = [content(s, steps=DONE) for s in ("s1", "s2", "s3")]
    p = plan(snap(gone, contents, folders=[policy(collections=False)], unknown=(unknown("live.mp4", size=10),)),
             Settings(delete_wait=60))
    assert len(p.of(DeleteRemote)) == 1 and "waited safety.delete_wait" in p.notes[0]


def test_a_file_being_rewritten_keeps_its_old_content_but_starts_nothing_for_it() -> None:
    processed = {n: StepRecord(n, "done") for n in ("thumbnail", "transcoding", "hls")}
    files = [file("cam/a.mp4", "s1"), file("cam/b.mp4", "s2")]
    contents = [content("s1", steps=processed), content("s2", steps=DONE)]
    p = plan(snap(files, contents, collections=[CollectionRecord("cam", "c1")], memberships=[("cam", "s2")],
                  unknown=(unknown("cam/a.mp4", size=300, inode=1),)), Settings())
    assert p.actions == [] and p.settling == [DROP / "cam/a.mp4"]


def test_a_rewritten_path_supersedes_its_old_content() -> None:
    files = [file("a.mp4", "s2"), file("b.mp4", "s3"), file("c.mp4", "s4")]
    contents = [content(s, steps=DONE) for s in ("s1", "s2", "s3", "s4")]
    old = Superseded(DROP, "a.mp4", "s1", NOW)
    p = plan(snap(files, contents, folders=[policy(collections=False)], superseded=(old,)), Settings())
    (delete,) = p.of(DeleteRemote)
    assert delete.video_id == "vid-s1" and "rewritten" in delete.describe()
    # ...unless another file still holds it: then only the record of the old version goes.
    p = plan(snap([*files, file("keep.mp4", "s1")], contents, folders=[policy(collections=False)],
                  superseded=(old,)), Settings())
    assert p.of(DeleteRemote) == [] and p.of(ForgetFile) == [ForgetFile(DROP, "a.mp4", "moved", "s1")]
