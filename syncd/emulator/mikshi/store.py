"""All persistent state: one SQLite database (WAL) plus blob files under ``data_dir``.

Layout::

    data_dir/emulator.sqlite3     records (never API keys: users are stored by derived id)
    data_dir/secret.key           HMAC secret for pre-signed URLs (created on first start)
    data_dir/blobs/objects/*.bin  completed objects (one file per S3 object)
    data_dir/blobs/parts/<upload_id>/<n>.part   multipart parts
    data_dir/tmp/                 bodies being received; renamed into place when complete

Every public method takes the store lock, so handlers may call them from any thread.
Callers doing read-check-write sequences hold ``store.lock`` (re-entrant) around them.
Bulk byte work (streaming parts, concatenating) happens outside the lock; only the
final rename + row change happens inside, so a slow upload never blocks other requests.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    credits INTEGER,                 -- NULL = unlimited
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    object_name TEXT NOT NULL,
    video_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,              -- quoted, as S3 sends it
    uploaded_at REAL NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE IF NOT EXISTS objects (
    object_name TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    video_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    etag TEXT NOT NULL,
    blob TEXT NOT NULL,              -- path relative to data_dir
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS videos (
    video_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    object_name TEXT NOT NULL,
    source TEXT NOT NULL,            -- multipart | direct | youtube
    use_dynamic_hls INTEGER NOT NULL,
    created_at REAL NOT NULL,
    duration_seconds REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    probed INTEGER NOT NULL,         -- 1 when PyAV read real metadata
    processing_started_at REAL NOT NULL,
    processing_seconds REAL NOT NULL,
    segment_seconds REAL NOT NULL,
    fail_pipeline TEXT,              -- upload pipeline doomed to fail, if any
    fail_error TEXT
);
DROP INDEX IF EXISTS videos_user;
-- The listing order (created_at, then video_id): a page is an index range, never a sort.
CREATE INDEX IF NOT EXISTS videos_user_order ON videos (user_id, created_at, video_id);
-- Bumped by every change to which videos exist or their order, so a remembered position in
-- the listing (PageMarks) is known stale by whichever connection made the change.
CREATE TABLE IF NOT EXISTS videos_generation (n INTEGER NOT NULL);
INSERT INTO videos_generation (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM videos_generation);
CREATE TRIGGER IF NOT EXISTS videos_generation_insert AFTER INSERT ON videos
    BEGIN UPDATE videos_generation SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS videos_generation_delete AFTER DELETE ON videos
    BEGIN UPDATE videos_generation SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS videos_generation_update AFTER UPDATE OF user_id, created_at, video_id ON videos
    BEGIN UPDATE videos_generation SET n = n + 1; END;
CREATE TABLE IF NOT EXISTS pipeline_runs (
    video_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,          -- analyse | search-process
    attempt INTEGER NOT NULL,
    started_at REAL NOT NULL,
    seconds REAL NOT NULL,
    fails INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (video_id, pipeline)
);
CREATE TABLE IF NOT EXISTS collections (
    collection_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    created_at REAL NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE IF NOT EXISTS collection_videos (
    collection_id TEXT NOT NULL,
    video_id TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (collection_id, video_id)
);
CREATE INDEX IF NOT EXISTS collection_videos_video ON collection_videos (video_id);
"""


class Duplicate(Exception):
    """A uniqueness constraint refused the write."""


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    credits: int | None
    created_at: float


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    user_id: str
    object_name: str
    video_id: str
    filename: str
    content_type: str
    created_at: float


@dataclass(frozen=True)
class PartRecord:
    upload_id: str
    part_number: int
    size: int
    etag: str
    uploaded_at: float


@dataclass(frozen=True)
class ObjectRecord:
    object_name: str
    user_id: str
    video_id: str
    size: int
    sha256: str
    etag: str
    blob: str
    created_at: float


@dataclass(frozen=True)
class VideoRecord:
    video_id: str
    user_id: str
    name: str
    object_name: str
    source: str
    use_dynamic_hls: bool
    created_at: float
    duration_seconds: float
    width: int
    height: int
    probed: bool
    processing_started_at: float
    processing_seconds: float
    segment_seconds: float
    fail_pipeline: str | None
    fail_error: str | None


@dataclass(frozen=True)
class RunRecord:
    video_id: str
    pipeline: str
    attempt: int
    started_at: float
    seconds: float
    fails: bool
    error: str | None


@dataclass(frozen=True)
class CollectionRecord:
    collection_id: str
    user_id: str
    name: str
    description: str | None
    created_at: float


