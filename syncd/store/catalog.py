"""The SQLite catalog: every file, content, remote video, upload session, collection
and journal entry. This is the only module that contains SQL.

* WAL mode, one connection guarded by a lock (part uploads record ETags from
  worker threads); each public method is one transaction, so a kill -9 leaves
  the catalog as it was before or after a step, never half-way.
* Schema changes are numbered migrations (``MIGRATIONS``), each applied in its
  own transaction and recorded in ``meta.schema_version``.
* The API key is never stored here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from syncd.errors import ConfigError, SyncdError
from syncd.store.records import (
    IndexHead,
    IndexSnapshot,
    MirrorFile,
    MirrorVideo,
    PullRecord,
    SegmentInfo,
)
from syncd.store.records import ImportRecord, ImportVideoRecord, StreamRecord
from syncd.models import (
    CollectionRecord,
    ContentRecord,
    ContentState,
    FileRecord,
    JournalEntry,
    Listing,
    LocalFile,
    RecordedFile,
    RecordedRow,
    StepRecord,
    Superseded,
    UploadRecord,
)

log = logging.getLogger("syncd.store.catalog")

CATALOG_FILE = "catalog.db"
LAST_SEEN_RESOLUTION = 3600.0  # seconds; files.last_seen is refreshed no more often


class Database:
    """The connection with the calls transactions and migrations use. (It was sqlite_utils'
    Database, used for nothing more; importing that pulls in numpy, a third of a second of
    every ``syncd status``.)"""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executescript(self, script: str) -> None:
        """Statement by statement: ``sqlite3.executescript`` would commit the migration's
        open transaction first."""
        start = 0
        for end, char in enumerate(script):
            if char == ";" and sqlite3.complete_statement(script[start:end + 1]):
                self.conn.execute(script[start:end + 1])
                start = end + 1
        if script[start:].strip():
            self.conn.execute(script[start:])

    def close(self) -> None:
        self.conn.close()


def _m1_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE files (
            folder TEXT NOT NULL,
            rel_path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            sha256 TEXT,
            present INTEGER NOT NULL DEFAULT 1,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            missing_since REAL,
            PRIMARY KEY (folder, rel_path)
        );
        CREATE INDEX files_sha256 ON files (sha256);
        CREATE TABLE contents (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            state TEXT NOT NULL,
            video_id TEXT,
            name TEXT,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            orphaned_since REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE UNIQUE INDEX contents_video ON contents (video_id) WHERE video_id IS NOT NULL;
        CREATE TABLE steps (
            sha256 TEXT NOT NULL REFERENCES contents (sha256) ON DELETE CASCADE,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            percentage REAL,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL,
            PRIMARY KEY (sha256, name)
        );
        CREATE TABLE uploads (
            upload_id TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            object_name TEXT NOT NULL,
            video_id TEXT NOT NULL,
            part_size INTEGER NOT NULL,
            completed INTEGER NOT NULL DEFAULT 0,
            started_at REAL NOT NULL
        );
        CREATE TABLE upload_parts (
            upload_id TEXT NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
            part_number INTEGER NOT NULL,
            etag TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (upload_id, part_number)
        );
        CREATE TABLE collections (
            name TEXT PRIMARY KEY,
            collection_id TEXT NOT NULL UNIQUE
        );
        CREATE TABLE memberships (
            collection TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (collection, sha256)
        );
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        """
    )


def _m_mirror(db: Database) -> None:
    """The local mirror and search index (syncd/mirror/): remote facts per video, segment
    rows (their vectors live in <state_dir>/search/*.f32), sidecars written per file, a
    full-text index, the query-embedding cache and pulled remote videos."""
    db.executescript(
        """
        CREATE TABLE mirror_videos (
            video_id TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '',
            details_at REAL,
            checked_at REAL,
            embeddings_at REAL,
            row_start INTEGER NOT NULL DEFAULT 0,
            row_count INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            retry_at REAL NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE TABLE mirror_segments (
            video_id TEXT NOT NULL REFERENCES mirror_videos (video_id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start_s REAL NOT NULL,
            end_s REAL NOT NULL,
            option TEXT NOT NULL,
            scope TEXT NOT NULL,
            PRIMARY KEY (video_id, idx)
        );
        CREATE TABLE mirror_files (
            folder TEXT NOT NULL,
            rel_path TEXT NOT NULL,
            video_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            collection TEXT,
            written_at REAL NOT NULL,
            PRIMARY KEY (folder, rel_path)
        );
        CREATE INDEX mirror_files_video ON mirror_files (video_id);
        CREATE VIRTUAL TABLE mirror_fts USING fts5(
            video_id UNINDEXED, name, paths, collections, metadata, tokenize = 'unicode61'
        );
        CREATE TABLE query_embeddings (
            source TEXT NOT NULL,
            text TEXT NOT NULL,
            vector BLOB NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (source, text)
        );
        CREATE TABLE pulls (
            video_id TEXT PRIMARY KEY,
            outcome TEXT NOT NULL,
            path TEXT,
            sha256 TEXT,
            detail TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0,
            retry_at REAL NOT NULL DEFAULT 0,
            at REAL NOT NULL
        );
        """
    )


def _m_fts_rows(db: Database) -> None:
    """Each video's full-text row by rowid: FTS5 finds a row by an UNINDEXED column only
    by scanning them all, which made refreshing 10,000 videos quadratic."""
    db.executescript(
        """
        CREATE TABLE mirror_fts_rows (
            video_id TEXT PRIMARY KEY,
            fts_rowid INTEGER NOT NULL UNIQUE
        );
        INSERT INTO mirror_fts_rows (video_id, fts_rowid) SELECT video_id, max(rowid) FROM mirror_fts GROUP BY video_id;
        DELETE FROM mirror_fts WHERE rowid NOT IN (SELECT fts_rowid FROM mirror_fts_rows);
        """
    )


def _m_ownership(db: Database) -> None:
    """Which remote videos this syncd instance owns (it uploaded them, or proved them its own
    after a catalog loss) and which carry its marker. Everything before was uploaded by this
    catalog, except pulled videos: those belong to whoever uploaded them."""
    db.executescript(
        """
        ALTER TABLE contents ADD COLUMN owned INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE contents ADD COLUMN marked INTEGER NOT NULL DEFAULT 0;
        UPDATE contents SET owned = 0 WHERE sha256 IN (SELECT sha256 FROM pulls WHERE outcome = 'pulled');
        """
    )


def _m_move_safety(db: Database) -> None:
    """Moves are never deletions (issue 11): a path that changed after it had settled
    settles longer next time (``settle_level``, bumped once per version: ``changed_since``);
    a content a path held before it was rewritten is remembered until its video is dealt
    with (``superseded``); a moved file is found by its inode."""
    db.executescript(
        """
        ALTER TABLE files ADD COLUMN settle_level INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE files ADD COLUMN changed_since REAL;
        CREATE INDEX files_inode ON files (inode);
        CREATE TABLE superseded (
            folder TEXT NOT NULL,
            rel_path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            since REAL NOT NULL,
            PRIMARY KEY (folder, rel_path, sha256)
        );
        """
    )


def _m_upload_token(db: Database) -> None:
    """An upload in flight keeps one opaque resume token (the backend's), not one backend's
    fields. Every upload recorded before this was Mikshi's: its object name and video id
    become the token Mikshi's client reads (``syncd.remote.mikshi._token``)."""
    db.executescript(
        """
        CREATE TABLE upload_parts_kept AS SELECT * FROM upload_parts;
        DROP TABLE upload_parts;
        CREATE TABLE uploads_new (
            upload_id TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            token TEXT NOT NULL,
            part_size INTEGER NOT NULL,
            completed INTEGER NOT NULL DEFAULT 0,
            started_at REAL NOT NULL
        );
        INSERT INTO uploads_new (upload_id, sha256, token, part_size, completed, started_at)
            SELECT upload_id, sha256, json_object('object_name', object_name, 'video_id', video_id),
                   part_size, completed, started_at FROM uploads;
        DROP TABLE uploads;
        ALTER TABLE uploads_new RENAME TO uploads;
        CREATE TABLE upload_parts (
            upload_id TEXT NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
            part_number INTEGER NOT NULL,
            etag TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (upload_id, part_number)
        );
        INSERT INTO upload_parts SELECT * FROM upload_parts_kept;
        DROP TABLE upload_parts_kept;
        """
    )


def _m_imports_streams(db: Database) -> None:
    """``syncd import`` tasks and the videos they produced (tracked until each lands in its
    folder, across restarts), and the live streams this syncd started (the service lists
    none: this table is the only record of what runs)."""
    db.executescript(
        """
        CREATE TABLE imports (
            import_id TEXT PRIMARY KEY,
            task_id TEXT,
            urls TEXT NOT NULL,
            folder TEXT NOT NULL,
            subdir TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            started_at REAL NOT NULL,
            progress_at REAL NOT NULL,
            next_poll_at REAL NOT NULL DEFAULT 0,
            polls INTEGER NOT NULL DEFAULT 0,
            complete INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE import_videos (
            import_id TEXT NOT NULL REFERENCES imports (import_id) ON DELETE CASCADE,
            video_id TEXT NOT NULL,
            state TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            path TEXT,
            sha256 TEXT,
            detail TEXT NOT NULL DEFAULT '',
            at REAL NOT NULL,
            PRIMARY KEY (import_id, video_id)
        );
        CREATE TABLE streams (
            url TEXT PRIMARY KEY,
            task_id TEXT,
            options TEXT NOT NULL,
            started_at REAL NOT NULL
        );
        """
    )


# ``files.done`` of the row being written, under its folder's rule (``done_rules``): 1 if
# its content is uploaded, every step the rule names is done and, for a folder of
# subfolder collections, a nested file is a member of its subfolder's collection; else 0
# (also while the folder has no rule: nothing reads it then). ``_done_sql``'s test, from
# the stored rule.
_DONE_OF_ROW = """coalesce((SELECT (
        SELECT c.state = 'uploaded'
           AND NOT EXISTS (SELECT 1 FROM json_each(r.steps) j WHERE NOT EXISTS (
                 SELECT 1 FROM steps s WHERE s.sha256 = c.sha256 AND s.name = j.value AND s.state = 'done'))
           AND (r.collections = 0 OR instr(files.rel_path, '/') = 0 OR EXISTS (
                 SELECT 1 FROM memberships m WHERE m.sha256 = c.sha256
                    AND m.collection = substr(files.rel_path, 1, instr(files.rel_path, '/') - 1)))
        FROM contents c WHERE c.sha256 = files.sha256)
    FROM done_rules r WHERE r.folder = files.folder), 0)"""


def _done_triggers() -> str:
    """Triggers keeping ``files.done`` current in the very statement's transaction, wherever
    a file, content, step or membership is written (no writer has to remember it); a new
    rule recomputes its folder in ``set_done_rules``. A trigger's own update sets only
    ``done``: no ``UPDATE OF`` trigger fires again. Only an uploaded content can be done,
    so a first pass's new files and contents (never done) skip the work (``WHEN``)."""
    refresh = "UPDATE files SET done = " + _DONE_OF_ROW + " WHERE {where};"
    uploaded = "(SELECT state FROM contents WHERE sha256 = NEW.sha256) = 'uploaded'"
    this_row = refresh.format(where="rowid = NEW.rowid")
    by_new, by_old = refresh.format(where="sha256 = NEW.sha256"), refresh.format(where="sha256 = OLD.sha256")
    triggers = [
        ("files_done_insert", f"AFTER INSERT ON files WHEN {uploaded}", this_row),
        ("files_done_update", f"AFTER UPDATE OF folder, rel_path, sha256 ON files WHEN NEW.done OR {uploaded}",
         this_row),
        ("contents_done_insert", "AFTER INSERT ON contents WHEN NEW.state = 'uploaded'", by_new),
        ("contents_done_update", "AFTER UPDATE OF sha256, state ON contents "
                                 "WHEN OLD.state = 'uploaded' OR NEW.state = 'uploaded'", by_old + " " + by_new),
        ("contents_done_delete", "AFTER DELETE ON contents WHEN OLD.state = 'uploaded'", by_old),
    ]
    for table, columns in [("steps", "sha256, name, state"), ("memberships", "collection, sha256")]:
        triggers += [
            (f"{table}_done_insert", f"AFTER INSERT ON {table}", by_new),
            (f"{table}_done_update", f"AFTER UPDATE OF {columns} ON {table}", by_old + " " + by_new),
            (f"{table}_done_delete", f"AFTER DELETE ON {table}", by_old),
        ]
    return "\n".join(f"CREATE TRIGGER {name} {when} BEGIN {body} END;" for name, when, body in triggers)


def _m_status_at_scale(db: Database) -> None:
    """``syncd status`` over a million files without reading them all (issue 15):
    ``files.done`` kept by triggers under each folder's rule (the engine records the rules
    its config gives, which computes it for an existing catalog), indexed so counts and the
    files not done are index ranges; and each folder's last scan summary, so ``status``
    does not walk the folders."""
    db.executescript(
        """
        ALTER TABLE files ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE done_rules (
            folder TEXT PRIMARY KEY,
            steps TEXT NOT NULL,          -- JSON array of step names, sorted
            collections INTEGER NOT NULL  -- 1: a nested file must be in its subfolder's collection
        );
        CREATE INDEX files_done ON files (folder, present, done, rel_path);
        CREATE TABLE scan_summaries (
            folder TEXT PRIMARY KEY,
            scanned_at REAL NOT NULL,
            empty INTEGER NOT NULL,
            settling INTEGER NOT NULL,
            unreadable TEXT NOT NULL      -- JSON array of subfolders that could not be listed
        );
        """ + _done_triggers()
    )


def _m_vector_rows(db: Database) -> None:
    """Live vector-row ranges by their first row: a search finds the owner of a candidate
    row with one index seek (``mirror_row_owners``) instead of reading every video's range."""
    db.execute("CREATE INDEX mirror_videos_rows ON mirror_videos (row_start, row_count, video_id) "
               "WHERE row_count > 0")


def _m_open_steps(db: Database) -> None:
    """The steps not done, by content: a pass asks for them every time, and at rest there
    are none, so a partial index answers from an empty range instead of every step row."""
    db.execute("CREATE INDEX steps_open ON steps (sha256) WHERE state != 'done'")


# ``contents.processed`` of one content (``{sha}``): 1 if every processing step the catalog's
# recorded rule names (meta ``processing_rule``, the backend's steps) has a ``done`` row.
_PROCESSED_OF = """coalesce((SELECT NOT EXISTS (SELECT 1 FROM json_each(m.value) j WHERE NOT EXISTS (
        SELECT 1 FROM steps s WHERE s.sha256 = {sha} AND s.name = j.value AND s.state = 'done'))
    FROM meta m WHERE m.key = 'processing_rule'), 0)"""


def _m_processed(db: Database) -> None:
    """Whether a content's processing is finished, kept by triggers on ``steps`` (as
    ``files.done`` is): every pass asks which contents are not, and answering from the
    step rows meant grouping all of them (two thirds of an unchanged pass at 200,000
    files). ``set_processing_rule`` records the steps and computes it for every content."""
    refresh = "UPDATE contents SET processed = " + _PROCESSED_OF.format(sha="contents.sha256")
    db.executescript(
        f"""
        ALTER TABLE contents ADD COLUMN processed INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX contents_unprocessed ON contents (sha256) WHERE processed = 0;
        CREATE TRIGGER processed_steps_insert AFTER INSERT ON steps BEGIN
            {refresh} WHERE sha256 = NEW.sha256; END;
        CREATE TRIGGER processed_steps_update AFTER UPDATE OF sha256, name, state ON steps BEGIN
            {refresh} WHERE sha256 = OLD.sha256; {refresh} WHERE sha256 = NEW.sha256; END;
        CREATE TRIGGER processed_steps_delete AFTER DELETE ON steps BEGIN
            {refresh} WHERE sha256 = OLD.sha256; END;
        CREATE TRIGGER processed_contents_insert AFTER INSERT ON contents BEGIN
            {refresh} WHERE rowid = NEW.rowid; END;
        CREATE TRIGGER processed_contents_rekey AFTER UPDATE OF sha256 ON contents BEGIN
            {refresh} WHERE rowid = NEW.rowid; END;
        """
    )


