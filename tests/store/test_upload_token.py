"""Uploads in flight are recorded by an opaque resume token (issue #12): the catalog keeps
whatever the backend needs without knowing its fields, and catalogs from before keep their
open uploads (and their parts) across the migration."""

from __future__ import annotations

from pathlib import Path

import sqlite3

from syncd.store.catalog import CATALOG_FILE, MIGRATIONS, Catalog, Database, _m_upload_token
from syncd.remote.base import UploadSession
from syncd.remote.mikshi import _object_name, _token, _video_id


def test_an_open_upload_survives_the_migration_to_a_token(tmp_path: Path) -> None:
    db = Database(sqlite3.connect(tmp_path / CATALOG_FILE))
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    before = MIGRATIONS.index(_m_upload_token)
    for migration in MIGRATIONS[:before]:  # the catalog as syncd left it before tokens
        migration(db)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(before)])
    db.execute("INSERT INTO contents (sha256, size, state, created_at, updated_at) VALUES ('s1', 10, 'uploading', 0, 0)")
    db.execute("INSERT INTO uploads (upload_id, sha256, object_name, video_id, part_size, started_at) "
               "VALUES ('u1', 's1', 'uploads/x/y.mp4', 'v-1', 5242880, 0)")
    db.execute("INSERT INTO upload_parts VALUES ('u1', 1, '\"etag1\"', 5242880)")
    db.conn.commit()
    db.close()

    with Catalog.open(tmp_path) as catalog:
        [record] = catalog.uploads()
        session = UploadSession(record.upload_id, record.token)
        assert (_object_name(session), _video_id(session)) == ("uploads/x/y.mp4", "v-1")
        assert record.parts == {1: '"etag1"'} and record.part_size == 5242880
        catalog.upload_ended("u1")  # parts still cascade with their upload
        assert catalog.uploads() == []


def test_the_catalog_keeps_a_token_as_it_is(tmp_path: Path) -> None:
    token = _token("obj", "vid")
    with Catalog.open(tmp_path) as catalog:
        catalog.upload_started("s" * 64, "u9", token, 5 << 20)
        assert [u.token for u in catalog.uploads()] == [token]