def _row_to(cls: type[T], row: sqlite3.Row) -> T:
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = row[f.name]
        if f.type in ("bool",):
            value = bool(value)
        values[f.name] = value
    return cls(**values)


def _insert_sql(table: str, record: Any) -> tuple[str, list[Any]]:
    names = [f.name for f in fields(record)]
    values = [int(v) if isinstance(v, bool) else v for v in (getattr(record, n) for n in names)]
    return (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            values)


class PageMarks:
    """Where recent listing walks got to: (walk, position) -> the key of the row just before
    that position, valid for one generation of the videos table. Bounded: a few walks, a
    few thousand positions each (a million videos is 10,000 pages; the nearest earlier
    mark still saves most of an offset)."""

    WALKS = 16
    PER_WALK = 4096

    def __init__(self) -> None:
        self._generation = -1
        self._walks: dict[Hashable, dict[int, tuple[float, str]]] = {}

    def nearest(self, generation: int, walk: Hashable, skip: int) -> tuple[int, tuple[float, str]] | None:
        """The mark at ``skip`` or the nearest before it, if any is still valid."""
        if generation != self._generation:
            self._generation, self._walks = generation, {}
            return None
        marks = self._walks.get(walk)
        if not marks or skip <= 0:
            return None
        if skip in marks:
            return skip, marks[skip]
        earlier = [p for p in marks if p < skip]
        return (max(earlier), marks[max(earlier)]) if earlier else None

    def remember(self, generation: int, walk: Hashable, position: int, key: tuple[float, str]) -> None:
        if generation != self._generation:
            self._generation, self._walks = generation, {}
        marks = self._walks.pop(walk, {})  # re-inserted last: the dict is kept in LRU order
        if len(marks) >= self.PER_WALK:
            marks.pop(next(iter(marks)))
        marks[position] = key
        self._walks[walk] = marks
        while len(self._walks) > self.WALKS:
            self._walks.pop(next(iter(self._walks)))