# One entry of the complete remote listing (``listing`` and its staging twin).
# No constraint but the key: ``INSERT OR IGNORE`` (a video listed twice) would also skip
# a row breaking one, and a video left out of a listing looks deleted.
_LISTING_COLUMNS = """
    video_id TEXT PRIMARY KEY NOT NULL,
    name TEXT,
    created_at TEXT,
    hls_playlist_url TEXT,
    statuses TEXT  -- JSON object: upload-side step → its raw status, as listed
"""


def _m_listing(db: Database) -> None:
    """The last complete remote listing, kept here rather than as a Python object per
    video (a library of a million videos): the questions a pass asks of it (which linked
    videos it lacks, which listed ones nothing local accounts for, names for recovery,
    entries that differ from the stored details) are answered in SQL. Written only whole:
    a read goes to a staging table swapped in by one transaction (``ListingWriter``)."""
    db.executescript(
        f"""
        CREATE TABLE IF NOT EXISTS listing ({_LISTING_COLUMNS}) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS listing_name ON listing (name);
        """
    )


def _m_at_rest(db: Database) -> None:
    """What every pass asks and a library at rest answers with nothing, as partial indexes,
    so that the answer is an empty range instead of a scan of every row: the paths that
    settle longer (a daemon's pass over one changed file in a million walks only that
    file), and three questions every pass asks (contents not uploaded, paths gone, our
    videos not marked yet: now ``changed_shas`` and ``fill_slices``), which read every
    content or file row at 200,000 files."""
    db.executescript(
        """
        CREATE INDEX files_settling ON files (folder, rel_path) WHERE settle_level > 0;
        CREATE INDEX files_gone ON files (sha256) WHERE present = 0 AND sha256 IS NOT NULL;
        CREATE INDEX contents_not_uploaded ON contents (sha256) WHERE state != 'uploaded' OR video_id IS NULL;
        CREATE INDEX contents_unmarked ON contents (sha256) WHERE owned = 1 AND marked = 0;
        """
    )


# ``contents.mark_ready`` of one content (``{sha}``): 1 if every step the catalog's recorded
# mark rule names (meta ``mark_rule``: processing steps and collection pipelines) is done.
_MARK_READY_OF = """coalesce((SELECT NOT EXISTS (SELECT 1 FROM json_each(m.value) j WHERE NOT EXISTS (
        SELECT 1 FROM steps s WHERE s.sha256 = {sha} AND s.name = j.value AND s.state = 'done'))
    FROM meta m WHERE m.key = 'mark_rule'), 0)"""


def _m_marks_ready(db: Database) -> None:
    """Whether a content's video could be marked now (its steps of the mark rule all done),
    kept by triggers on ``steps`` as ``processed`` is: every pass asks which of our videos
    wait for their marker, and a video never fully processed (a folder without the
    collection pipelines) is never marked, so asking the step rows tested each of them on
    every pass (2.4 µs a content). ``set_mark_rule`` records the steps and computes it for
    every content; the partial index is an empty range for a library at rest."""
    refresh = "UPDATE contents SET mark_ready = " + _MARK_READY_OF.format(sha="contents.sha256")
    # Only a step turning done can make a content ready, and only a ready one can stop being
    # (``INSERT OR REPLACE`` fires no delete): other step writes (most: pending, running)
    # cost one seek, and a new content without steps (a first pass) one more.
    ready = "(SELECT mark_ready FROM contents WHERE sha256 = {sha}) = 1"
    db.executescript(
        f"""
        ALTER TABLE contents ADD COLUMN mark_ready INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX contents_to_mark ON contents (sha256) WHERE owned = 1 AND marked = 0 AND mark_ready = 1;
        CREATE TRIGGER marks_steps_insert AFTER INSERT ON steps
            WHEN NEW.state = 'done' OR {ready.format(sha="NEW.sha256")} BEGIN
            {refresh} WHERE sha256 = NEW.sha256; END;
        CREATE TRIGGER marks_steps_update AFTER UPDATE OF sha256, name, state ON steps
            WHEN NEW.state = 'done' OR OLD.sha256 IS NOT NEW.sha256 OR {ready.format(sha="OLD.sha256")} BEGIN
            {refresh} WHERE sha256 = OLD.sha256; {refresh} WHERE sha256 = NEW.sha256 AND NEW.sha256 IS NOT OLD.sha256;
            END;
        CREATE TRIGGER marks_steps_delete AFTER DELETE ON steps WHEN {ready.format(sha="OLD.sha256")} BEGIN
            {refresh} WHERE sha256 = OLD.sha256; END;
        CREATE TRIGGER marks_contents_insert AFTER INSERT ON contents
            WHEN EXISTS (SELECT 1 FROM steps WHERE sha256 = NEW.sha256) BEGIN
            {refresh} WHERE rowid = NEW.rowid; END;
        CREATE TRIGGER marks_contents_rekey AFTER UPDATE OF sha256 ON contents BEGIN
            {refresh} WHERE rowid = NEW.rowid; END;
        """
    )


def _dirty_triggers(table: str) -> str:
    """Triggers that add to ``table`` (one column, ``sha256``) the contents whose planning
    or mirroring may have changed: a file's path, content, presence or done state, a
    content's state or video, a step's state, a collection membership. Only real changes
    count (``WHEN``): a rescan rewriting the same values marks nothing, nor does a new
    file of a content with no video yet (a first pass: the content is marked when it
    gets one)."""
    def mark(*shas: str) -> str:
        # Not INSERT OR IGNORE: an outer statement's conflict clause (INSERT OR REPLACE into
        # steps, say) overrides a trigger's.
        return " ".join(f"INSERT INTO {table} (sha256) SELECT {sha} WHERE {sha} IS NOT NULL "
                        f"AND NOT EXISTS (SELECT 1 FROM {table} WHERE sha256 = {sha});" for sha in shas)

    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("folder", "rel_path", "sha256", "present", "done"))
    return f"""
        CREATE TRIGGER {table}_files_insert AFTER INSERT ON files
            WHEN EXISTS (SELECT 1 FROM contents WHERE sha256 = NEW.sha256 AND video_id IS NOT NULL)
            BEGIN {mark("NEW.sha256")} END;
        CREATE TRIGGER {table}_files_update AFTER UPDATE ON files WHEN {changed} BEGIN
            {mark("OLD.sha256", "NEW.sha256")} END;
        CREATE TRIGGER {table}_files_delete AFTER DELETE ON files BEGIN {mark("OLD.sha256")} END;
        CREATE TRIGGER {table}_contents_update AFTER UPDATE ON contents
            WHEN OLD.state IS NOT NEW.state OR OLD.video_id IS NOT NEW.video_id OR OLD.sha256 IS NOT NEW.sha256
            BEGIN {mark("OLD.sha256", "NEW.sha256")} END;
        CREATE TRIGGER {table}_contents_delete AFTER DELETE ON contents BEGIN {mark("OLD.sha256")} END;
        CREATE TRIGGER {table}_steps_insert AFTER INSERT ON steps BEGIN {mark("NEW.sha256")} END;
        CREATE TRIGGER {table}_steps_update AFTER UPDATE ON steps
            WHEN OLD.state IS NOT NEW.state OR OLD.sha256 IS NOT NEW.sha256 OR OLD.name IS NOT NEW.name
            BEGIN {mark("OLD.sha256", "NEW.sha256")} END;
        CREATE TRIGGER {table}_steps_delete AFTER DELETE ON steps BEGIN {mark("OLD.sha256")} END;
        CREATE TRIGGER {table}_memberships_insert AFTER INSERT ON memberships BEGIN {mark("NEW.sha256")} END;
        CREATE TRIGGER {table}_memberships_delete AFTER DELETE ON memberships BEGIN {mark("OLD.sha256")} END;
        """


def _m_marks_mirror_dirty(db: Database) -> None:
    """The contents whose mirror work may have changed since the mirror last ran
    (``mirror_dirty``, see ``_dirty_triggers``). A mirror run after one change among a
    million then reads that change's rows (and the few videos waiting for a retry,
    ``mirror_videos_pending``), not every file, content and mirror row."""
    db.executescript(
        f"""
        CREATE TABLE mirror_dirty (sha256 TEXT PRIMARY KEY) WITHOUT ROWID;
        CREATE INDEX mirror_videos_sha256 ON mirror_videos (sha256);
        CREATE INDEX mirror_files_sha256 ON mirror_files (sha256);
        CREATE INDEX memberships_sha256 ON memberships (sha256);
        CREATE INDEX mirror_videos_pending ON mirror_videos (video_id)
            WHERE attempts > 0 OR checked_at IS NULL OR details = '';
        {_dirty_triggers("mirror_dirty")}
        """
    )


def _m_mirror_listing_dirty(db: Database) -> None:
    """The videos whose listing entry or stored details changed since the mirror last
    compared them (``mirror_listing_dirty``, kept by triggers): its check against a new
    listing (every ``mirror.interval``) compares those, not every listing row (~0.3 CPU-s
    at 20,000 videos, seconds at 1,000,000, which a new file would wait behind). Every
    listed video to begin with: none was compared under this rule yet."""
    mark = ("INSERT INTO mirror_listing_dirty (video_id) SELECT NEW.video_id "
            "WHERE NOT EXISTS (SELECT 1 FROM mirror_listing_dirty WHERE video_id = NEW.video_id);")
    db.executescript(
        f"""
        CREATE TABLE mirror_listing_dirty (video_id TEXT PRIMARY KEY) WITHOUT ROWID;
        INSERT INTO mirror_listing_dirty (video_id) SELECT video_id FROM listing;
        CREATE TRIGGER mirror_listing_dirty_insert AFTER INSERT ON listing BEGIN {mark} END;
        CREATE TRIGGER mirror_listing_dirty_update AFTER UPDATE ON listing BEGIN {mark} END;
        CREATE TRIGGER mirror_listing_dirty_details_insert AFTER INSERT ON mirror_videos BEGIN {mark} END;
        CREATE TRIGGER mirror_listing_dirty_details_update AFTER UPDATE OF details ON mirror_videos
            WHEN OLD.details IS NOT NEW.details BEGIN {mark} END;
        """
    )
def _m_plan_dirty(db: Database) -> None:
    """The contents whose plan may have changed since a plan last saw them and left
    nothing to do for them (``plan_dirty``, see ``_dirty_triggers``): only these are
    planned (with the new ones, ``Catalog.fill_slices``), not every video still processing
    remotely; and a collection folder's members are planned as a set, only the
    collections of these (and of the contents otherwise in play) are, not every collection
    folder on every pass."""
    db.executescript(f"""
        CREATE TABLE plan_dirty (sha256 TEXT PRIMARY KEY) WITHOUT ROWID;
        {_dirty_triggers("plan_dirty")}
        """)


def _m_mirror_pending_by_content(db: Database) -> None:
    """The videos the mirror has not finished with, indexed by content (was by video): a
    mirror run takes them a slice of contents at a time, with the changed ones
    (``Catalog.mirror_changed_slice``)."""
    db.executescript("""
        DROP INDEX mirror_videos_pending;
        CREATE INDEX mirror_videos_pending ON mirror_videos (sha256)
            WHERE attempts > 0 OR checked_at IS NULL OR details = '';
        """)


def _m_polled_at(db: Database) -> None:
    """When each video's remote state was last asked (``Catalog.mark_polled``): a poll asks
    a bounded number of the videos in flight, those asked longest ago first, so a first
    sync's 100,000 uploads still processing cost a poll 1,000 requests, not 100,000.
    (A column already there is kept: the tests' older syncd polls with this one's code.)"""
    if not db.execute("SELECT 1 FROM pragma_table_info('contents') WHERE name = 'polled_at'").fetchone():
        db.execute("ALTER TABLE contents ADD COLUMN polled_at REAL")


# The live row range holding row ``?`` and those after it (by the row-range index): what an
# ANN index built up to that row has not seen.
_RANGES_FROM = """row_start >= coalesce(
    (SELECT max(row_start) FROM mirror_videos WHERE row_count > 0 AND row_start <= ?), 0)"""


# Append only. Each entry runs once, in its own transaction.
MIGRATIONS: list[Callable[[Database], None]] = [
    _m1_initial, _m_mirror, _m_fts_rows, _m_ownership, _m_move_safety, _m_upload_token,
    _m_imports_streams, _m_status_at_scale, _m_vector_rows, _m_open_steps, _m_processed,
    _m_listing, _m_at_rest, _m_marks_ready, _m_marks_mirror_dirty, _m_mirror_listing_dirty, _m_plan_dirty,
    _m_mirror_pending_by_content, _m_polled_at,
]


class CatalogError(SyncdError):
    """The catalog cannot be opened or is from a newer syncd."""


def peek_meta(state_dir: Path, keys: Iterable[str]) -> dict[str, str]:
    """Meta values of an existing catalog, read-only and without migrating it (``syncd
    doctor`` changes nothing); {} if there is no readable catalog."""
    path = state_dir / CATALOG_FILE
    if not path.is_file():
        return {}
    wanted = list(keys)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            marks = ", ".join("?" for _ in wanted)
            rows = conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", wanted).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return {}
    return {str(k): str(v) for k, v in rows}


