"""Persistent state of the memories.ai emulator: one SQLite database plus video files.

    data_dir/memories.sqlite3     accounts, videos (with tombstones), tasks, streams
    data_dir/files/<blob>         stored videos, addressed by (bucket, blob) as the service does
    data_dir/tmp/                 upload bodies being received

Every method takes the store lock; nothing slow (file copies) happens while holding it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    credits INTEGER,                 -- NULL = unlimited
    disabled INTEGER NOT NULL DEFAULT 0,
    streams_enabled INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS videos (
    video_no TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    name TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    bucket TEXT NOT NULL,
    blob TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    visible_at REAL NOT NULL,        -- scraped videos appear while their task runs
    parse_seconds REAL NOT NULL,
    fail_cause TEXT,                 -- set when parsing is doomed to fail
    duration REAL NOT NULL,
    width INTEGER,
    height INTEGER,
    fps REAL,
    datetime_taken_ms INTEGER,
    camera_model TEXT,
    latitude REAL,
    longitude REAL,
    tags TEXT NOT NULL,              -- JSON list of the tags sent at upload, in order
    task_id TEXT,
    deleted_at REAL                  -- tombstone: a repeated delete answers 0409
);
CREATE INDEX IF NOT EXISTS videos_scope ON videos (account_id, unique_id, created_ms);
-- The unfiltered list_videos: its order, and what it filters on, in one covering index, so
-- total_count and a page's offset are index steps in C, never a Python object per video.
CREATE INDEX IF NOT EXISTS videos_listing
    ON videos (account_id, unique_id, created_ms, video_no, deleted_at, visible_at);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    urls TEXT NOT NULL,
    quality TEXT,
    callback_url TEXT
);
CREATE TABLE IF NOT EXISTS streams (
    task_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    url TEXT NOT NULL,
    options TEXT NOT NULL,
    started_at REAL NOT NULL,
    stopped_at REAL
);
"""


@dataclass(frozen=True)
class Account:
    account_id: str
    credits: int | None
    disabled: bool
    streams_enabled: bool


@dataclass(frozen=True)
class Video:
    video_no: str
    account_id: str
    unique_id: str
    name: str
    filename: str
    content_type: str
    size: int
    sha256: str
    bucket: str
    blob: str
    created_ms: int
    visible_at: float
    parse_seconds: float
    fail_cause: str | None
    duration: float
    width: int | None
    height: int | None
    fps: float | None
    datetime_taken_ms: int | None
    camera_model: str | None
    latitude: float | None
    longitude: float | None
    tags: str
    task_id: str | None
    deleted_at: float | None

    @property
    def user_tags(self) -> list[str]:
        return list(json.loads(self.tags))


@dataclass(frozen=True)
class Task:
    task_id: str
    account_id: str
    unique_id: str
    created_at: float
    urls: str
    quality: str | None
    callback_url: str | None


@dataclass(frozen=True)
class Stream:
    task_id: str
    account_id: str
    url: str
    options: str
    started_at: float
    stopped_at: float | None


def _row(cls: type[T], row: sqlite3.Row) -> T:
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = row[f.name]
        values[f.name] = bool(value) if f.type == "bool" else value
    return cls(**values)


class MemoriesStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.tmp_dir = self.data_dir / "tmp"
        self.files_dir = self.data_dir / "files"
        for d in (self.tmp_dir, self.files_dir):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(self.data_dir / "memories.sqlite3", check_same_thread=False,
                                     isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self.lock:
            return self._conn.execute(sql, args)

    def _all(self, cls: type[T], sql: str, args: tuple[Any, ...] = ()) -> list[T]:
        with self.lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_row(cls, r) for r in rows]

    def _one(self, cls: type[T], sql: str, args: tuple[Any, ...] = ()) -> T | None:
        found = self._all(cls, sql, args)
        return found[0] if found else None

    # -- meta / files ----------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def new_tmp_path(self, prefix: str) -> Path:
        return self.tmp_dir / f"{prefix}-{os.urandom(12).hex()}"

    def file_path(self, video: Video) -> Path:
        return self.files_dir / video.blob

    # -- accounts --------------------------------------------------------------------------

    def ensure_account(self, account_id: str, credits: int | None, streams: bool) -> None:
        self._exec("INSERT OR IGNORE INTO accounts (account_id, credits, disabled, "
                   "streams_enabled) VALUES (?, ?, 0, ?)", (account_id, credits, int(streams)))

    def account(self, account_id: str) -> Account | None:
        return self._one(Account, "SELECT * FROM accounts WHERE account_id = ?", (account_id,))

    def accounts(self) -> list[Account]:
        return self._all(Account, "SELECT * FROM accounts ORDER BY account_id")

    def update_account(self, account_id: str, **changes: Any) -> bool:
        allowed = {k: (int(v) if isinstance(v, bool) else v) for k, v in changes.items()
                   if k in ("credits", "disabled", "streams_enabled")}
        sets = ", ".join(f"{k} = ?" for k in allowed)
        cur = self._exec(f"UPDATE accounts SET {sets} WHERE account_id = ?",
                         (*allowed.values(), account_id))
        return cur.rowcount > 0

    def charge(self, account_id: str, amount: int = 1) -> bool:
        """Take credits; False (nothing taken) when the account has too few."""
        with self.lock:
            cur = self._conn.execute("UPDATE accounts SET credits = credits - ? WHERE "
                                     "account_id = ? AND credits IS NOT NULL AND credits >= ?",
                                     (amount, account_id, amount))
            if cur.rowcount:
                return True
            acc = self.account(account_id)
            return acc is None or acc.credits is None

    # -- videos ----------------------------------------------------------------------------

    def insert_video(self, video: Video, received: Path | None) -> None:
        """Move a received file into place (if any) and record the video."""
        names = [f.name for f in fields(video)]
        with self.lock:
            if received is not None:
                os.replace(received, self.files_dir / video.blob)
            self._conn.execute(f"INSERT INTO videos ({', '.join(names)}) VALUES "
                               f"({', '.join('?' * len(names))})",
                               tuple(getattr(video, n) for n in names))

    def register_videos(self, videos: list[Video]) -> None:
        """Many videos without files in one transaction (admin ``videos/register``)."""
        names = [f.name for f in fields(Video)]
        with self.lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(f"INSERT INTO videos ({', '.join(names)}) VALUES "
                                       f"({', '.join('?' * len(names))})",
                                       [tuple(getattr(v, n) for n in names) for v in videos])
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def video(self, video_no: str) -> Video | None:
        return self._one(Video, "SELECT * FROM videos WHERE video_no = ?", (video_no,))

    def video_by_blob(self, bucket: str, blob: str) -> Video | None:
        return self._one(Video, "SELECT * FROM videos WHERE bucket = ? AND blob = ? AND "
                         "deleted_at IS NULL", (bucket, blob))

    def videos(self, account_id: str | None = None, unique_id: str | None = None,
               now: float | None = None, include_deleted: bool = False) -> list[Video]:
        """Live videos (visible by ``now``, not deleted), newest first."""
        sql = "SELECT * FROM videos WHERE " + ("1" if include_deleted else "deleted_at IS NULL")
        args: list[Any] = []
        if account_id is not None:
            sql += " AND account_id = ?"
            args.append(account_id)
        if unique_id is not None:
            sql += " AND unique_id = ?"
            args.append(unique_id)
        if now is not None:
            sql += " AND visible_at <= ?"
            args.append(now)
        return self._all(Video, sql + " ORDER BY created_ms DESC, video_no DESC", tuple(args))

    def videos_page(self, account_id: str, unique_id: str, now: float, offset: int,
                    size: int) -> tuple[int, list[Video]]:
        """(how many live videos, one page of them newest first): what ``videos`` answers,
        sliced, without reading every video into Python."""
        where = ("account_id = ? AND unique_id = ? AND deleted_at IS NULL AND visible_at <= ?")
        args = (account_id, unique_id, now)
        with self.lock:  # one connection, this lock: no write between the count and the page
            total = int(self._exec(f"SELECT count(*) FROM videos WHERE {where}", args).fetchone()[0])
            page = self._all(Video, f"""SELECT * FROM videos WHERE video_no IN (
                                           SELECT video_no FROM videos WHERE {where}
                                           ORDER BY created_ms DESC, video_no DESC LIMIT ? OFFSET ?)
                                       ORDER BY created_ms DESC, video_no DESC""", (*args, size, offset))
        return total, page

    def task_videos(self, task_id: str, now: float) -> list[Video]:
        return self._all(Video, "SELECT * FROM videos WHERE task_id = ? AND visible_at <= ? "
                         "AND deleted_at IS NULL ORDER BY created_ms, video_no", (task_id, now))

    def delete_video(self, video_no: str, now: float) -> None:
        with self.lock:
            video = self.video(video_no)
            if video is None or video.deleted_at is not None:
                return
            self._conn.execute("UPDATE videos SET deleted_at = ? WHERE video_no = ?",
                               (now, video_no))
        (self.files_dir / video.blob).unlink(missing_ok=True)

    # -- tasks and streams -----------------------------------------------------------------

    def insert_task(self, task: Task) -> None:
        self._exec("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)",
                   tuple(getattr(task, f.name) for f in fields(task)))

    def task(self, task_id: str) -> Task | None:
        return self._one(Task, "SELECT * FROM tasks WHERE task_id = ?", (task_id,))

    def tasks(self) -> list[Task]:
        return self._all(Task, "SELECT * FROM tasks ORDER BY created_at")

    def insert_stream(self, stream: Stream) -> None:
        self._exec("INSERT INTO streams VALUES (?, ?, ?, ?, ?, ?)",
                   tuple(getattr(stream, f.name) for f in fields(stream)))

    def stream(self, task_id: str) -> Stream | None:
        return self._one(Stream, "SELECT * FROM streams WHERE task_id = ?", (task_id,))

    def streams(self) -> list[Stream]:
        return self._all(Stream, "SELECT * FROM streams ORDER BY started_at")

    def stop_stream(self, task_id: str, now: float) -> None:
        self._exec("UPDATE streams SET stopped_at = ? WHERE task_id = ? AND stopped_at IS NULL",
                   (now, task_id))