class Store:
    """SQLite records + blob files for one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.tmp_dir = self.data_dir / "tmp"
        self._objects_dir = self.data_dir / "blobs" / "objects"
        self._parts_dir = self.data_dir / "blobs" / "parts"
        for d in (self.tmp_dir, self._objects_dir, self._parts_dir):
            d.mkdir(parents=True, exist_ok=True)
        # Leftovers of bodies cut off by a crash or stop are garbage.
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
        self.db_path = self.data_dir / "emulator.sqlite3"
        self.lock = threading.RLock()
        self._depth = 0
        self._marks = PageMarks()
        self._conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=OFF")
        self._conn.executescript(_SCHEMA)
        self.secret = self._load_secret()

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def _load_secret(self) -> bytes:
        path = self.data_dir / "secret.key"
        if not path.exists():
            tmp = self.tmp_dir / f"secret-{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            os.replace(tmp, path)
        return path.read_bytes()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction per outermost call; nested calls join it."""
        with self.lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    def _one(self, cls: type[T], sql: str, args: tuple[Any, ...] = ()) -> T | None:
        with self.lock:
            row = self._conn.execute(sql, args).fetchone()
        return None if row is None else _row_to(cls, row)

    def _all(self, cls: type[T], sql: str, args: tuple[Any, ...] = ()) -> list[T]:
        with self.lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_row_to(cls, r) for r in rows]

    # -- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- files ---------------------------------------------------------------------------

    def new_tmp_path(self, prefix: str = "body") -> Path:
        return self.tmp_dir / f"{prefix}-{uuid.uuid4().hex}"

    def part_path(self, upload_id: str, part_number: int) -> Path:
        return self._parts_dir / upload_id / f"{part_number:05d}.part"

    def blob_path(self, obj: ObjectRecord) -> Path:
        return self.data_dir / obj.blob

    # -- users ---------------------------------------------------------------------------

    def ensure_user(self, user_id: str, credits: int | None, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO users (user_id, credits, created_at) VALUES (?,?,?)",
                       (user_id, credits, now))

    def list_users(self) -> list[UserRecord]:
        return self._all(UserRecord, "SELECT * FROM users ORDER BY created_at, user_id")

    def set_credits(self, user_id: str, credits: int | None, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO users (user_id, credits, created_at) VALUES (?,?,?) "
                       "ON CONFLICT(user_id) DO UPDATE SET credits = excluded.credits",
                       (user_id, credits, now))

    def charge(self, user_id: str) -> bool:
        """Take one credit; False when the user has none left (unlimited users always pay)."""
        with self._tx() as db:
            cur = db.execute("UPDATE users SET credits = credits - 1 "
                             "WHERE user_id = ? AND credits IS NOT NULL AND credits > 0",
                             (user_id,))
            if cur.rowcount:
                return True
            row = db.execute("SELECT credits FROM users WHERE user_id = ?", (user_id,)).fetchone()
            return row is None or row["credits"] is None

    def refund(self, user_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE users SET credits = credits + 1 "
                       "WHERE user_id = ? AND credits IS NOT NULL", (user_id,))

    # -- multipart uploads ---------------------------------------------------------------

    def create_upload(self, rec: UploadRecord) -> None:
        sql, args = _insert_sql("uploads", rec)
        with self._tx() as db:
            db.execute(sql, args)

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        return self._one(UploadRecord, "SELECT * FROM uploads WHERE upload_id = ?", (upload_id,))

    def list_uploads(self) -> list[UploadRecord]:
        return self._all(UploadRecord, "SELECT * FROM uploads ORDER BY created_at, upload_id")

    def list_parts(self, upload_id: str) -> list[PartRecord]:
        return self._all(PartRecord, "SELECT * FROM parts WHERE upload_id = ? ORDER BY part_number",
                         (upload_id,))

    def put_part(self, rec: PartRecord, received: Path) -> bool:
        """Move a fully received part into place (replacing an earlier one).

        False (and the file is dropped) when the upload was completed or aborted meanwhile.
        """
        with self._tx() as db:
            if db.execute("SELECT 1 FROM uploads WHERE upload_id = ?",
                          (rec.upload_id,)).fetchone() is None:
                received.unlink(missing_ok=True)
                return False
            final = self.part_path(rec.upload_id, rec.part_number)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(received, final)
            db.execute("INSERT OR REPLACE INTO parts (upload_id, part_number, size, etag, "
                       "uploaded_at) VALUES (?,?,?,?,?)",
                       (rec.upload_id, rec.part_number, rec.size, rec.etag, rec.uploaded_at))
            return True

    def delete_upload(self, upload_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
            db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            shutil.rmtree(self._parts_dir / upload_id, ignore_errors=True)
            return cur.rowcount > 0

    def finish_upload(self, upload_id: str, used: list[PartRecord], obj: ObjectRecord,
                      assembled: Path) -> bool:
        """Turn an upload into an object, if its parts are still exactly ``used``.

        False when the upload vanished or a used part was replaced while assembling.
        """
        with self._tx() as db:
            if db.execute("SELECT 1 FROM uploads WHERE upload_id = ?",
                          (upload_id,)).fetchone() is None:
                return False
            current = {p.part_number: p.etag for p in self.list_parts(upload_id)}
            if any(current.get(p.part_number) != p.etag for p in used):
                return False
            self._put_object(db, obj, assembled)
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
            db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
            shutil.rmtree(self._parts_dir / upload_id, ignore_errors=True)
            return True

    # -- objects -------------------------------------------------------------------------

    def new_blob_name(self) -> str:
        return str(Path("blobs") / "objects" / f"{uuid.uuid4().hex}.bin")

    def _put_object(self, db: sqlite3.Connection, obj: ObjectRecord, received: Path) -> None:
        old = db.execute("SELECT blob FROM objects WHERE object_name = ?",
                         (obj.object_name,)).fetchone()
        os.replace(received, self.data_dir / obj.blob)
        db.execute("DELETE FROM objects WHERE object_name = ?", (obj.object_name,))
        sql, args = _insert_sql("objects", obj)
        db.execute(sql, args)
        if old is not None and old["blob"] != obj.blob:
            (self.data_dir / old["blob"]).unlink(missing_ok=True)

    def put_object(self, obj: ObjectRecord, received: Path) -> None:
        with self._tx() as db:
            self._put_object(db, obj, received)

    def get_object(self, object_name: str) -> ObjectRecord | None:
        return self._one(ObjectRecord, "SELECT * FROM objects WHERE object_name = ?",
                         (object_name,))

    def open_object(self, object_name: str) -> tuple[ObjectRecord, BinaryIO] | None:
        """The object and its bytes open for reading; None if unknown (or deleted between
        the lookup and the open)."""
        obj = self.get_object(object_name)
        if obj is None:
            return None
        try:
            return obj, self.blob_path(obj).open("rb")
        except FileNotFoundError:
            return None

    def list_objects(self) -> list[ObjectRecord]:
        return self._all(ObjectRecord, "SELECT * FROM objects ORDER BY created_at, object_name")

    # -- videos --------------------------------------------------------------------------

    def insert_video(self, rec: VideoRecord) -> None:
        sql, args = _insert_sql("videos", rec)
        try:
            with self._tx() as db:
                db.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            raise Duplicate(rec.video_id) from exc

    def register_videos(self, items: list[tuple[ObjectRecord, VideoRecord]], runs: list[RunRecord],
                        received: list[Path] | None = None) -> None:
        """Many finished videos in one transaction (admin ``videos/register``: a benchmark
        reaches "everything synced" without uploading a million files); ``received``: each
        object's bytes, moved into place as an upload's are (None: rows only, for tests of
        the store's own queries)."""
        with self._tx() as db:
            for (obj, _), path in zip(items, received or [], strict=received is not None):
                os.replace(path, self.data_dir / obj.blob)
            for table, rows in (("objects", [o for o, _ in items]), ("videos", [v for _, v in items]),
                                ("pipeline_runs", runs)):
                if rows:
                    sql, _ = _insert_sql(table, rows[0])
                    db.executemany(sql, [_insert_sql(table, r)[1] for r in rows])

    def get_video(self, video_id: str) -> VideoRecord | None:
        return self._one(VideoRecord, "SELECT * FROM videos WHERE video_id = ?", (video_id,))

    def list_videos(self, user_id: str | None = None) -> list[VideoRecord]:
        if user_id is None:
            return self._all(VideoRecord, "SELECT * FROM videos ORDER BY created_at, video_id")
        return self._all(VideoRecord, "SELECT * FROM videos WHERE user_id = ? "
                         "ORDER BY created_at, video_id", (user_id,))

    def page_videos(self, user_id: str, *, skip: int, limit: int, descending: bool,
                    start: float | None = None, end: float | None = None) -> list[VideoRecord]:
        """One page by created_at (then video_id), filtered by created_at.

        ``skip`` is an offset, which SQLite can only count off row by row; so the position
        after each page served is remembered (``PageMarks``) and the next page of a walk
        starts from its key: a page costs its own rows, not the ``skip`` before it, and a
        walk over a million videos is linear. Same rows as a plain ``OFFSET``, always.
        """
        order, before = ("DESC", "<") if descending else ("ASC", ">")
        low = float("-inf") if start is None else start
        high = float("inf") if end is None else end
        walk = (user_id, descending, low, high)
        with self.lock:
            generation = int(self._conn.execute("SELECT n FROM videos_generation").fetchone()[0])
            mark = self._marks.nearest(generation, walk, skip)
            sql = "SELECT * FROM videos WHERE user_id = ? "
            args: tuple[Any, ...] = (user_id,)
            offset = skip
            if mark is not None:  # first in the WHERE: SQLite then seeks the index to the key
                position, key = mark
                sql += f"AND (created_at, video_id) {before} (?, ?) "
                args, offset = (*args, *key), skip - position
            rows = self._conn.execute(
                sql + f"AND created_at >= ? AND created_at <= ? ORDER BY created_at {order}, video_id {order} "
                "LIMIT ? OFFSET ?", (*args, low, high, limit, offset)).fetchall()
            if rows:
                self._marks.remember(generation, walk, skip + len(rows),
                                     (rows[-1]["created_at"], rows[-1]["video_id"]))
        return [_row_to(VideoRecord, r) for r in rows]

    def get_videos(self, video_ids: list[str]) -> dict[str, VideoRecord]:
        found: dict[str, VideoRecord] = {}
        for vid in video_ids:
            rec = self.get_video(vid)
            if rec is not None:
                found[vid] = rec
        return found

    def rename_video(self, video_id: str, name: str) -> bool:
        with self._tx() as db:
            return db.execute("UPDATE videos SET name = ? WHERE video_id = ?", (name, video_id)).rowcount > 0

    def delete_video(self, video_id: str) -> bool:
        """Remove a video and everything derived: object + blob, runs, collection links."""
        with self._tx() as db:
            row = db.execute("SELECT object_name FROM videos WHERE video_id = ?",
                             (video_id,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM videos WHERE video_id = ?", (video_id,))
            db.execute("DELETE FROM pipeline_runs WHERE video_id = ?", (video_id,))
            db.execute("DELETE FROM collection_videos WHERE video_id = ?", (video_id,))
            obj = db.execute("SELECT blob FROM objects WHERE object_name = ?",
                             (row["object_name"],)).fetchone()
            db.execute("DELETE FROM objects WHERE object_name = ?", (row["object_name"],))
            if obj is not None:
                (self.data_dir / obj["blob"]).unlink(missing_ok=True)
            return True

    # -- pipeline runs -------------------------------------------------------------------

    def get_run(self, video_id: str, pipeline: str) -> RunRecord | None:
        return self._one(RunRecord, "SELECT * FROM pipeline_runs WHERE video_id = ? AND "
                         "pipeline = ?", (video_id, pipeline))

    def put_run(self, rec: RunRecord) -> None:
        sql, args = _insert_sql("pipeline_runs", rec)
        with self._tx() as db:
            db.execute(sql.replace("INSERT", "INSERT OR REPLACE", 1), args)

    def runs_of(self, video_ids: list[str]) -> dict[tuple[str, str], RunRecord]:
        """The pipeline runs of some videos (one listing page), not of every video."""
        runs = self._all(RunRecord, "SELECT * FROM pipeline_runs WHERE video_id IN "
                         "(SELECT value FROM json_each(?))", (json.dumps(video_ids),))
        return {(r.video_id, r.pipeline): r for r in runs}

    def runs_by_video(self, user_id: str | None = None) -> dict[tuple[str, str], RunRecord]:
        if user_id is None:
            runs = self._all(RunRecord, "SELECT * FROM pipeline_runs")
        else:
            runs = self._all(RunRecord, "SELECT r.* FROM pipeline_runs r JOIN videos v "
                             "ON v.video_id = r.video_id WHERE v.user_id = ?", (user_id,))
        return {(r.video_id, r.pipeline): r for r in runs}

    # -- collections ---------------------------------------------------------------------

    def create_collection(self, rec: CollectionRecord) -> None:
        sql, args = _insert_sql("collections", rec)
        try:
            with self._tx() as db:
                db.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            raise Duplicate(rec.name) from exc

    def get_collection(self, collection_id: str) -> CollectionRecord | None:
        return self._one(CollectionRecord, "SELECT * FROM collections WHERE collection_id = ?",
                         (collection_id,))

    def list_collections(self, user_id: str | None = None) -> list[CollectionRecord]:
        if user_id is None:
            return self._all(CollectionRecord, "SELECT * FROM collections "
                             "ORDER BY created_at, collection_id")
        return self._all(CollectionRecord, "SELECT * FROM collections WHERE user_id = ? "
                         "ORDER BY created_at DESC, collection_id", (user_id,))

    def update_collection(self, collection_id: str, changes: Mapping[str, str | None]) -> None:
        allowed = {k: v for k, v in changes.items() if k in ("name", "description")}
        if not allowed:
            return
        sets = ", ".join(f"{k} = ?" for k in allowed)
        try:
            with self._tx() as db:
                db.execute(f"UPDATE collections SET {sets} WHERE collection_id = ?",
                           [*allowed.values(), collection_id])
        except sqlite3.IntegrityError as exc:
            raise Duplicate(str(allowed.get("name"))) from exc

    def delete_collection(self, collection_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM collections WHERE collection_id = ?", (collection_id,))
            db.execute("DELETE FROM collection_videos WHERE collection_id = ?", (collection_id,))
            return cur.rowcount > 0

    def add_link(self, collection_id: str, video_id: str, now: float) -> None:
        try:
            with self._tx() as db:
                db.execute("INSERT INTO collection_videos (collection_id, video_id, added_at) "
                           "VALUES (?,?,?)", (collection_id, video_id, now))
        except sqlite3.IntegrityError as exc:
            raise Duplicate(video_id) from exc

    def remove_link(self, collection_id: str, video_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM collection_videos WHERE collection_id = ? AND "
                             "video_id = ?", (collection_id, video_id))
            return cur.rowcount > 0

    def collection_video_ids(self, collection_id: str) -> list[str]:
        """Members, most recently added first."""
        with self.lock:
            rows = self._conn.execute("SELECT video_id FROM collection_videos WHERE "
                                      "collection_id = ? ORDER BY added_at DESC, video_id",
                                      (collection_id,)).fetchall()
        return [r["video_id"] for r in rows]

    def collections_of_video(self, video_id: str) -> list[str]:
        with self.lock:
            rows = self._conn.execute("SELECT collection_id FROM collection_videos WHERE "
                                      "video_id = ? ORDER BY added_at", (video_id,)).fetchall()
        return [r["collection_id"] for r in rows]

    def videos_in_any_collection(self) -> set[str]:
        with self.lock:
            rows = self._conn.execute("SELECT DISTINCT video_id FROM collection_videos").fetchall()
        return {r["video_id"] for r in rows}