class Catalog:
    """Typed access to ``<state_dir>/catalog.db``."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._clock = clock
        self._lock = threading.RLock()
        self._bookkeeping = 0  # rows changed that no decision reads (``changes`` leaves them out)
        self._touched: dict[Path, float] = {}  # when ``_touch`` last refreshed a folder, by this object
        try:
            if readonly:
                if not path.exists():
                    raise CatalogError(f"no catalog at {path} yet: run `syncd sync` (or `syncd run`) first")
                # mode=ro: this connection cannot write, so it never takes the write lock the sync needs.
                conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                                       check_same_thread=False, isolation_level=None, timeout=5)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise CatalogError(f"cannot open catalog {path}: {exc}") from exc
        try:
            if readonly:
                self.db = Database(conn)
                self.is_new = False
                self._check_readable()
                return
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA recursive_triggers=ON")  # as sqlite_utils set it
            self.db = Database(conn)
            self.is_new = self._migrate()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            conn.close()
            raise CatalogError(f"cannot read catalog {path}: {exc} (restore it from a backup, or move it "
                               "aside and let syncd rebuild it from the folders and the remote)") from exc

    @classmethod
    def open(cls, state_dir: Path) -> Catalog:
        return cls(state_dir / CATALOG_FILE)

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Catalog:
        """A reader beside a running sync (the web UI): never migrates, never writes,
        except the query-embedding cache (see ``set_query_embedding``)."""
        return cls(state_dir / CATALOG_FILE, readonly=True)

    def _check_readable(self) -> None:
        version = self.schema_version
        if version != len(MIGRATIONS):
            newer = "newer" if version > len(MIGRATIONS) else "older"
            raise CatalogError(f"catalog {self.path} has schema {version}, {newer} than this syncd's "
                               f"({len(MIGRATIONS)}); run `syncd sync` with this syncd once")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[Database]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            before = self.db.conn.total_changes - self._bookkeeping
            try:
                yield self.db
                if self.db.conn.total_changes - self._bookkeeping != before:
                    self._bump_generation()
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _bump_generation(self) -> None:
        """Count a transaction that changed what decisions read (``changes``' rows), in the
        catalog itself: ``generation`` tells a later process whether anything changed."""
        self._bookkeeping += self.db.conn.execute(
            """INSERT INTO meta (key, value) VALUES ('generation', '1')
               ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"""
        ).rowcount

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        # The plain cursor, not sqlite_utils' query (a savepoint and a generator per call):
        # a pass reads every file row through here.
        with self._lock:
            cursor = self.db.conn.execute(sql, list(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _migrate(self) -> bool:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise CatalogError(
                f"catalog {self.path} has schema {version}, newer than this syncd knows ({len(MIGRATIONS)})"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._tx() as db:
                migration(db)
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", [str(number)]
                )
                if number == 1:
                    db.execute("INSERT INTO meta (key, value) VALUES ('created_at', ?)", [str(self._clock())])
                    db.execute("INSERT INTO meta (key, value) VALUES ('adopt_remote', '1')")
        return version == 0

    @property
    def changes(self) -> tuple[int, int]:
        """Equal values mean nothing a decision reads has changed in between: rows changed
        through this connection (but not ``last_seen`` refreshes), and SQLite's
        ``data_version`` (bumped by other connections' commits)."""
        with self._lock:
            version = self.db.conn.execute("PRAGMA data_version").fetchone()[0]
            return self.db.conn.total_changes - self._bookkeeping, int(version)

    @property
    def schema_version(self) -> int:
        return int(self.get_meta("schema_version") or 0)

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", [key])
        return rows[0]["value"] if rows else None

    def bound_remote(self) -> str | None:
        """Which remote (backend and address) this catalog belongs to; None before any."""
        return self.get_meta("remote")

    def bind_remote(self, remote: str, *, rebind: bool = False) -> None:
        """Check that this catalog belongs to ``remote`` (``remote_identity``). A catalog
        that records none adopts it silently; one that records another refuses with a
        ConfigError, before anything is touched, unless ``rebind`` (the user says it is the
        same account under a new address) records ``remote`` instead."""
        bound = self.bound_remote()
        if bound == remote:
            return
        if bound is not None and not rebind:
            raise ConfigError(
                f"the catalog in {self.path.parent} belongs to {bound}, but the config points at {remote}; "
                "nothing was done (if it is the same account, run `syncd sync --rebind` "
                "or `syncd run --rebind` once)"
            )
        self.set_meta("remote", remote)
        if bound is not None:
            self.log("rebind", remote, "ok", f"was {bound}")

    def set_meta(self, key: str, value: str | None) -> None:
        with self._tx() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", [key])
            else:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    @property
    def generation(self) -> int:
        """A persistent counter of the transactions that changed rows a decision reads
        (not bookkeeping such as ``listing_read``): equal values in two processes mean
        nothing such changed in between (``Catalog.changes`` is per connection)."""
        return int(self.get_meta("generation") or 0)

    def set_info(self, key: str, value: str | None) -> None:
        """Meta that is only shown (``syncd status``), never decided on: bookkeeping, so
        it is no change (see ``changes`` and ``generation``)."""
        with self._tx() as db:
            cursor = (db.conn.execute("DELETE FROM meta WHERE key = ?", [key]) if value is None else
                      db.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value]))
            self._bookkeeping += cursor.rowcount

    def collection_folders(self) -> str | None:
        """The collection folders (JSON) the last executed plan covered, or None."""
        return self.get_meta("collection_folders")

    def record_collection_folders(self, folders: str) -> None:
        """Bookkeeping, like ``set_info``: recording what was planned changes no decision
        still to make, so it starts no new plan or mirror run."""
        self.set_info("collection_folders", folders)

    def mirror_complete(self) -> str | None:
        """What ``mirror_completed`` last recorded, or None."""
        return self.get_meta("mirror_complete")

    def mirror_completed(self, marker: str | None) -> None:
        """The mirror was complete (every done video's sidecars and index rows as the catalog
        says) as of ``marker`` (its catalog generation and settings); None: not known to be.
        Bookkeeping: recording it changes no generation."""
        self.set_info("mirror_complete", marker)

    def listing_read_at(self) -> float | None:
        """When a complete remote listing was last read (``listing_read``), or None."""
        value = self.get_meta("listing_read_at")
        return None if value is None else float(value)

    def listing_read(self, at: float) -> None:
        """When a complete remote listing was last read (``syncd status`` shows it, the
        deletion-check schedule counts from it). No plan reads it, so it is no change."""
        self.set_info("listing_read_at", repr(at))

    def missing_since(self) -> list[float]:
        """When each vanished, tracked file went missing (the daemon's delete-grace timer):
        one column of the missing rows, not every file row."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT missing_since FROM files WHERE present = 0 AND sha256 IS NOT NULL AND missing_since IS NOT NULL"
            ).fetchall()
        return [row[0] for row in rows]

    # ---------------------------------------------------------------- files
    def files(self, folder: Path | None = None) -> list[FileRecord]:
        # Tuples, not dict rows, and each folder's Path made once: a pass reads every row.
        columns = "folder, rel_path, size, mtime_ns, inode, sha256, present, first_seen, last_seen, missing_since"
        with self._lock:
            if folder is None:
                rows = self.db.conn.execute(f"SELECT {columns} FROM files ORDER BY folder, rel_path").fetchall()
            else:
                rows = self.db.conn.execute(f"SELECT {columns} FROM files WHERE folder = ? ORDER BY rel_path",
                                            [str(folder)]).fetchall()
        folders: dict[str, Path] = {}
        return [
            FileRecord(folders.get(r[0]) or folders.setdefault(r[0], Path(r[0])), r[1], r[2], r[3], r[4], r[5],
                       bool(r[6]), r[7], r[8], r[9])
            for r in rows
        ]

    def iter_present(self, batch: int = 2000, *, not_done: DoneRule | None = None,
                     shas: Collection[str] | None = None) -> Iterator[tuple[FileRecord, ContentRecord | None]]:
        """Every present file with its content and steps, by folder and path, streamed: one
        statement (steps by the primary key), read a batch at a time, so ``syncd status``
        over a million files holds a batch of rows, not the catalog. ``not_done``: only one
        folder's files that rule does not count done (see ``DoneRule``); ``shas``: only
        the files of these contents."""
        where, params = "", list[Any]()
        if shas is not None:
            where, params = " AND f.sha256 IN (SELECT value FROM json_each(?))", [json.dumps(sorted(shas))]
        elif not_done is not None:
            done, params = _done_sql(not_done)
            where = f" AND f.folder = ? AND NOT coalesce({done}, 0)"
            params = [str(not_done.folder), *params]
        cursor = self.db.conn.cursor()
        with self._lock:
            cursor.execute(
                f"""SELECT {_PRESENT_COLUMNS}, 0
                   FROM files f LEFT JOIN contents c ON c.sha256 = f.sha256
                   WHERE f.present = 1{where} ORDER BY f.folder, f.rel_path""", params
            )
        try:
            for file, content, _ in self._present_rows(cursor, batch):
                yield file, content
        finally:
            cursor.close()

    def _present_rows(self, cursor: sqlite3.Cursor, batch: int
                      ) -> Iterator[tuple[FileRecord, ContentRecord | None, bool]]:
        """Rows of ``_PRESENT_COLUMNS`` and one flag, read a batch at a time."""
        folders: dict[str, Path] = {}
        while True:
            with self._lock:
                rows = cursor.fetchmany(batch)
            if not rows:
                return
            for r in rows:
                folder = folders.get(r[0]) or folders.setdefault(r[0], Path(r[0]))
                file = FileRecord(folder, r[1], r[2], r[3], r[4], r[5], True, r[6], r[7])
                if r[8] is None:
                    yield file, None, bool(r[20])
                    continue
                steps = {s[0]: StepRecord(*s) for s in json.loads(r[19])} if r[19] else {}
                yield file, ContentRecord(*r[8:17], steps=steps,  # type: ignore[misc]
                                          owned=bool(r[17]), marked=bool(r[18])), bool(r[20])

    def present_counts(self) -> dict[str, int]:
        """Present files per folder, one ``GROUP BY`` (the primary key's order: no join)."""
        with self._lock:
            rows = self.db.conn.execute("SELECT folder, count(*) FROM files WHERE present = 1 GROUP BY folder")
            return {row[0]: row[1] for row in rows}

    # ------------------------------------------------ status at scale (issue 15)
    def set_done_rules(self, rules: Iterable[DoneRule]) -> None:
        """Record the rule each folder's ``files.done`` follows (the engine's config). A rule
        that differs from the recorded one (or none: a catalog migrated from schema 7)
        recomputes that folder's rows, once; an unchanged rule writes nothing."""
        rules = list(rules)
        wanted = {str(r.folder): _rule_row(r) for r in rules}
        stored = self.done_rules()
        changed = [(folder, json.dumps(list(steps)), int(coll))
                   for folder, (steps, coll) in wanted.items() if stored.get(folder) != (steps, coll)]
        if not changed:
            return
        by_folder = {str(r.folder): r for r in rules}
        with self._tx() as db:
            db.conn.executemany("INSERT OR REPLACE INTO done_rules (folder, steps, collections) VALUES (?, ?, ?)",
                                changed)
            # One statement per folder with the rule's steps spelled out (the triggers'
            # general form reads the rule per row: several times slower over a million).
            for folder, *_ in changed:
                done, params = _done_sql(by_folder[folder])
                db.execute(f"""UPDATE files AS f SET done = coalesce((SELECT {done} FROM contents c
                                                                   WHERE c.sha256 = f.sha256), 0)
                               WHERE f.folder = ?""", [*params, folder])

    def set_processing_rule(self, steps: Sequence[str]) -> None:
        """Record the backend's processing steps, which ``contents.processed`` follows; a
        different rule (or none yet) recomputes every content once."""
        self._set_rule("processing_rule", "processed", _PROCESSED_OF, steps)

    def set_mark_rule(self, steps: Sequence[str]) -> None:
        """Record the steps a video of ours needs done before it is marked, which
        ``contents.mark_ready`` follows; a different rule (or none yet) recomputes every
        content once."""
        self._set_rule("mark_rule", "mark_ready", _MARK_READY_OF, steps)

    def _set_rule(self, key: str, column: str, of: str, steps: Sequence[str]) -> None:
        """Record a rule (``key`` in meta) that a kept column of ``contents`` follows; on a
        change, recompute the column (``of``: its SQL for one content) for every content."""
        rule = json.dumps(sorted(set(steps)))
        if self.get_meta(key) == rule:
            return
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, rule])
            db.execute(f"UPDATE contents SET {column} = " + of.format(sha="contents.sha256"))

    def _processed_kept(self, steps: Sequence[str]) -> bool:
        """``contents.processed`` follows exactly these steps (else: ask the step rows)."""
        return bool(steps) and self.get_meta("processing_rule") == json.dumps(sorted(set(steps)))

    def done_rules(self) -> dict[str, tuple[tuple[str, ...], bool]]:
        """Recorded rules by folder: (sorted step names, subfolder collections)."""
        with self._lock:
            rows = self.db.conn.execute("SELECT folder, steps, collections FROM done_rules").fetchall()
        return {r[0]: (tuple(json.loads(r[1])), bool(r[2])) for r in rows}

    def done_counts(self) -> dict[str, tuple[int, int]]:
        """Present files per folder and how many of them ``files.done`` says are done: one
        pass over the ``files_done`` index, no table row read."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT folder, count(*), coalesce(sum(done = 1), 0) FROM files WHERE present = 1 GROUP BY folder"
            ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def iter_not_done(self, folder: Path, batch: int = 2000
                      ) -> Iterator[tuple[FileRecord, ContentRecord | None, bool]]:
        """A folder's present files that ``files.done`` says are not done (the ``files_done``
        index range), as ``iter_present`` yields them, with whether a nested file is a member
        of its subfolder's collection. Only for a folder whose rule is recorded."""
        cursor = self.db.conn.cursor()
        with self._lock:
            cursor.execute(
                f"""SELECT {_PRESENT_COLUMNS},
                          EXISTS (SELECT 1 FROM memberships m WHERE m.sha256 = c.sha256
                                  AND m.collection = substr(f.rel_path, 1, instr(f.rel_path, '/') - 1))
                   FROM files f LEFT JOIN contents c ON c.sha256 = f.sha256
                   WHERE f.folder = ? AND f.present = 1 AND f.done = 0 ORDER BY f.rel_path""", [str(folder)]
            )
        try:
            yield from self._present_rows(cursor, batch)
        finally:
            cursor.close()

    def done_disagreements(self, rule: DoneRule) -> list[str]:
        """Paths of the rule's folder whose stored ``files.done`` differs from the rule tested
        afresh (a check for tests and ``doctor``-style diagnostics; reads every row)."""
        done, params = _done_sql(rule)
        rows = self._rows(
            f"""SELECT f.rel_path AS rel_path FROM files f LEFT JOIN contents c ON c.sha256 = f.sha256
                WHERE f.folder = ? AND f.done != coalesce({done}, 0) ORDER BY f.rel_path""",
            [str(rule.folder), *params],
        )
        return [r["rel_path"] for r in rows]

    def membership_counts(self) -> dict[str, int]:
        """Contents per collection (the primary key's order: one pass over an index)."""
        with self._lock:
            rows = self.db.conn.execute("SELECT collection, count(*) FROM memberships GROUP BY collection")
            return {r[0]: r[1] for r in rows}

    def record_scan_summary(self, summary: ScanSummary) -> None:
        """A folder's last scan, for ``syncd status`` (which then walks no folder). Nothing
        decides on it: it does not count as a change (see ``changes``)."""
        with self._tx() as db:
            self._bookkeeping += db.execute(
                """INSERT OR REPLACE INTO scan_summaries (folder, scanned_at, empty, settling, unreadable)
                   VALUES (?, ?, ?, ?, ?)""",
                [str(summary.folder), summary.scanned_at, summary.empty, summary.settling,
                 json.dumps(list(summary.unreadable))],
            ).rowcount

    def scan_summaries(self) -> dict[str, ScanSummary]:
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT folder, scanned_at, empty, settling, unreadable FROM scan_summaries").fetchall()
        return {r[0]: ScanSummary(Path(r[0]), r[1], r[2], r[3], tuple(json.loads(r[4]))) for r in rows}

    def file(self, folder: Path, rel_path: str) -> FileRecord | None:
        rows = self._rows("SELECT * FROM files WHERE folder = ? AND rel_path = ?", [str(folder), rel_path])
        return _file(rows[0]) if rows else None

    def find_file(self, path: Path) -> FileRecord | None:
        """The record for an absolute path, whichever folder holds it."""
        for record in self._rows("SELECT * FROM files WHERE ? LIKE folder || '/%'", [str(path)]):
            candidate = _file(record)
            if candidate.path == path:
                return candidate
        return None

    def record_scan(
        self, folder: Path, seen: Iterable[tuple[LocalFile, str]], unsettled: Iterable[str], now: float
    ) -> None:
        """One folder's scan, atomically: settled files with their sha256 are present;
        tracked paths neither seen nor still settling are marked missing."""
        seen = list(seen)
        keep = {f.rel_path for f, _ in seen} | set(unsettled)
        with self._tx() as db:
            # Read what is recorded first, so a quiet rescan of 10,000 files writes nothing.
            known = self._recorded(folder)
            self._upsert_seen(folder, seen, known, now)
            self._touch(folder, now)
            db.conn.executemany(
                "UPDATE files SET present = 0, missing_since = ? WHERE folder = ? AND rel_path = ?",
                [(now, str(folder), rel_path) for rel_path, (*_, present) in known.items()
                 if present and rel_path not in keep],
            )

    def record_changes(self, folder: Path, seen: Iterable[tuple[LocalFile, str]], missing: Iterable[str],
                       now: float) -> None:
        """A scan's changes, atomically: settled files with their sha256 are present (rows
        already so are not rewritten); the ``missing`` paths (recorded present, not found
        by the walk, see ``scan.scan_changes``) are marked missing. Unlike ``record_scan``
        it reads only the rows of ``seen``: a rescan's work follows the change."""
        seen = list(seen)
        with self._tx() as db:
            self._upsert_seen(folder, seen, self._recorded_of(folder, [f.rel_path for f, _ in seen]), now)
            self._touch(folder, now)
            db.conn.executemany(
                "UPDATE files SET present = 0, missing_since = ? WHERE folder = ? AND rel_path = ? AND present = 1",
                [(now, str(folder), rel_path) for rel_path in missing],
            )

    def record_seen(self, folder: Path, seen: Iterable[tuple[LocalFile, str]], now: float) -> None:
        """Part of a long first scan: these files are present with their sha256 (nothing is
        marked missing; ``record_scan`` does that at the end). Committed in batches, so a
        kill after an hour of hashing loses at most a batch."""
        seen = list(seen)
        with self._tx():
            self._upsert_seen(folder, seen, self._recorded_of(folder, [f.rel_path for f, _ in seen]), now)

    def _upsert_seen(self, folder: Path, seen: list[tuple[LocalFile, str]],
                     known: Mapping[str, RecordedFile], now: float) -> None:
        changed = [(local, sha) for local, sha in seen
                   if known.get(local.rel_path) != (local.size, local.mtime_ns, local.inode, sha, 1)]
        # Rewritten with other bytes: the old content's video is the planner's to judge.
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO superseded (folder, rel_path, sha256, since) VALUES (?, ?, ?, ?)",
            [(str(folder), local.rel_path, before.sha256, now) for local, sha in changed
             if (before := known.get(local.rel_path)) is not None and before.sha256 and before.sha256 != sha],
        )
        self.db.conn.executemany(
            "DELETE FROM superseded WHERE folder = ? AND rel_path = ? AND sha256 = ?",
            [(str(folder), local.rel_path, sha) for local, sha in changed],
        )
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO contents (sha256, size, state, created_at, updated_at) VALUES (?, ?, 'new', ?, ?)",
            [(sha, local.size, now, now) for local, sha in changed],
        )
        self.db.conn.executemany(
            """INSERT INTO files (folder, rel_path, size, mtime_ns, inode, sha256, present, first_seen, last_seen)
               VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)
               ON CONFLICT (folder, rel_path) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,
                 sha256 = excluded.sha256, present = 1, last_seen = excluded.last_seen,
                 missing_since = NULL, changed_since = NULL""",
            [(str(folder), local.rel_path, local.size, local.mtime_ns, local.inode, sha, now, now)
             for local, sha in changed],
        )

    def _recorded_of(self, folder: Path, rel_paths: list[str]) -> dict[str, RecordedFile]:
        """``_recorded`` for some paths only, in one statement (a JSON array, not one per path)."""
        rows = self.db.conn.execute(
            """SELECT rel_path, size, mtime_ns, inode, sha256, present FROM files
               WHERE folder = ? AND rel_path IN (SELECT value FROM json_each(?))""",
            [str(folder), json.dumps(rel_paths)],
        ).fetchall()
        return {row[0]: RecordedFile(*row[1:]) for row in rows}

    def _recorded(self, folder: Path) -> dict[str, RecordedFile]:
        """What the catalog holds of a folder's files, by relative path (``record_scan``;
        the scan itself merges ``recorded_in_order``)."""
        rows = self.db.conn.execute(
            "SELECT rel_path, size, mtime_ns, inode, sha256, present FROM files WHERE folder = ?", [str(folder)]
        ).fetchall()
        make = RecordedFile._make  # a third faster than RecordedFile(*...): a rescan makes one per file
        return {row[0]: make(row[1:]) for row in rows}

    def recorded_in_order(self, folder: Path, target: str | None = None,
                          batch: int = 5000) -> Generator[RecordedRow, None, None]:
        """A folder's rows as the scan merges them, (rel_path, size, mtime_ns, inode,
        sha256, present), in ``rel_path`` order (BINARY: the primary key's order, no sort),
        streamed a batch at a time: a rescan holds a batch, not the folder. ``target``:
        only the rows of that relative path and below it (``target/...``). Close the
        iterator if it is not read to the end.

        Each batch is a statement of its own, from the key after the last row read: no
        statement is left open between batches, so the reader may write rows behind the
        last one read (the first pass records its batches during the walk) without an
        open statement seeing them (SQLite leaves that undefined)."""
        where, params = "", list[Any]([str(folder)])
        if target is not None:
            # A range of the primary key; the few names that only extend ``target``
            # ("a.mp4.bak" for "a.mp4") fall in it and are filtered out.
            where = " AND rel_path >= ? AND rel_path < ? AND (rel_path = ? OR substr(rel_path, 1, ?) = ?)"
            params += [target, target + "0", target, len(target) + 1, target + "/"]
        sql = f"""SELECT rel_path, size, mtime_ns, inode, sha256, present FROM files
                  WHERE folder = ?{where} AND rel_path > ? ORDER BY rel_path LIMIT ?"""
        last = ""  # every path sorts after the empty one
        while True:
            with self._lock:
                rows = self.db.conn.execute(sql, [*params, last, batch]).fetchall()
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def video_paths(self, video_ids: Collection[str]) -> dict[str, str]:
        """Where these videos' contents are now (a present file's path), by video id: the
        journal names a video, a person reads its file."""
        if not video_ids:
            return {}
        rows = self._rows(
            """SELECT c.video_id, f.folder, f.rel_path FROM contents c
               JOIN files f ON f.sha256 = c.sha256 AND f.present
               WHERE c.video_id IN (SELECT value FROM json_each(?)) ORDER BY f.folder, f.rel_path""",
            [json.dumps(sorted(set(video_ids)))],
        )
        return {r["video_id"]: f"{r['folder']}/{r['rel_path']}" for r in rows}

    def known_versions(self, inodes: Collection[int]) -> dict[tuple[int, int, int], str]:
        """Hashed file versions by (size, mtime_ns, inode), for files with these inodes in any
        folder: a file renamed or moved within a filesystem keeps all three, so its content
        is known without reading it or waiting for it to settle."""
        if not inodes:
            return {}
        rows = self._rows(
            """SELECT size, mtime_ns, inode, sha256 FROM files
               WHERE sha256 IS NOT NULL AND inode IN (SELECT value FROM json_each(?))""",
            [json.dumps(sorted(set(inodes)))],
        )
        return {(r["size"], r["mtime_ns"], r["inode"]): r["sha256"] for r in rows}

    def settle_levels(self, folder: Path) -> dict[str, int]:
        """Paths of ``folder`` that changed after they had settled: how many times (capped)."""
        rows = self._rows("SELECT rel_path, settle_level FROM files WHERE folder = ? AND settle_level > 0",
                          [str(folder)])
        return {r["rel_path"]: r["settle_level"] for r in rows}

    def note_changed(self, folder: Path, rel_paths: Iterable[str], now: float, max_level: int) -> None:
        """These recorded paths changed after they had settled: each settles longer from now
        on (one level per recorded version, however many passes see it changing)."""
        paths = list(rel_paths)
        if not paths:
            return
        with self._tx() as db:
            db.conn.executemany(
                """UPDATE files SET settle_level = min(settle_level + 1, ?), changed_since = ?
                   WHERE folder = ? AND rel_path = ? AND changed_since IS NULL AND sha256 IS NOT NULL""",
                [(max_level, now, str(folder), rel) for rel in paths],
            )

    def superseded(self) -> list[Superseded]:
        rows = self._rows("SELECT * FROM superseded ORDER BY folder, rel_path, sha256")
        return [Superseded(Path(r["folder"]), r["rel_path"], r["sha256"], r["since"]) for r in rows]

    def forget_superseded(self, folder: Path, rel_path: str, sha256: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM superseded WHERE folder = ? AND rel_path = ? AND sha256 = ?",
                       [str(folder), rel_path, sha256])

    def scan_unchanged(self, folder: Path, now: float) -> None:
        """A scan found exactly what is recorded: nothing to write but ``last_seen``."""
        with self._tx():
            self._touch(folder, now)

    def _touch(self, folder: Path, now: float) -> None:
        # last_seen of unchanged files is refreshed at most hourly: one statement, rarely.
        # Nothing decides on it, so it does not count as a change (see ``changes``). The
        # statement tests every present row of the folder, so a daemon's passes in between
        # (one changed file in a million) skip it.
        if now - self._touched.get(folder, -LAST_SEEN_RESOLUTION) < LAST_SEEN_RESOLUTION:
            return
        self._touched[folder] = now
        self._bookkeeping += self.db.conn.execute(
            "UPDATE files SET last_seen = ? WHERE folder = ? AND present = 1 AND last_seen < ?",
            [now, str(folder), now - LAST_SEEN_RESOLUTION],
        ).rowcount

    def forget_file(self, folder: Path, rel_path: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM files WHERE folder = ? AND rel_path = ?", [str(folder), rel_path])

    def move_file(self, folder: Path, rel_path: str, new_folder: Path, new_rel_path: str) -> None:
        """Re-home a file record (trash moves, pulled renames), keeping its content."""
        with self._tx() as db:
            db.execute("DELETE FROM files WHERE folder = ? AND rel_path = ?", [str(new_folder), new_rel_path])
            db.execute(
                "UPDATE files SET folder = ?, rel_path = ? WHERE folder = ? AND rel_path = ?",
                [str(new_folder), new_rel_path, str(folder), rel_path],
            )

    # ------------------------------------------------------------- contents
    def content(self, sha256: str) -> ContentRecord | None:
        rows = self._rows("SELECT * FROM contents WHERE sha256 = ?", [sha256])
        return self._content(rows[0]) if rows else None

    def contents(self, states: Iterable[ContentState] | None = None) -> list[ContentRecord]:
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT sha256, size, state, video_id, name, error, attempts, next_attempt_at, orphaned_since,
                          owned, marked
                   FROM contents ORDER BY created_at, sha256"""
            ).fetchall()
        wanted = set(states) if states is not None else None
        steps = self._all_steps()
        return [
            ContentRecord(*r[:9], steps=steps.get(r[0], {}), owned=bool(r[9]), marked=bool(r[10]))  # type: ignore[misc]
            for r in rows
            if wanted is None or r[2] in wanted
        ]

    def _in_progress_keys(self, steps: tuple[str, ...]) -> tuple[str, list[str]]:
        """SQL (and its parameters) of the (created_at, sha256, polled_at) of the uploaded
        contents that may still change remotely: one of the backend's processing ``steps``
        not done yet, or a pipeline started and not finished. (A superset; callers check.)"""
        started = """SELECT sha256 FROM steps  -- "!= 'done'": the partial index steps_open
                       WHERE state != 'done' AND (state = 'running' OR (state = 'pending' AND attempts > 0))"""
        if self._processed_kept(steps):  # two index ranges
            return (f"""SELECT created_at, sha256, polled_at FROM contents
                        WHERE sha256 IN (SELECT sha256 FROM contents WHERE processed = 0 UNION {started})
                          AND state = 'uploaded' AND video_id IS NOT NULL""", [])
        processing = ", ".join("?" for _ in steps) or "NULL"
        # Two uncorrelated subqueries, each evaluated once, each reading every step row.
        return (f"""SELECT created_at, sha256, polled_at FROM contents WHERE state = 'uploaded' AND video_id IS NOT NULL AND (
                      sha256 NOT IN (SELECT sha256 FROM steps WHERE state = 'done' AND name IN ({processing})
                                     GROUP BY sha256 HAVING count(*) = {len(steps)})
                      OR sha256 IN ({started}))""", list(steps))

    def any_content_in_progress(self, steps: tuple[str, ...]) -> bool:
        sql, params = self._in_progress_keys(steps)
        return bool(self._rows(f"SELECT EXISTS ({sql}) AS found", params)[0]["found"])

    def iter_contents_in_progress(self, steps: tuple[str, ...], batch: int = 1000,
                                  limit: int | None = None) -> Iterator[list[ContentRecord]]:
        """The contents in progress (``_in_progress_keys``), those polled longest ago first
        (never polled before any; then by (created_at, sha256)), at most ``limit`` of them,
        ``batch`` at a time with their steps (a statement for the page's contents, one for
        their steps). Which ones is decided once, at the first page: their keys go to a TEMP
        table (SQLite's memory or temp file), so a first sync's million uploads still
        processing cost a page of records at a time, and a page's writes (a poll's
        answers) do not move the others."""
        sql, params = self._in_progress_keys(steps)
        with self._lock:
            self.db.execute("DROP TABLE IF EXISTS temp.in_progress")
            self.db.execute("CREATE TEMP TABLE in_progress (n INTEGER PRIMARY KEY, sha256 TEXT NOT NULL)")
            self._bookkeeping += self.db.execute(  # this connection's alone: no decision reads it
                f"""INSERT INTO temp.in_progress (sha256) SELECT sha256 FROM ({sql})
                    ORDER BY coalesce(polled_at, 0), created_at, sha256 LIMIT ?""",
                [*params, -1 if limit is None else limit]).rowcount
        try:
            last = 0
            while rows := self._rows("SELECT p.n, c.* FROM temp.in_progress p JOIN contents c ON c.sha256 = p.sha256 "
                                     "WHERE p.n > ? ORDER BY p.n LIMIT ?", [last, batch]):
                last = rows[-1]["n"]
                steps_of: dict[str, dict[str, StepRecord]] = {r["sha256"]: {} for r in rows}
                for step in self._rows("SELECT * FROM steps WHERE sha256 IN (SELECT value FROM json_each(?))",
                                       [json.dumps(list(steps_of))]):
                    steps_of[step["sha256"]][step["name"]] = _step(step)
                yield [self._content(r, steps_of[r["sha256"]]) for r in rows]
        finally:
            with self._lock:
                self.db.execute("DROP TABLE IF EXISTS temp.in_progress")

    def mark_polled(self, sha256s: Sequence[str], at: float) -> None:
        """The remote states of these contents were asked at ``at`` (whatever the answer):
        the next poll asks the others first. Not a change any decision reads."""
        with self._tx() as db:
            self._bookkeeping += db.conn.execute(
                "UPDATE contents SET polled_at = ? WHERE sha256 IN (SELECT value FROM json_each(?))",
                [at, json.dumps(list(sha256s))]).rowcount

    def _all_steps(self) -> dict[str, dict[str, StepRecord]]:
        out: dict[str, dict[str, StepRecord]] = {}
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT sha256, name, state, percentage, error, attempts, next_attempt_at FROM steps"
            ).fetchall()
        for sha256, *step in rows:
            out.setdefault(sha256, {})[step[0]] = StepRecord(*step)
        return out

    def _content(self, row: dict[str, Any], steps: dict[str, StepRecord] | None = None) -> ContentRecord:
        if steps is None:
            steps = {r["name"]: _step(r) for r in self._rows("SELECT * FROM steps WHERE sha256 = ?", [row["sha256"]])}
        return ContentRecord(
            sha256=row["sha256"],
            size=row["size"],
            state=row["state"],
            video_id=row["video_id"],
            name=row["name"],
            error=row["error"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            orphaned_since=row["orphaned_since"],
            steps=steps,
            owned=bool(row["owned"]),
            marked=bool(row["marked"]),
        )

    def update_content(self, sha256: str, **fields: Any) -> None:
        """Set columns of one content row (state, video_id, name, error, attempts, ...)."""
        allowed = {"state", "video_id", "name", "error", "attempts", "next_attempt_at", "orphaned_since", "size"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown content fields: {sorted(unknown)}")
        fields["updated_at"] = self._clock()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as db:
            db.execute(f"UPDATE contents SET {assignments} WHERE sha256 = ?", [*fields.values(), sha256])

    def video_registered(self, sha256: str, video_id: str, name: str, *, owned: bool = True) -> None:
        """The remote now has this content as ``video_id`` (uploaded by us, or linked:
        ``owned`` False for another instance's video): reset every step."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                """UPDATE contents SET state = 'uploaded', video_id = ?, name = ?, error = NULL,
                   orphaned_since = NULL, owned = ?, marked = 0, updated_at = ? WHERE sha256 = ?""",
                [video_id, name, int(owned), now, sha256],
            )
            db.execute("DELETE FROM steps WHERE sha256 = ?", [sha256])

    def set_marked(self, sha256: str, marked: bool) -> None:
        """Whether this instance's marker is on the content's remote video."""
        with self._tx() as db:
            db.execute("UPDATE contents SET marked = ? WHERE sha256 = ?", [int(marked), sha256])

    def instance_key(self) -> str:
        """A random id of this catalog, written into the instance's remote marker note: a
        note with another key under the same instance name is another syncd."""
        key = self.get_meta("instance_key")
        if key is None:
            key = uuid.uuid4().hex[:12]
            self.set_info("instance_key", key)  # an identity: no decision changes
        return key

    def link_finished(self, videos: Iterable[tuple[str, str, str]], steps: Iterable[str]) -> None:
        """Many contents at once as uploaded (sha256, video_id, name) with ``steps`` done:
        ``bench_scale`` reaches "everything synced" this way, in one transaction."""
        now = self._clock()
        rows = [(video_id, name, now, sha256) for sha256, video_id, name in videos]
        steps = tuple(steps)
        with self._tx() as db:
            db.conn.executemany(
                """UPDATE contents SET state = 'uploaded', video_id = ?, name = ?, error = NULL,
                   orphaned_since = NULL, updated_at = ? WHERE sha256 = ?""", rows)
            db.conn.executemany(
                """INSERT OR REPLACE INTO steps (sha256, name, state, percentage, updated_at)
                   VALUES (?, ?, 'done', 100, ?)""",
                [(sha256, step, now) for *_, sha256 in rows for step in steps])

    def content_gone(self, sha256: str, state: ContentState, *,
                     drop_files: Literal["all"] | Collection[tuple[Path, str]] = ()) -> None:
        """The remote video is gone (we deleted it, or the remote did): close the content,
        and forget ``drop_files`` (folder, rel_path) or "all" of its file rows. Rows of
        copies kept on disk stay, or those files would be missing until the next walk."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                "UPDATE contents SET state = ?, orphaned_since = NULL, updated_at = ? WHERE sha256 = ?",
                [state, now, sha256],
            )
            db.execute("DELETE FROM steps WHERE sha256 = ?", [sha256])
            db.execute("DELETE FROM memberships WHERE sha256 = ?", [sha256])
            db.execute("DELETE FROM superseded WHERE sha256 = ?", [sha256])  # its video is gone either way
            if drop_files == "all":
                db.execute("DELETE FROM files WHERE sha256 = ?", [sha256])
            else:
                db.conn.executemany("DELETE FROM files WHERE folder = ? AND rel_path = ? AND sha256 = ?",
                                    [(str(folder), rel, sha256) for folder, rel in drop_files])

    def restore_content(self, sha256: str) -> None:
        """Lift a tombstone: the content becomes new and will be uploaded again."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                """UPDATE contents SET state = 'new', video_id = NULL, error = NULL, attempts = 0,
                   next_attempt_at = 0, updated_at = ? WHERE sha256 = ?""",
                [now, sha256],
            )

    # ---------------------------------------------------------------- steps
    def set_step(
        self, sha256: str, name: str, state: str, percentage: float | None = None, error: str | None = None
    ) -> None:
        now = self._clock()
        with self._tx() as db:
            db.execute(
                """INSERT INTO steps (sha256, name, state, percentage, error, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (sha256, name) DO UPDATE SET state = excluded.state,
                   percentage = excluded.percentage, error = excluded.error, updated_at = excluded.updated_at
                   -- an unchanged answer to a poll writes nothing (and counts as no change)
                   WHERE steps.state IS NOT excluded.state OR steps.percentage IS NOT excluded.percentage
                      OR steps.error IS NOT excluded.error""",
                [sha256, name, state, percentage, error, now],
            )

    def step_attempted(self, sha256: str, name: str, next_attempt_at: float) -> None:
        """A pipeline was (re)started: count the attempt and mark it running."""
        now = self._clock()
        with self._tx() as db:
            db.execute(
                """INSERT INTO steps (sha256, name, state, attempts, next_attempt_at, updated_at)
                   VALUES (?, ?, 'running', 1, ?, ?)
                   ON CONFLICT (sha256, name) DO UPDATE SET state = 'running', error = NULL,
                   attempts = attempts + 1, next_attempt_at = excluded.next_attempt_at,
                   updated_at = excluded.updated_at""",
                [sha256, name, next_attempt_at, now],
            )

    # -------------------------------------------------------------- uploads
    def uploads(self) -> list[UploadRecord]:
        parts: dict[str, dict[int, str]] = {}
        for r in self._rows("SELECT upload_id, part_number, etag FROM upload_parts"):
            parts.setdefault(r["upload_id"], {})[r["part_number"]] = r["etag"]
        return [
            UploadRecord(r["upload_id"], r["sha256"], r["token"], r["part_size"],
                         bool(r["completed"]), parts.get(r["upload_id"], {}))
            for r in self._rows("SELECT * FROM uploads ORDER BY started_at")
        ]

    def uploaded_bytes(self) -> dict[str, int]:
        """Bytes the remote holds so far of each open upload (its recorded parts), by sha256."""
        rows = self._rows("""SELECT u.sha256 AS sha256, coalesce(sum(p.size), 0) AS sent
                             FROM uploads u LEFT JOIN upload_parts p ON p.upload_id = u.upload_id
                             GROUP BY u.sha256""")
        return {r["sha256"]: int(r["sent"]) for r in rows}

    def upload_for(self, sha256: str) -> UploadRecord | None:
        return next((u for u in self.uploads() if u.sha256 == sha256), None)

    def upload_started(self, sha256: str, upload_id: str, token: str, part_size: int) -> None:
        """An upload in flight: its id and the backend's resume token, kept as they are."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO uploads (upload_id, sha256, token, part_size, started_at) VALUES (?, ?, ?, ?, ?)",
                [upload_id, sha256, token, part_size, self._clock()],
            )
            db.execute(
                "UPDATE contents SET state = 'uploading', updated_at = ? WHERE sha256 = ?", [self._clock(), sha256]
            )

    def part_uploaded(self, upload_id: str, part_number: int, etag: str, size: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO upload_parts (upload_id, part_number, etag, size) VALUES (?, ?, ?, ?)",
                [upload_id, part_number, etag, size],
            )

    def upload_completed(self, upload_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE uploads SET completed = 1 WHERE upload_id = ?", [upload_id])

    def upload_ended(self, upload_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM upload_parts WHERE upload_id = ?", [upload_id])
            db.execute("DELETE FROM uploads WHERE upload_id = ?", [upload_id])

    # ---------------------------------------------------------- collections
    def collections(self) -> list[CollectionRecord]:
        return [CollectionRecord(r["name"], r["collection_id"]) for r in self._rows("SELECT * FROM collections ORDER BY name")]

    def collection(self, name: str) -> CollectionRecord | None:
        rows = self._rows("SELECT * FROM collections WHERE name = ?", [name])
        return CollectionRecord(rows[0]["name"], rows[0]["collection_id"]) if rows else None

    def set_collection(self, name: str, collection_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM collections WHERE collection_id = ? AND name != ?", [collection_id, name])
            db.execute("INSERT OR REPLACE INTO collections (name, collection_id) VALUES (?, ?)", [name, collection_id])

    def rename_collection(self, old: str, new: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE collections SET name = ? WHERE name = ?", [new, old])
            db.execute("UPDATE memberships SET collection = ? WHERE collection = ?", [new, old])

    def drop_collection(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM memberships WHERE collection = ?", [name])
            db.execute("DELETE FROM collections WHERE name = ?", [name])

    def memberships(self) -> set[tuple[str, str]]:
        return {(r["collection"], r["sha256"]) for r in self._rows("SELECT * FROM memberships")}

    def add_membership(self, collection: str, sha256: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO memberships (collection, sha256) VALUES (?, ?)", [collection, sha256])

    def remove_membership(self, collection: str, sha256: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM memberships WHERE collection = ? AND sha256 = ?", [collection, sha256])

    # -------------------------------------------------------------- journal
    def log(self, action: str, target: str, outcome: str, detail: str = "") -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO journal (time, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?)",
                [self._clock(), action, target, outcome, detail],
            )

    def journal(self, limit: int = 50, *, after_id: int = 0, since: float | None = None,
                action: str | None = None, about: Sequence[str] = ()) -> list[JournalEntry]:
        """The last ``limit`` entries, oldest first; optionally only those after ``after_id``,
        at or after ``since``, of one ``action`` name, or naming any of ``about`` (a path or
        a video id, in the target or the detail: a deletion names its files there)."""
        where, params = ["id > ?"], list[object]([after_id])
        if since is not None:
            where.append("time >= ?")
            params.append(since)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        if about:
            where.append("(" + " OR ".join(["instr(target, ?) > 0 OR instr(detail, ?) > 0"] * len(about)) + ")")
            params += [text for needle in about for text in (needle, needle)]
        rows = self._rows(f"SELECT * FROM journal WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                          [*params, limit])
        return [JournalEntry(r["id"], r["time"], r["action"], r["target"], r["outcome"], r["detail"]) for r in reversed(rows)]

    def iter_final_journal(self, after_id: int, batch: int = 1000) -> Iterator[list[JournalEntry]]:
        """The entries after ``after_id``, each (action, target) once: its last entry (a
        ``started`` with no outcome yet as it is), in the order they ended, a batch at a
        time: what ``syncd sync`` prints for its run. The last ids are picked in SQL (a TEMP
        table, SQLite's memory or its temp file), then read a statement a batch: a first
        sync of a million files journals two million entries, none held all at once."""
        with self._lock:
            self.db.execute("DROP TABLE IF EXISTS temp.journal_final")
            self.db.execute("CREATE TEMP TABLE journal_final (id INTEGER PRIMARY KEY)")
            self._bookkeeping += self.db.execute(  # this connection's alone: no decision reads it
                "INSERT INTO temp.journal_final SELECT max(id) FROM journal WHERE id > ? GROUP BY action, target",
                [after_id]).rowcount
        try:
            last = after_id
            while rows := self._rows("SELECT j.* FROM temp.journal_final f JOIN journal j ON j.id = f.id "
                                     "WHERE f.id > ? ORDER BY f.id LIMIT ?", [last, batch]):
                yield [JournalEntry(r["id"], r["time"], r["action"], r["target"], r["outcome"], r["detail"])
                       for r in rows]
                last = rows[-1]["id"]
        finally:
            with self._lock:
                self.db.execute("DROP TABLE IF EXISTS temp.journal_final")

    def last_journal_id(self) -> int:
        rows = self._rows("SELECT max(id) AS id FROM journal")
        return int(rows[0]["id"] or 0) if rows else 0

    # --- mirror & search index ---------------------------------------------------------
    # Rows of syncd/mirror/: per-video remote facts and vector ranges, segment rows, the
    # sidecars written per file, the full-text index, cached query embeddings and pulls.

    def mirror_video(self, video_id: str) -> MirrorVideo | None:
        rows = self._rows("SELECT * FROM mirror_videos WHERE video_id = ?", [video_id])
        return _mirror_video(rows[0]) if rows else None

    def mirror_videos(self, shas: Collection[str] | None = None) -> dict[str, MirrorVideo]:
        """Every mirror row, or those of these contents."""
        if shas is None:
            rows = self._rows("SELECT * FROM mirror_videos")
        else:
            rows = self._rows("SELECT * FROM mirror_videos WHERE sha256 IN (SELECT value FROM json_each(?))",
                              [json.dumps(sorted(shas))])
        return {r["video_id"]: _mirror_video(r) for r in rows}

    def mirror_changed_slice(self, after: str, limit: int) -> list[str]:
        """The first ``limit`` contents above ``after``, in sha256 order, whose mirror work
        may have changed since ``mirror_dirty_done`` (``mirror_dirty``, kept by triggers, see
        ``_m_marks_mirror_dirty``) or whose video the mirror has not finished with (never
        checked, no details, or a failed pull waiting for its retry). Two index ranges of at
        most ``limit`` rows: after a first sync of a million files every content is changed,
        and a run takes them a slice at a time."""
        pending = ("mirror_videos INDEXED BY mirror_videos_pending "
                   "WHERE (attempts > 0 OR checked_at IS NULL OR details = '') AND sha256 > ?")
        return self._first_shas(("mirror_dirty WHERE sha256 > ?", pending), [after], limit)

    def mirror_dirty_done(self, shas: Collection[str] | None) -> None:
        """The mirror ran over these contents (None: it reads every row). Bookkeeping: no
        decision reads it."""
        with self._tx() as db:
            if shas is None:
                self._bookkeeping += db.conn.execute("DELETE FROM mirror_dirty").rowcount
            else:
                self._bookkeeping += db.conn.execute(
                    "DELETE FROM mirror_dirty WHERE sha256 IN (SELECT value FROM json_each(?))",
                    [json.dumps(sorted(shas))]).rowcount

    def plan_dirty_in(self, folders: Collection[str]) -> None:
        """Every content with a file in ``folders`` counts as changed for its collections
        (``plan_dirty``, else kept by triggers, see ``_m_plan_dirty``): what a change of
        collection folders asks of them, the catalog's rows cannot say."""
        with self._tx() as db:
            db.conn.execute(
                """INSERT INTO plan_dirty (sha256) SELECT DISTINCT f.sha256 FROM files f
                   WHERE f.folder IN (SELECT value FROM json_each(?)) AND f.sha256 IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM plan_dirty d WHERE d.sha256 = f.sha256)""",
                [json.dumps(sorted(folders))])

    def plan_dirty_done(self, shas: Collection[str]) -> None:
        """A plan saw these contents and left nothing to do for them (``plan_dirty``)."""
        with self._tx() as db:
            if shas:
                self._bookkeeping += db.conn.execute(
                    "DELETE FROM plan_dirty WHERE sha256 IN (SELECT value FROM json_each(?))",
                    [json.dumps(sorted(shas))]).rowcount

    def mirror_sweep_slice(self, after: str, upto: str | None, limit: int) -> list[str]:
        """One slice of the mirror's verification of every sidecar: the first ``limit``
        contents above ``after`` (and at most ``upto``) in sha256 order, of every content row
        and every mirror or sidecar row (whose content may be gone). Three index ranges of
        at most ``limit`` rows each, merged: a slice costs the same at any library size."""
        high = "~" if upto is None else upto  # above every hex digest
        return self._first_shas([f"{table} WHERE sha256 > ? AND sha256 <= ?"
                                 for table in ("contents", "mirror_videos", "mirror_files")], [after, high], limit)

    def _first_shas(self, sources: Sequence[str], params: list[Any], limit: int) -> list[str]:
        """The first ``limit`` contents in sha256 order among several index ranges, each
        ``SELECT sha256 FROM <source> ORDER BY sha256 LIMIT limit`` (a source: a table and
        its WHERE, bound to ``params``), merged."""
        found: set[str] = set()
        with self._lock:
            for source in sources:
                found.update(row[0] for row in self.db.conn.execute(
                    f"SELECT sha256 FROM {source} ORDER BY sha256 LIMIT ?", [*params, limit]))
        return sorted(found)[:limit]

    def mirror_verify_cursor(self) -> str:
        """Where the mirror's verification of every sidecar last ended a slice ("": none yet)."""
        return self.get_meta("mirror_verify_cursor") or ""

    def mirror_verified_to(self, sha256: str) -> None:
        """The verification reached ``sha256``; a later process starts its own there.
        Bookkeeping: no decision reads it."""
        self.set_info("mirror_verify_cursor", sha256 or None)

    def mirror_details_pulled(self, video_id: str, sha256: str, details: str, now: float) -> bool:
        """Record a successful details pull; True if the details changed."""
        with self._tx() as db:
            row = db.execute("SELECT details FROM mirror_videos WHERE video_id = ?", [video_id]).fetchone()
            changed = row is None or row[0] != details
            db.execute(
                """INSERT INTO mirror_videos (video_id, sha256, details, details_at, checked_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (video_id) DO UPDATE SET sha256 = excluded.sha256,
                     details = excluded.details, checked_at = excluded.checked_at,
                     details_at = CASE WHEN ? THEN excluded.details_at ELSE details_at END,
                     attempts = 0, retry_at = 0, error = NULL""",
                [video_id, sha256, details, now, now, changed],
            )
        return changed

    def mirror_failed(self, video_id: str, sha256: str, error: str, retry_at: float) -> int:
        """Record a failed pull (details or embeddings); returns the consecutive failures."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO mirror_videos (video_id, sha256, attempts, retry_at, error) VALUES (?, ?, 1, ?, ?)
                   ON CONFLICT (video_id) DO UPDATE SET attempts = attempts + 1,
                     retry_at = excluded.retry_at, error = excluded.error""",
                [video_id, sha256, retry_at, error],
            )
            row = db.execute("SELECT attempts FROM mirror_videos WHERE video_id = ?", [video_id]).fetchone()
        return int(row[0])

    def mirror_drop_video(self, video_id: str) -> None:
        """Forget a video's mirror rows (its vector rows become dead space)."""
        with self._tx() as db:
            db.execute("DELETE FROM mirror_segments WHERE video_id = ?", [video_id])
            db.execute("DELETE FROM mirror_videos WHERE video_id = ?", [video_id])
            db.execute(
                "DELETE FROM mirror_fts WHERE rowid = (SELECT fts_rowid FROM mirror_fts_rows WHERE video_id = ?)",
                [video_id],
            )
            db.execute("DELETE FROM mirror_fts_rows WHERE video_id = ?", [video_id])

    def mirror_set_vectors(
        self, video_id: str, segments: Iterable[SegmentInfo], row_start: int, row_count: int, now: float
    ) -> None:
        """A video's segments, whose vectors were just appended at ``row_start``."""
        with self._tx() as db:
            db.execute("DELETE FROM mirror_segments WHERE video_id = ?", [video_id])
            db.conn.executemany(
                "INSERT INTO mirror_segments (video_id, idx, start_s, end_s, option, scope) VALUES (?, ?, ?, ?, ?, ?)",
                [[video_id, s.index, s.start, s.end, s.option, s.scope] for s in segments],
            )
            db.execute(
                """UPDATE mirror_videos SET row_start = ?, row_count = ?, embeddings_at = ?,
                   attempts = 0, retry_at = 0, error = NULL WHERE video_id = ?""",
                [row_start, row_count, now, video_id],
            )

    def mirror_segments(self, video_id: str) -> list[SegmentInfo]:
        rows = self._rows("SELECT * FROM mirror_segments WHERE video_id = ? ORDER BY idx", [video_id])
        return [_segment(r) for r in rows]

    def mirror_segments_at(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], SegmentInfo]:
        out: dict[tuple[str, int], SegmentInfo] = {}
        for video_id, idx in keys:
            rows = self._rows("SELECT * FROM mirror_segments WHERE video_id = ? AND idx = ?", [video_id, idx])
            if rows:
                out[(video_id, idx)] = _segment(rows[0])
        return out

    @contextmanager
    def _vector_read(self) -> Iterator[dict[str, str]]:
        """One read transaction (what it reads agrees with the vector files named), yielding
        the vector files' meta."""
        with self._lock:
            self.db.execute("BEGIN")
            try:
                yield dict(self.db.execute(
                    "SELECT key, value FROM meta WHERE key IN ('mirror_vectors', 'mirror_dim')").fetchall())
            finally:
                self.db.execute("COMMIT")

    def mirror_index_snapshot(self, video_ids: Iterable[str] | None = None, *, from_row: int = 0) -> IndexSnapshot:
        """The current vector files and every live row range (of ``video_ids``; ending past
        ``from_row``), read in one transaction."""
        wanted = None if video_ids is None else json.dumps(sorted(set(video_ids)))
        with self._vector_read() as meta:
            sql = "SELECT video_id, row_start, row_count FROM mirror_videos WHERE row_count > 0"
            params: list[Any] = []
            if wanted is not None:
                sql += " AND video_id IN (SELECT value FROM json_each(?))"
                params.append(wanted)
            if from_row:
                sql += f" AND {_RANGES_FROM}"
                params.append(from_row)
            rows = self.db.execute(sql + " ORDER BY row_start", params).fetchall()
        video_ids, starts, counts = (tuple(column) for column in zip(*rows, strict=True)) if rows else ((), (), ())
        return IndexSnapshot(meta.get("mirror_vectors"), int(meta.get("mirror_dim") or 0), video_ids, starts, counts)

    def mirror_index_head(self) -> IndexHead:
        """The current vector files and the live rows' totals, without the ranges: what a
        one-shot ANN query needs before it asks for the owners of its candidates. Two
        statements (the totals from the partial index on row ranges), in one transaction."""
        with self._vector_read() as meta:
            live, end = self.db.execute(
                "SELECT coalesce(sum(row_count), 0), coalesce(max(row_start + row_count), 0) "
                "FROM mirror_videos WHERE row_count > 0").fetchone()
        return IndexHead(meta.get("mirror_vectors"), int(meta.get("mirror_dim") or 0), int(live), int(end))

    def mirror_row_owners(self, vectors: str, rows: Iterable[int]) -> dict[int, tuple[str, int]] | None:
        """For each live row among ``rows``: (the video owning it, that video's first row),
        one index seek per row in one statement. None if the vector files are no longer
        ``vectors`` (compacted since: row numbers changed; read the head again)."""
        wanted = json.dumps(sorted({int(r) for r in rows}))
        with self._lock:
            self.db.execute("BEGIN")
            try:
                current = self.db.execute("SELECT value FROM meta WHERE key = 'mirror_vectors'").fetchone()
                found = self.db.execute(
                    """SELECT j.value, v.video_id, v.row_start FROM json_each(?) j
                       JOIN mirror_videos v ON v.rowid = (
                           SELECT s.rowid FROM mirror_videos s WHERE s.row_count > 0 AND s.row_start <= j.value
                           ORDER BY s.row_start DESC LIMIT 1)
                       WHERE j.value < v.row_start + v.row_count""", [wanted]).fetchall()
            finally:
                self.db.execute("COMMIT")
        if current is None or current[0] != vectors:
            return None
        return {int(row): (str(video_id), int(start)) for row, video_id, start in found}

    def mirror_ranges_from(self, first: int, limit: int) -> list[tuple[str, int, int]]:
        """Live ranges (video_id, row_start, row_count) holding rows numbered ``first`` or
        above, in row order, at most ``limit`` of them: the rows an ANN index built up to
        ``first`` has not seen yet."""
        with self._lock:
            rows = self.db.execute(
                f"""SELECT video_id, row_start, row_count FROM mirror_videos
                    WHERE row_count > 0 AND {_RANGES_FROM} ORDER BY row_start LIMIT ?""", [first, limit + 1]).fetchall()
        return [(str(v), int(s), int(c)) for v, s, c in rows if s + c > first][:limit]

    def mirror_index_version(self) -> tuple[int, int]:
        """Differs after any commit, by this connection or another: a query may keep its
        index snapshot while this stays the same (reading 100,000s of row ranges is not free)."""
        with self._lock:
            return int(self.db.execute("PRAGMA data_version").fetchone()[0]), self.db.conn.total_changes

    def mirror_relocate(self, starts: Mapping[str, int], vectors: str, dim: int) -> None:
        """Compaction: every video's new first row, and the new vector files, at once."""
        with self._tx() as db:
            db.conn.executemany(
                "UPDATE mirror_videos SET row_start = ? WHERE video_id = ?",
                [[start, video_id] for video_id, start in starts.items()],
            )
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror_vectors', ?)", [vectors])
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror_dim', ?)", [str(dim)])

    def mirror_reset_vectors(self, vectors: str, dim: int) -> None:
        """New, empty vector files (first use, or the remote's dimension changed)."""
        with self._tx() as db:
            db.execute("DELETE FROM mirror_segments")
            db.execute("UPDATE mirror_videos SET row_start = 0, row_count = 0, embeddings_at = NULL")
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror_vectors', ?)", [vectors])
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror_dim', ?)", [str(dim)])

    def mirror_files(self, video_id: str | None = None, *, shas: Collection[str] | None = None) -> list[MirrorFile]:
        """Every sidecar row, or one video's, or those written for these contents."""
        if shas is not None:
            rows = self._rows("SELECT * FROM mirror_files WHERE sha256 IN (SELECT value FROM json_each(?)) "
                              "ORDER BY folder, rel_path", [json.dumps(sorted(shas))])
        elif video_id is None:
            rows = self._rows("SELECT * FROM mirror_files ORDER BY folder, rel_path")
        else:
            rows = self._rows("SELECT * FROM mirror_files WHERE video_id = ? ORDER BY folder, rel_path", [video_id])
        return [_mirror_file(r) for r in rows]

    def mirror_file_written(
        self, folder: Path, rel_path: str, video_id: str, sha256: str, collection: str | None, now: float
    ) -> None:
        with self._tx() as db:
            db.execute(
                """INSERT OR REPLACE INTO mirror_files (folder, rel_path, video_id, sha256, collection, written_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                [str(folder), rel_path, video_id, sha256, collection, now],
            )

    def mirror_file_moved(self, folder: Path, rel_path: str, new_folder: Path, new_rel_path: str) -> None:
        """Sidecars followed their video; written_at 0 makes the next run rewrite the local path."""
        with self._tx() as db:
            db.execute("DELETE FROM mirror_files WHERE folder = ? AND rel_path = ?", [str(new_folder), new_rel_path])
            db.execute(
                "UPDATE mirror_files SET folder = ?, rel_path = ?, written_at = 0 WHERE folder = ? AND rel_path = ?",
                [str(new_folder), new_rel_path, str(folder), rel_path],
            )

    def mirror_file_forget(self, folder: Path, rel_path: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM mirror_files WHERE folder = ? AND rel_path = ?", [str(folder), rel_path])

    def mirror_file_forget_path(self, path: Path) -> None:
        """Forget the sidecar row of the file at ``path``, whichever folder holds it: its
        keys are (an ancestor, the rest of the path), a primary-key lookup each (the
        path's depth of them), never a read of every row."""
        keys = [[str(parent), path.relative_to(parent).as_posix()] for parent in path.parents]
        with self._tx() as db:
            db.execute("DELETE FROM mirror_files WHERE (folder, rel_path) IN "
                       "(SELECT value ->> 0, value ->> 1 FROM json_each(?))", [json.dumps(keys)])

    def mirror_fts_set(self, video_id: str, name: str, paths: str, collections: str, metadata: str) -> None:
        """A video's full-text row; written only if it changed (FTS5 writes are the costly part)."""
        text = [name, paths, collections, metadata]
        with self._tx() as db:
            row = db.execute(
                """SELECT f.rowid, f.name, f.paths, f.collections, f.metadata FROM mirror_fts_rows r
                   JOIN mirror_fts f ON f.rowid = r.fts_rowid WHERE r.video_id = ?""",
                [video_id],
            ).fetchone()
            if row is not None and list(row[1:]) == text:
                return
            if row is not None:
                db.execute("DELETE FROM mirror_fts WHERE rowid = ?", [row[0]])
            cursor = db.execute(
                "INSERT INTO mirror_fts (video_id, name, paths, collections, metadata) VALUES (?, ?, ?, ?, ?)",
                [video_id, *text],
            )
            db.execute(
                "INSERT OR REPLACE INTO mirror_fts_rows (video_id, fts_rowid) VALUES (?, ?)",
                [video_id, cursor.lastrowid],
            )

    def mirror_fts_texts(self, video_ids: Collection[str] | None = None) -> dict[str, tuple[str, str, str, str]]:
        """Every video's full-text row (name, paths, collections, metadata), or these videos',
        in one query: the mirror compares against these rather than read one row per video."""
        sql = """SELECT r.video_id, f.name, f.paths, f.collections, f.metadata FROM mirror_fts_rows r
                 JOIN mirror_fts f ON f.rowid = r.fts_rowid"""
        params: list[Any] = []
        if video_ids is not None:
            sql += " WHERE r.video_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(video_ids)))
        with self._lock:
            rows = self.db.conn.execute(sql, params).fetchall()
        return {row[0]: tuple(row[1:]) for row in rows}

    def mirror_fts_search(
        self, match: str, limit: int, video_ids: Iterable[str] | None = None
    ) -> list[tuple[str, float]]:
        """(video_id, score) best first; ``match`` is an FTS5 query, score is -bm25 (higher is better)."""
        sql = "SELECT video_id, -bm25(mirror_fts) AS score FROM mirror_fts WHERE mirror_fts MATCH ?"
        params: list[Any] = [match]
        if video_ids is not None:
            sql += " AND video_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(set(video_ids))))
        rows = self._rows(sql + " ORDER BY score DESC, video_id LIMIT ?", [*params, limit])
        return [(r["video_id"], float(r["score"])) for r in rows]

    def query_embedding(self, source: str, text: str) -> bytes | None:
        rows = self._rows("SELECT vector FROM query_embeddings WHERE source = ? AND text = ?", [source, text])
        return bytes(rows[0]["vector"]) if rows else None

    def set_query_embedding(self, source: str, text: str, vector: bytes, now: float) -> None:
        if self.readonly:
            self._cache_aside(source, text, vector, now)
            return
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO query_embeddings (source, text, vector, created_at) VALUES (?, ?, ?, ?)",
                [source, text, vector, now],
            )

    def pulls(self) -> dict[str, PullRecord]:
        return {
            r["video_id"]: PullRecord(r["video_id"], r["outcome"], r["path"], r["sha256"], r["detail"],
                                      r["attempts"], r["retry_at"])
            for r in self._rows("SELECT * FROM pulls")
        }

    def pull_recorded(
        self, video_id: str, outcome: str, now: float, *, detail: str = "", path: str | None = None,
        sha256: str | None = None, retry_at: float = 0.0,
    ) -> None:
        """Record what became of a remote-only video (failures count attempts)."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO pulls (video_id, outcome, path, sha256, detail, attempts, retry_at, at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (video_id) DO UPDATE SET outcome = excluded.outcome, path = excluded.path,
                     sha256 = excluded.sha256, detail = excluded.detail, retry_at = excluded.retry_at,
                     at = excluded.at,
                     attempts = CASE WHEN excluded.outcome = 'failed' THEN attempts + 1 ELSE attempts END""",
                [video_id, outcome, path, sha256, detail, int(outcome == "failed"), retry_at, now],
            )

    def register_pulled(
        self, file: LocalFile, sha256: str, video_id: str, name: str, now: float
    ) -> None:
        """A pulled remote video is now a local file: record it as already uploaded, so it is
        never uploaded again, in one transaction with its pull record."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO contents (sha256, size, state, video_id, name, created_at, updated_at, owned)
                   VALUES (?, ?, 'uploaded', ?, ?, ?, ?, 0)""",
                [sha256, file.size, video_id, name, now, now],
            )
            db.execute(
                """INSERT OR REPLACE INTO files (folder, rel_path, size, mtime_ns, inode, sha256, present,
                   first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)""",
                [str(file.folder), file.rel_path, file.size, file.mtime_ns, file.inode, sha256, now, now],
            )
            db.execute(
                """INSERT OR REPLACE INTO pulls (video_id, outcome, path, sha256, detail, attempts, retry_at, at)
                   VALUES (?, 'pulled', ?, ?, '', 0, 0, ?)""",
                [video_id, str(file.path), sha256, now],
            )

    # ---------------------------------------------------------------- imports
    def import_started(self, import_id: str, urls: Sequence[str], folder: Path, subdir: str,
                       now: float) -> None:
        """Before the request: an import whose answer is lost is still on record."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO imports (import_id, urls, folder, subdir, state, started_at, progress_at,
                   next_poll_at) VALUES (?, ?, ?, ?, 'sending', ?, ?, ?)""",
                [import_id, json.dumps(list(urls)), str(folder), subdir, now, now, now],
            )

    def import_update(self, import_id: str, **fields: Any) -> None:
        """Set columns of one import (task_id, state, detail, progress_at, next_poll_at, polls)."""
        allowed = {"task_id", "state", "detail", "progress_at", "next_poll_at", "polls", "complete"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown import fields: {sorted(unknown)}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as db:
            db.execute(f"UPDATE imports SET {assignments} WHERE import_id = ?", [*fields.values(), import_id])

    def imports(self, *, unfinished: bool = False) -> list[ImportRecord]:
        where = "WHERE state NOT IN ('done', 'failed')" if unfinished else ""
        return [
            ImportRecord(r["import_id"], r["task_id"], tuple(json.loads(r["urls"])), Path(r["folder"]), r["subdir"],
                         r["state"], r["detail"], r["started_at"], r["progress_at"], r["next_poll_at"], r["polls"],
                         bool(r["complete"]))
            for r in self._rows(f"SELECT * FROM imports {where} ORDER BY started_at, import_id")
        ]

    def import_videos(self, import_id: str | None = None) -> list[ImportVideoRecord]:
        where, params = ("WHERE import_id = ?", [import_id]) if import_id is not None else ("", [])
        return [
            ImportVideoRecord(r["import_id"], r["video_id"], r["state"], r["name"], r["path"], r["sha256"],
                              r["detail"])
            for r in self._rows(f"SELECT * FROM import_videos {where} ORDER BY at, video_id", params)
        ]

    def import_video_ids(self) -> set[str]:
        """Remote videos of imports: not remote-only videos to pull, whatever their state."""
        return {r["video_id"] for r in self._rows("SELECT video_id FROM import_videos")}

    def import_video_seen(self, import_id: str, video_ids: Iterable[str], now: float) -> list[str]:
        """Record the videos a task reports; the ids not seen before, in order."""
        new: list[str] = []
        with self._tx() as db:
            for video_id in video_ids:
                cursor = db.execute(
                    """INSERT OR IGNORE INTO import_videos (import_id, video_id, state, at)
                       VALUES (?, ?, 'waiting', ?)""", [import_id, video_id, now])
                if cursor.rowcount:
                    new.append(video_id)
            if new:
                db.execute("UPDATE imports SET progress_at = ? WHERE import_id = ?", [now, import_id])
        return new

    def import_video_update(self, import_id: str, video_id: str, state: str, now: float, *, name: str | None = None,
                            path: str | None = None, sha256: str | None = None, detail: str = "") -> None:
        with self._tx() as db:
            db.execute(
                """UPDATE import_videos SET state = ?, name = coalesce(?, name), path = coalesce(?, path),
                   sha256 = coalesce(?, sha256), detail = ?, at = ? WHERE import_id = ? AND video_id = ?""",
                [state, name, path, sha256, detail, now, import_id, video_id],
            )

    def import_video_landed(self, import_id: str, video_id: str, file: LocalFile, sha256: str, name: str,
                            steps: Iterable[str], now: float) -> None:
        """An imported video is now a file in its folder: its content recorded as uploaded (and
        ours: this syncd asked for it) with ``steps`` done, so no pass uploads it again; in one
        transaction with the file row and the import's video."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO contents (sha256, size, state, video_id, name, created_at, updated_at, owned)
                   VALUES (?, ?, 'uploaded', ?, ?, ?, ?, 1)""",
                [sha256, file.size, video_id, name, now, now],
            )
            db.conn.executemany(
                """INSERT OR REPLACE INTO steps (sha256, name, state, percentage, updated_at)
                   VALUES (?, ?, 'done', 100, ?)""", [(sha256, step, now) for step in steps])
            db.execute(
                """INSERT OR REPLACE INTO files (folder, rel_path, size, mtime_ns, inode, sha256, present,
                   first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)""",
                [str(file.folder), file.rel_path, file.size, file.mtime_ns, file.inode, sha256, now, now],
            )
            db.execute(
                """UPDATE import_videos SET state = 'landed', path = ?, sha256 = ?, detail = '', at = ?
                   WHERE import_id = ? AND video_id = ?""",
                [str(file.path), sha256, now, import_id, video_id],
            )

    # ---------------------------------------------------------------- streams
    def streams(self) -> list[StreamRecord]:
        return [StreamRecord(r["url"], r["task_id"], r["options"], r["started_at"])
                for r in self._rows("SELECT * FROM streams ORDER BY started_at, url")]

    def stream_starting(self, url: str, options: str, now: float) -> None:
        """Before the start request: a lost answer leaves a row without a task id."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO streams (url, task_id, options, started_at) VALUES (?, NULL, ?, ?)",
                       [url, options, now])

    def stream_started(self, url: str, task_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE streams SET task_id = ? WHERE url = ?", [task_id, url])

    def stream_stopped(self, url: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM streams WHERE url = ?", [url])

    def _cache_aside(self, source: str, text: str, vector: bytes, now: float) -> None:
        """A read-only catalog's one write: cache a query's embedding (it costs a remote call)
        through a short-lived connection that waits at most a moment for the write lock and
        otherwise skips the cache, so a reader never holds up the sync."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=0.2)
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO query_embeddings (source, text, vector, created_at) VALUES (?, ?, ?, ?)",
                    [source, text, vector, now],
                )
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.debug("query embedding not cached: %s", exc)

    # --- planning in proportion to change (issue 15): set-based facts, not every row ------------
    def any_files(self, folder: Path) -> bool:
        """Whether anything is recorded in ``folder`` (an index seek)."""
        with self._lock:
            return self.db.conn.execute(
                "SELECT 1 FROM files WHERE folder = ? LIMIT 1", [str(folder)]).fetchone() is not None

    def changed_shas(self) -> set[str]:
        """Contents a deletion (or a collection's removal or rename) could follow from: a
        path vanished or rewritten, an upload open, a state neither ``new`` nor uploaded
        (failed, deleted, deleted remotely). A plan sees them all at once, with the mass-delete
        guard. Index ranges empty at rest; the contents still at work (``fill_slices``) are
        planned a slice at a time instead."""
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT sha256 FROM files WHERE present = 0 AND sha256 IS NOT NULL
                   UNION SELECT sha256 FROM superseded
                   UNION SELECT sha256 FROM uploads
                   UNION SELECT sha256 FROM contents WHERE (state != 'uploaded' OR video_id IS NULL)
                     AND state != 'new'""").fetchall()
        return {row[0] for row in rows}

    def fill_slices(self, processing: Sequence[str], pipelines: Mapping[str, Sequence[str]],
                    *, marks: Sequence[str] | None, every: bool) -> None:
        """Decide once a pass which contents to plan a slice at a time (``slice_after``):
        the contents not uploaded yet (state ``new``) and those changed since a plan last
        saw them with nothing left to do (``plan_dirty``). With ``every`` (the rule below
        changed, or catalog recovery) also every content at work: a step not done, a
        processing step or a present file's folder's pipeline missing, unmarked once
        ``marks``' steps are done (when markers are kept). A content at rest is in none of
        them, nor is one waiting on the remote whose rows did not change (a million videos
        processing): their keys go to a TEMP table, an empty one at rest, and a first
        sync's million uploads are never all in memory."""
        queries: list[tuple[str, list[Any]]] = [
            # The range of ``contents_not_uploaded``, filtered: the contents in state new.
            ("SELECT sha256 FROM contents WHERE (state != 'uploaded' OR video_id IS NULL) AND state = 'new'", []),
            ("SELECT sha256 FROM plan_dirty", []),
        ]
        if every:
            queries += self._at_work(processing, pipelines, marks)
        self._fill_slices_from(queries)

    def _fill_slices_from(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """The TEMP table ``slice_after`` reads: the union of ``queries`` (SQL, parameters)."""
        sql = " UNION ".join(q for q, _ in queries)
        with self._lock:
            self.db.execute("DROP TABLE IF EXISTS temp.slices")
            self.db.execute("CREATE TEMP TABLE slices (sha256 TEXT PRIMARY KEY) WITHOUT ROWID")
            self._bookkeeping += self.db.execute(  # this connection's alone: no decision reads it
                f"INSERT INTO temp.slices (sha256) {sql}", [p for _, ps in queries for p in ps]).rowcount

    def _at_work(self, processing: Sequence[str], pipelines: Mapping[str, Sequence[str]],
                 marks: Sequence[str] | None) -> list[tuple[str, list[Any]]]:
        """The queries (SQL, parameters) of every content at work but not new (``fill_slices``)."""
        queries: list[tuple[str, list[Any]]] = [("SELECT DISTINCT sha256 FROM steps WHERE state != 'done'", [])]
        if marks and self.get_meta("mark_rule") == json.dumps(sorted(set(marks))):
            # Kept by the triggers: at rest, an empty range of ``contents_to_mark``, however
            # many of our videos never become ready (never processed for a collection).
            queries.append(("SELECT sha256 FROM contents WHERE owned = 1 AND marked = 0 AND mark_ready = 1", []))
        elif marks is not None:
            # Correlated, so that at rest (every video of ours marked) the steps are not
            # grouped at all: the unmarked contents are an empty range of ``contents_unmarked``.
            # One test a step, the last named first (the collection pipelines, most often the
            # one missing): a content not ready costs one index seek, not one per step.
            ready = "".join(" AND EXISTS (SELECT 1 FROM steps s WHERE s.sha256 = c.sha256 AND s.name = ? "
                            "AND s.state = 'done')" for _ in marks)
            queries.append((f"SELECT sha256 FROM contents c WHERE owned = 1 AND marked = 0{ready}",
                            list(reversed(marks))))
        if self._processed_kept(processing):
            queries.append(("SELECT sha256 FROM contents WHERE processed = 0", []))
        elif processing:
            queries.append((
                f"""SELECT sha256 FROM contents WHERE sha256 NOT IN (
                      SELECT sha256 FROM steps WHERE state = 'done' AND name IN ({", ".join("?" for _ in processing)})
                      GROUP BY sha256 HAVING count(*) = {len(processing)})""", list(processing)))
        for folder, names in pipelines.items():
            if names:
                queries.append((
                    f"""SELECT DISTINCT sha256 FROM files WHERE folder = ? AND present = 1 AND sha256 IS NOT NULL
                          AND sha256 NOT IN (SELECT sha256 FROM steps WHERE state = 'done'
                                             AND name IN ({", ".join("?" for _ in names)})
                                             GROUP BY sha256 HAVING count(*) = {len(names)})""",
                    [folder, *names]))
        return queries

    def slice_after(self, after: str, limit: int) -> list[str]:
        """The next ``limit`` contents at work (``fill_slices``) whose sha256 sorts after
        ``after``, in order; the last (shorter) slice lets the TEMP table go."""
        with self._lock:
            rows = self.db.conn.execute("SELECT sha256 FROM temp.slices WHERE sha256 > ? ORDER BY sha256 LIMIT ?",
                                        [after, limit]).fetchall()
            if len(rows) < limit:
                self.db.execute("DROP TABLE IF EXISTS temp.slices")
        return [row[0] for row in rows]

    def dirty_leaving(self, whole_folders: Collection[str]) -> set[str]:
        """Of the contents whose collection work may have changed (``plan_dirty``), those a
        collection could lose: a member of a collection no present file of theirs in a
        collection folder (``whole_folders``) is under. Planned with their collections whole;
        the other changed contents can only be added (``fill_slices``). One seek a changed
        content with memberships; nothing at rest."""
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT DISTINCT m.sha256 FROM plan_dirty d JOIN memberships m ON m.sha256 = d.sha256
                   WHERE NOT EXISTS (
                     SELECT 1 FROM files f WHERE f.sha256 = m.sha256 AND f.present = 1
                       AND f.folder IN (SELECT value FROM json_each(?))
                       AND f.rel_path >= m.collection || '/' AND f.rel_path < m.collection || '0')""",
                [json.dumps(sorted(whole_folders))]).fetchall()
        return {row[0] for row in rows}

    def collections_in_play(self, seeds: Collection[str], whole_folders: Collection[str],
                            planned: Collection[str] = ()) -> CollectionsInPlay:
        """The collections a plan over ``seeds`` (and ``planned``) decides whole: whether
        each is empty, loses a member or is renamed.

        The collections: the first-level subfolders (in ``whole_folders``, the collection
        folders) of the seeds' files, present or not; the collections they are members of;
        and every known collection with no present file (an emptied or renamed subfolder).
        Their other members need not be planned: a content no change touched has no
        membership its files do not back (``dirty_leaving``). Except the members of those
        with no present file: a renamed subfolder is an emptied collection whose members
        reappear under one new name, all of them (``members``). And whether each holds a
        present file of a content the plan leaves out (``occupied``): such a collection is
        not empty, and no rename's target. ``planned``: contents the plan holds that make no
        collection whole (the pass's first slice, ``fill_slices``). So a clip deleted from a
        subfolder of a million plans that clip, not the million."""
        folders = json.dumps(sorted(whole_folders))
        names_sql = """
            SELECT substr(f.rel_path, 1, instr(f.rel_path, '/') - 1) FROM files f
              WHERE f.sha256 IN (SELECT value FROM json_each(:shas)) AND instr(f.rel_path, '/') > 0
                AND f.folder IN (SELECT value FROM json_each(:folders))
            UNION SELECT m.collection FROM memberships m WHERE m.sha256 IN (SELECT value FROM json_each(:shas))
            UNION SELECT c.name FROM collections c WHERE NOT EXISTS (
              SELECT 1 FROM files f WHERE f.folder IN (SELECT value FROM json_each(:folders)) AND f.present = 1
                AND f.rel_path >= c.name || '/' AND f.rel_path < c.name || '0')"""
        # A present file under one of the collections' subfolders (the names are bound as :names).
        under = """SELECT 1 FROM files f WHERE f.folder IN (SELECT value FROM json_each(:folders))
                     AND f.rel_path >= n.value || '/' AND f.rel_path < n.value || '0' AND f.present = 1"""
        with self._lock:
            names = {r[0] for r in self.db.conn.execute(
                names_sql, {"shas": json.dumps(sorted(seeds)), "folders": folders})}
            bound = {"names": json.dumps(sorted(names)), "folders": folders}
            members = {r[0] for r in self.db.conn.execute(
                f"""SELECT m.sha256 FROM json_each(:names) n JOIN memberships m ON m.collection = n.value
                     WHERE NOT EXISTS ({under})""", bound)}
            occupied = self.db.conn.execute(
                f"""SELECT n.value FROM json_each(:names) n
                     WHERE EXISTS ({under} AND f.sha256 NOT IN (SELECT value FROM json_each(:shas)))""",
                {**bound, "shas": json.dumps(sorted({*seeds, *planned, *members}))}).fetchall()
        return CollectionsInPlay(names, members, {r[0] for r in occupied})

    # --- the last complete remote listing (table ``listing``; ``listing_writer`` writes it) -----
    def listing_writer(self) -> ListingWriter:
        """Where a complete listing is written as it is read, page by page (see ``ListingWriter``)."""
        return ListingWriter(self)

    def listing_generation(self) -> int:
        return int(self.get_meta("listing_generation") or 0)

    def linked_not_listed(self) -> set[str]:
        """Uploaded contents whose video the last complete listing lacks (remote deletions to judge)."""
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT sha256 FROM contents WHERE state = 'uploaded' AND video_id IS NOT NULL
                   AND video_id NOT IN (SELECT video_id FROM listing)""").fetchall()
        return {row[0] for row in rows}

    def listed_among(self, video_ids: Collection[str]) -> set[str]:
        """Those of ``video_ids`` the last complete listing lists."""
        found: set[str] = set()
        ids = sorted(video_ids)
        with self._lock:
            for first in range(0, len(ids), _IN_BATCH):
                found.update(row[0] for row in self.db.conn.execute(
                    "SELECT video_id FROM listing WHERE video_id IN (SELECT value FROM json_each(?))",
                    [json.dumps(ids[first:first + _IN_BATCH])]))
        return found

    def listed_named(self, names: Collection[str]) -> dict[str, tuple[str, ...]]:
        """Name → the videos of the last complete listing under it (oldest first)."""
        found: dict[str, list[str]] = {}
        wanted = sorted(names)
        with self._lock:
            for first in range(0, len(wanted), _IN_BATCH):
                for name, video_id in self.db.conn.execute(
                        """SELECT name, video_id FROM listing WHERE name IN (SELECT value FROM json_each(?))
                           ORDER BY created_at, video_id""", [json.dumps(wanted[first:first + _IN_BATCH])]):
                    found.setdefault(name, []).append(video_id)
        return {name: tuple(ids) for name, ids in found.items()}

    def listed_unaccounted(self) -> list[str]:
        """Videos of the last complete listing that no content links and no import lands
        (pull candidates, before open uploads and earlier pulls), in id order."""
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT video_id FROM listing
                   WHERE video_id NOT IN (SELECT video_id FROM contents WHERE video_id IS NOT NULL)
                     AND video_id NOT IN (SELECT video_id FROM import_videos)
                   ORDER BY video_id""").fetchall()
        return [row[0] for row in rows]

    def linked_among(self, video_ids: Collection[str]) -> set[str]:
        """Those of ``video_ids`` a content links or an import lands."""
        ids = json.dumps(sorted(video_ids))
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT video_id FROM contents WHERE video_id IN (SELECT value FROM json_each(?))
                   UNION SELECT video_id FROM import_videos WHERE video_id IN (SELECT value FROM json_each(?))""",
                [ids, ids]).fetchall()
        return {row[0] for row in rows}

    def listing_differs_from_details(self) -> set[str]:
        """Videos whose entry in the last complete listing says otherwise than their stored
        details (name, creation time, playlist, an upload-side step's status): the mirror
        pulls their details again."""
        return set(self.listing_differs_from_details_of())

    def listing_differs_from_details_of(self, *, changed: bool = False, after: str = "",
                                        limit: int | None = None) -> dict[str, str]:
        """``listing_differs_from_details`` with each video's content (sha256): a mirror run
        that checks the listing covers those contents, not every row. ``changed``: only
        among the videos whose entry or details changed since ``listing_compared``, then
        the first ``limit`` (if given) by video id after ``after``: a remote that changed
        a million entries at once is covered a slice at a time."""
        # CROSS JOIN fixes the order: the changed videos drive the loop (seeks, in video id
        # order: the key of mirror_listing_dirty), not a table.
        source = ("mirror_listing_dirty d CROSS JOIN listing l ON l.video_id = d.video_id CROSS JOIN mirror_videos m"
                  if changed else "listing l JOIN mirror_videos m")
        page = " AND d.video_id > ? ORDER BY d.video_id LIMIT ?" if changed and limit is not None else ""
        with self._lock:
            rows = self.db.conn.execute(
                f"""SELECT l.video_id, m.sha256 FROM {source} ON m.video_id = l.video_id
                   WHERE m.details IS NOT NULL AND m.details != '' AND (
                       json_extract(m.details, '$.name') IS NOT l.name
                       OR json_extract(m.details, '$.created_at') IS NOT l.created_at
                       OR json_extract(m.details, '$.hls_playlist_url') IS NOT l.hls_playlist_url
                       OR EXISTS (SELECT 1 FROM json_each(l.statuses) s
                                  WHERE json_extract(m.details, '$.statuses."' || s.key || '"') IS NOT s.value)){page}""",
                [after, limit] if page else []).fetchall()
        return {row[0]: row[1] for row in rows}

    def listing_compared(self) -> None:
        """The mirror compared the listing with the details (``changed=True``): what changed
        until now is done with. Bookkeeping: no decision reads it."""
        with self._tx() as db:
            self._bookkeeping += db.conn.execute("DELETE FROM mirror_listing_dirty").rowcount

    def known_videos(self) -> KnownVideos:
        """Whether the catalog knows a remote video: a content links it, or a pull (not a
        failed one, nor one a crash cut short: those are tried again) took it. Not the
        listing: a video it lists may still wait for its pull. Asked per video, for the
        few a newest-end read sees, not read whole."""
        return KnownVideos(self)

    def files_of_contents(self, shas: Collection[str]) -> list[FileRecord]:
        """Every file row (present or not) holding one of these contents."""
        columns = "folder, rel_path, size, mtime_ns, inode, sha256, present, first_seen, last_seen, missing_since"
        with self._lock:
            rows = self.db.conn.execute(
                f"""SELECT {columns} FROM files WHERE sha256 IN (SELECT value FROM json_each(?))
                    ORDER BY folder, rel_path""", [json.dumps(sorted(shas))]).fetchall()
        folders: dict[str, Path] = {}
        return [
            FileRecord(folders.get(r[0]) or folders.setdefault(r[0], Path(r[0])), r[1], r[2], r[3], r[4], r[5],
                       bool(r[6]), r[7], r[8], r[9])
            for r in rows
        ]

    def contents_of(self, shas: Collection[str]) -> list[ContentRecord]:
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT sha256, size, state, video_id, name, error, attempts, next_attempt_at, orphaned_since,
                          owned, marked
                   FROM contents WHERE sha256 IN (SELECT value FROM json_each(?)) ORDER BY created_at, sha256""",
                [json.dumps(sorted(shas))]).fetchall()
            steps = self._steps_of(shas)
        return [ContentRecord(*r[:9], steps=steps.get(r[0], {}), owned=bool(r[9]), marked=bool(r[10]))  # type: ignore[misc]
                for r in rows]

    def tracked_videos(self) -> dict[str, int]:
        """Per folder, how many distinct linked videos its file rows hold (the mass-delete guard's base)."""
        with self._lock:
            rows = self.db.conn.execute(
                """SELECT f.folder, count(DISTINCT f.sha256) FROM files f JOIN contents c ON c.sha256 = f.sha256
                   WHERE c.video_id IS NOT NULL GROUP BY f.folder""").fetchall()
        return {row[0]: row[1] for row in rows}

    # --- web UI (syncd/ui/): pages of files by keyset, so page N costs what page 1 does --------
    def files_page(
        self, *, after: tuple[str, str] | None, limit: int, folders: Collection[str],
        rel_prefix: str | None = None, content_states: Collection[str] | None = None,
    ) -> list[tuple[FileRecord, ContentRecord | None]]:
        """Present files of ``folders`` after ``after`` = (folder, rel_path), in that order, with
        their contents (and steps). ``content_states``: only files whose content is in one of
        them (``"new"`` also matches a file with no content row yet)."""
        sql = """SELECT f.*, c.sha256 AS c_sha256, c.size AS c_size, c.state AS c_state, c.video_id AS c_video_id,
                        c.name AS c_name, c.error AS c_error, c.attempts AS c_attempts,
                        c.next_attempt_at AS c_next_attempt_at, c.orphaned_since AS c_orphaned_since
                 FROM files f LEFT JOIN contents c ON c.sha256 = f.sha256
                 WHERE f.present = 1 AND f.folder IN (SELECT value FROM json_each(?))"""
        params: list[Any] = [json.dumps(sorted(folders))]
        if after is not None:
            sql += " AND (f.folder, f.rel_path) > (?, ?)"
            params += list(after)
        if rel_prefix:
            sql += " AND f.rel_path >= ? AND f.rel_path < ?"
            params += [rel_prefix, rel_prefix + "\U0010ffff"]
        if content_states is not None:
            sql += " AND (c.state IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(content_states)))
            sql += " OR c.state IS NULL)" if "new" in content_states else ")"
        rows = self._rows(sql + " ORDER BY f.folder, f.rel_path LIMIT ?", [*params, limit])
        steps = self._steps_of(r["c_sha256"] for r in rows if r["c_sha256"])
        out: list[tuple[FileRecord, ContentRecord | None]] = []
        for r in rows:
            content = None
            if r["c_sha256"]:
                content = ContentRecord(
                    r["c_sha256"], r["c_size"], r["c_state"], r["c_video_id"], r["c_name"], r["c_error"],
                    r["c_attempts"], r["c_next_attempt_at"], r["c_orphaned_since"], steps.get(r["c_sha256"], {}),
                )
            out.append((_file(r), content))
        return out

    def _steps_of(self, shas: Iterable[str]) -> dict[str, dict[str, StepRecord]]:
        out: dict[str, dict[str, StepRecord]] = {}
        wanted = json.dumps(sorted(set(shas)))
        for r in self._rows("SELECT * FROM steps WHERE sha256 IN (SELECT value FROM json_each(?))", [wanted]):
            out.setdefault(r["sha256"], {})[r["name"]] = _step(r)
        return out

    def memberships_of(self, shas: Iterable[str]) -> set[tuple[str, str]]:
        wanted = json.dumps(sorted(set(shas)))
        rows = self._rows("SELECT * FROM memberships WHERE sha256 IN (SELECT value FROM json_each(?))", [wanted])
        return {(r["collection"], r["sha256"]) for r in rows}

    def mirror_details_of(self, video_ids: Iterable[str]) -> dict[str, str]:
        """Stored remote details (JSON) by video id, for the given videos."""
        wanted = json.dumps(sorted(set(video_ids)))
        rows = self._rows("SELECT video_id, details FROM mirror_videos WHERE details != '' "
                          "AND video_id IN (SELECT value FROM json_each(?))", [wanted])
        return {r["video_id"]: r["details"] for r in rows}

    def content_for_video(self, video_id: str) -> ContentRecord | None:
        rows = self._rows("SELECT * FROM contents WHERE video_id = ?", [video_id])
        return self._content(rows[0]) if rows else None

    def files_of(self, sha256: str) -> list[FileRecord]:
        """Every file row (present or not) holding a content."""
        rows = self._rows("SELECT * FROM files WHERE sha256 = ? ORDER BY present DESC, folder, rel_path", [sha256])
        return [_file(r) for r in rows]


# A present file with its content and steps (``iter_present``, ``iter_not_done``).
_PRESENT_COLUMNS = """f.folder, f.rel_path, f.size, f.mtime_ns, f.inode, f.sha256, f.first_seen,
    f.last_seen, c.sha256, c.size, c.state, c.video_id, c.name, c.error, c.attempts,
    c.next_attempt_at, c.orphaned_since, c.owned, c.marked,
    (SELECT json_group_array(json_array(s.name, s.state, s.percentage, s.error, s.attempts, s.next_attempt_at))
     FROM steps s WHERE s.sha256 = c.sha256)"""


@dataclass(frozen=True)
class ScanSummary:
    """What a folder's last scan found that ``syncd status`` reports: empty files, files
    still being written, subfolders that could not be listed, and when."""

    folder: Path
    scanned_at: float
    empty: int
    settling: int
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True)
class CollectionsInPlay:
    """What ``Catalog.collections_in_play`` found for a plan."""

    names: set[str]  # the collections to decide whole (empty, losing a member, renamed)
    members: set[str]  # the members of those with no present file (a rename's, all of them)
    occupied: set[str]  # of ``names``, those holding a present file of a content left out


@dataclass(frozen=True)
class DoneRule:
    """When a folder's file is done (``syncd.sync.report``'s ``done`` state, in SQL): its
    content uploaded, every one of ``steps`` done, and with ``collections`` a file in a
    subfolder a member of the subfolder's collection."""

    folder: Path
    steps: tuple[str, ...]
    collections: bool


_IN_BATCH = 10_000  # ids a statement takes at once (a JSON array)


class ListingWriter:
    """A complete listing written as it is read: each page into a staging table (TEMP:
    this connection's alone, gone with it); ``commit`` swaps it in as the catalog's
    ``listing`` in one transaction, writing only the entries that changed. Until then
    the previous listing stands whole: a read that fails half-way (``close`` without
    ``commit``) leaves it as it was and is no listing. Rows written here are bookkeeping
    (``changes``): the listing's own ``generation`` (``Listing``) tells a new one."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.videos = 0  # distinct videos taken so far
        with catalog._lock:
            catalog.db.execute("DROP TABLE IF EXISTS temp.listing_next")
            catalog.db.execute(f"CREATE TEMP TABLE listing_next ({_LISTING_COLUMNS}) WITHOUT ROWID")

    def __enter__(self) -> ListingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, rows: Sequence[tuple[str, str, str | None, str | None, str]]) -> int:
        """(video_id, name, created_at, hls_playlist_url, statuses JSON) of one page; how
        many were not taken before (the first entry of a video stands)."""
        with self.catalog._lock:
            # One statement a page (its rows as one JSON array), not one per video.
            added = self.catalog.db.execute(
                """INSERT OR IGNORE INTO temp.listing_next (video_id, name, created_at, hls_playlist_url, statuses)
                   SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                          json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(?)""",
                [json.dumps(rows)]).rowcount
            self.catalog._bookkeeping += added
        self.videos += added
        return added

    def restart(self) -> None:
        with self.catalog._lock:
            self.catalog._bookkeeping += self.catalog.db.execute("DELETE FROM temp.listing_next").rowcount
        self.videos = 0

    def commit(self) -> Listing:
        """The staged listing becomes the catalog's, in one transaction; its handle."""
        catalog = self.catalog
        with catalog._tx() as db:
            start = db.conn.total_changes
            db.execute("DELETE FROM listing WHERE video_id NOT IN (SELECT video_id FROM temp.listing_next)")
            db.execute(
                """INSERT INTO listing (video_id, name, created_at, hls_playlist_url, statuses)
                   SELECT video_id, name, created_at, hls_playlist_url, statuses FROM temp.listing_next WHERE true
                   ON CONFLICT (video_id) DO UPDATE SET name = excluded.name, created_at = excluded.created_at,
                       hls_playlist_url = excluded.hls_playlist_url, statuses = excluded.statuses
                   WHERE (listing.name, listing.created_at, listing.hls_playlist_url, listing.statuses)
                         IS NOT (excluded.name, excluded.created_at, excluded.hls_playlist_url, excluded.statuses)""")
            changed = db.conn.total_changes - start
            row = db.execute("SELECT value FROM meta WHERE key = 'listing_generation'").fetchone()
            generation = int(row[0]) if row else 0
            generation += 1 if changed or row is None else 0
            changed += db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('listing_generation', ?)",
                                  [str(generation)]).rowcount
            catalog._bookkeeping += changed
        return Listing(generation, self.videos)

    def close(self) -> None:
        with self.catalog._lock:
            self.catalog.db.execute("DROP TABLE IF EXISTS temp.listing_next")


class KnownVideos:
    """``Catalog.known_videos``: a membership test, one indexed query per video asked."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def __contains__(self, video_id: object) -> bool:
        with self.catalog._lock:
            row = self.catalog.db.conn.execute(
                """SELECT EXISTS (SELECT 1 FROM contents WHERE video_id = ?1)
                       OR EXISTS (SELECT 1 FROM pulls WHERE video_id = ?1 AND outcome != 'failed')""",
                [video_id]).fetchone()
        return bool(row[0])


def _rule_row(rule: DoneRule) -> tuple[tuple[str, ...], bool]:
    """A rule as ``done_rules`` holds it: the order of its steps does not matter."""
    return tuple(sorted(set(rule.steps))), rule.collections


def stored_rule_matches(stored: Mapping[str, tuple[tuple[str, ...], bool]], rule: DoneRule) -> bool:
    """Whether ``files.done`` of the rule's folder was kept under this very rule."""
    return stored.get(str(rule.folder)) == _rule_row(rule)


def _done_sql(rule: DoneRule) -> tuple[str, list[Any]]:
    """An expression over ``f`` (files) and ``c`` (contents, left-joined): 1 if done."""
    steps = tuple(dict.fromkeys(rule.steps))
    sql = "(c.state = 'uploaded'"
    params: list[Any] = []
    if steps:
        sql += (f" AND (SELECT count(*) FROM steps s WHERE s.sha256 = c.sha256 AND s.state = 'done' "
                f"AND s.name IN ({', '.join('?' for _ in steps)})) = {len(steps)}")
        params += steps
    if rule.collections:
        sql += (" AND (instr(f.rel_path, '/') = 0 OR EXISTS (SELECT 1 FROM memberships m WHERE m.sha256 = c.sha256 "
                "AND m.collection = substr(f.rel_path, 1, instr(f.rel_path, '/') - 1)))")
    return sql + ")", params


def _file(r: dict[str, Any], folder: Path | None = None) -> FileRecord:
    return FileRecord(
        folder=folder or Path(r["folder"]),
        rel_path=r["rel_path"],
        size=r["size"],
        mtime_ns=r["mtime_ns"],
        inode=r["inode"],
        sha256=r["sha256"],
        present=bool(r["present"]),
        first_seen=r["first_seen"],
        last_seen=r["last_seen"],
        missing_since=r["missing_since"],
    )


def _step(r: dict[str, Any]) -> StepRecord:
    return StepRecord(r["name"], r["state"], r["percentage"], r["error"], r["attempts"], r["next_attempt_at"])


def _mirror_video(r: dict[str, Any]) -> MirrorVideo:
    return MirrorVideo(
        r["video_id"], r["sha256"], r["details"], r["details_at"], r["checked_at"], r["embeddings_at"],
        r["row_start"], r["row_count"], r["attempts"], r["retry_at"], r["error"],
    )


def _mirror_file(r: dict[str, Any]) -> MirrorFile:
    return MirrorFile(Path(r["folder"]), r["rel_path"], r["video_id"], r["sha256"], r["collection"], r["written_at"])


def _segment(r: dict[str, Any]) -> SegmentInfo:
    return SegmentInfo(r["video_id"], r["idx"], r["start_s"], r["end_s"], r["option"], r["scope"])
