"""The web UI in-process (Starlette's TestClient) against a real synced mirror (issue 17)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from syncd.store.catalog import Catalog
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.models import LocalFile
from syncd.ui.app import create_app
from syncd.ui.browse import browse
from syncd.ui.server import build_app
from tests.conftest import KEY, free_port, run_syncd, syncd_env, wait_for, write_config
from tests.ui_world import UiWorld, ui_world

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorld]:
    with ui_world(tmp_path_factory.mktemp("ui")) as w:
        yield w


@pytest.fixture
def ui(world: UiWorld) -> Iterator[TestClient]:
    with TestClient(build_app(world.config()), base_url=LOCAL) as client:
        yield client


def test_grid_lists_every_video_with_state_duration_and_thumbnail(ui: TestClient) -> None:
    videos = ui.get("/index.json").json()["videos"]
    assert sorted(v["rel_path"] for v in videos) == sorted([
        "parking-north/car-entering-gate.mp4", "parking-north/truck-at-barrier.mp4",
        "warehouse-cam3/forklift-loading-gate.mp4", "warehouse-cam3/pallet-stack-night.mp4"])
    assert {v["state"] for v in videos} == {"done"}
    assert {v["rel_path"]: v["duration"] for v in videos}["warehouse-cam3/pallet-stack-night.mp4"] == 9
    page = ui.get("/")
    assert page.status_code == 200 and "forklift-loading-gate.mp4" in page.text
    thumb = ui.get(videos[0]["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] in ("image/png", "image/jpeg")


def test_filters_by_state_folder_and_collection(ui: TestClient) -> None:
    assert ui.get("/index.json?state=failed").json()["videos"] == []
    assert len(ui.get("/index.json?state=done").json()["videos"]) == 4
    names = [v["rel_path"] for v in ui.get("/index.json?collection=parking-north").json()["videos"]]
    assert names == ["parking-north/car-entering-gate.mp4", "parking-north/truck-at-barrier.mp4"]
    assert ui.get("/?state=failed").text.count("No videos here") == 1


def test_remote_thumbnail_is_fetched_once_then_cached(world: UiWorld, ui: TestClient) -> None:
    video = ui.get("/index.json").json()["videos"][1]
    first = ui.get(video["thumb"])
    assert first.headers["content-type"] == "image/png"  # the emulator's thumbnail, not a local frame
    before = len(world.requests("get-video-details"))
    again = ui.get(video["thumb"])
    assert again.content == first.content
    assert len(world.requests("get-video-details")) == before  # served from the state dir cache
    assert (world.root / "state" / "ui" / "thumbnails" / video["sha256"]).read_bytes() == first.content


def test_local_frame_thumbnail_without_a_key(world: UiWorld, tmp_path: Path) -> None:
    config = world.config()
    app = create_app(config.__class__(**{**_fields(config), "state_dir": world.root / "state"}), open_remote=None)
    with TestClient(app, base_url=LOCAL) as client:
        video = client.get("/index.json").json()["videos"][2]
        cache = world.root / "state" / "ui" / "thumbnails" / video["sha256"]
        cache.unlink(missing_ok=True)
        thumb = client.get(video["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content.startswith(b"\xff\xd8") and len(thumb.content) > 1000  # a real frame, 320 px wide


def _fields(config: Config) -> dict[str, object]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def test_search_ranks_like_syncd_search_and_links_the_second(world: UiWorld, ui: TestClient) -> None:
    from tests.conftest import run_syncd

    cli = run_syncd(world.config_path, "search", "forklift gate", "--json", "--top-k", "5")
    expected = [(h["path"], h["start"]) for h in __import__("json").loads(cli.stdout)]
    body = ui.get("/search.json", params={"q": "forklift gate"}).json()
    assert body["mode"] == "meaning"
    assert [(h["path"], h["start"]) for h in body["hits"][:5]] == expected
    first = body["hits"][0]
    assert first["watch"].endswith(f"?t={first['start']:g}") or first["start"] == 0
    # The query's embedding is cached: the same search again asks the remote nothing.
    before = len(world.requests("embeddings"))
    assert ui.get("/", params={"q": "forklift gate"}).status_code == 200
    assert len(world.requests("embeddings")) == before


def test_player_serves_ranges_and_carries_the_second(ui: TestClient) -> None:
    page = ui.get("/watch/0/warehouse-cam3/forklift-loading-gate.mp4?t=6")
    assert page.status_code == 200
    assert 'src="/media/0/warehouse-cam3/forklift-loading-gate.mp4#t=6"' in page.text
    whole = ui.get("/media/0/warehouse-cam3/forklift-loading-gate.mp4")
    part = ui.get("/media/0/warehouse-cam3/forklift-loading-gate.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"


def test_gone_local_file_plays_the_remote_hls_through_the_ui(world: UiWorld, ui: TestClient) -> None:
    gone = world.drop / "parking-north" / "truck-at-barrier.mp4"
    keep = world.root / "truck.keep"
    os.replace(gone, keep)
    try:
        page = ui.get("/watch/0/parking-north/truck-at-barrier.mp4?format=json").json()
        assert page["source_kind"] == "remote HLS"
        html = ui.get("/watch/0/parking-north/truck-at-barrier.mp4?t=5").text
        assert f'data-hls="{page["source"]}"' in html and "#t=" not in html  # hls.js starts it at ?t=
        assert ui.get("/static/hls.light.min.js").status_code == 200  # shipped, no CDN
        master = ui.get(page["source"])
        assert master.status_code == 200 and "index.m3u8" in master.text and "http" not in master.text
        index = ui.get(page["source"].replace("master.m3u8", "index.m3u8"))
        names = [line for line in index.text.splitlines() if line and not line.startswith("#")]
        assert len(names) >= 2 and all("/" not in name for name in names)  # relative: relayed too
        segment = ui.get(page["source"].replace("master.m3u8", names[1]))
        assert segment.headers["content-type"] == "video/mp2t" and segment.content[0] == 0x47
        assert KEY not in master.text + index.text
    finally:
        os.replace(keep, gone)


def test_ask_streams_tokens_and_keeps_the_history_it_is_given(world: UiWorld, ui: TestClient) -> None:
    video_id = ui.get("/index.json").json()["videos"][0]["video_id"]
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with ui.stream("POST", f"/ask/{video_id}", json={"question": "what happens?", "history": history}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert text.count("event: token") >= 2 and text.rstrip().endswith("event: done\ndata: {}")
    with_history = world.requests("chat")[-1]["bytes_in"]
    with ui.stream("POST", f"/ask/{video_id}", json={"question": "what happens?"}) as r:
        "".join(r.iter_text())
    without = world.requests("chat")[-1]["bytes_in"]
    assert with_history > without + len("hihello")  # prior turns resent (the remote is stateless)
    refused = ui.post(f"/ask/{video_id}", json={"question": "x"}, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    assert ui.post(f"/ask/{video_id}", json={"question": " "}).status_code == 400


def test_ask_works_without_script_too(world: UiWorld, ui: TestClient) -> None:
    page = ui.post("/watch/0/warehouse-cam3/forklift-loading-gate.mp4", data={"question": "What happens?"})
    assert page.status_code == 200
    assert 'class="msg user">What happens?' in page.text and "forklift-loading-gate.mp4" in page.text.split(
        'class="msg assistant">')[1]
    foreign = ui.post("/watch/0/warehouse-cam3/forklift-loading-gate.mp4", data={"question": "x"},
                      headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403


def test_grid_shows_upload_and_pipeline_progress(tmp_path: Path) -> None:

    folder = tmp_path / "drop"
    config_path = write_config(tmp_path, "http://127.0.0.1:9")
    with Catalog.open(tmp_path / "state") as writer:
        writer.record_scan(folder, [(LocalFile(folder, "big.mp4", 40 * 2**20, 1, 1), "a" * 64),
                                    (LocalFile(folder, "mid.mp4", 10, 2, 2), "b" * 64)], (), 1.0)
        writer.update_content("a" * 64, state="uploading")
        writer.upload_started("a" * 64, "u1", "token", 10 * 2**20)
        writer.part_uploaded("u1", 1, "etag1", 10 * 2**20)
        writer.video_registered("b" * 64, "v2", "mid.mp4")
        writer.update_content("b" * 64, state="uploaded")
        writer.set_step("b" * 64, "transcoding", "running", 40.0)
    from syncd.config import load_config

    config = load_config(config_path, {"SYNCD_TEST_KEY": KEY})
    with TestClient(create_app(config), base_url=LOCAL) as client:
        cards = {c["rel_path"]: c for c in client.get("/index.json").json()["videos"]}
        page = client.get("/").text
        assert client.get("/index.json?state=uploading").json()["videos"][0]["rel_path"] == "big.mp4"
    assert cards["big.mp4"]["state"] == "uploading" and cards["big.mp4"]["upload_percent"] == 25.0
    assert cards["mid.mp4"]["state"] == "processing"
    assert cards["mid.mp4"]["steps"]["transcoding"] == {"state": "running", "percentage": 40.0}
    assert "uploading 25%" in page and "transcoding running 40%" in page


@pytest.mark.parametrize("url", [
    "/media/0/..%2Fconfig.yaml", "/media/0/warehouse-cam3/..%2F..%2Fconfig.yaml", "/media/0/%2Fetc%2Fpasswd",
    "/media/7/warehouse-cam3/forklift-loading-gate.mp4", "/media/0/warehouse-cam3/not-there.mp4",
    "/watch/0/..%2F..%2Fconfig.yaml", "/thumb/..%2Fcatalog.db", "/static/..%2F..%2Fconfig.py",
    "/media/0/.syncd-trash", "/hls/not-a-video/master.m3u8",
])
def test_no_request_reads_outside_the_watched_folders(ui: TestClient, url: str) -> None:
    assert ui.get(url).status_code == 404


def test_a_symlink_out_of_the_folder_is_not_followed(world: UiWorld, ui: TestClient) -> None:
    folder = world.drop / "warehouse-cam3"
    outside = world.root / "outside" / "warehouse-cam3"
    outside.parent.mkdir(exist_ok=True)
    os.replace(folder, outside)
    os.symlink(outside, folder)  # the tracked path now leads out of the watched folder
    try:
        assert ui.get("/media/0/warehouse-cam3/forklift-loading-gate.mp4").status_code == 404
    finally:
        os.unlink(folder)
        os.replace(outside, folder)


def test_the_api_key_never_reaches_a_page(world: UiWorld, ui: TestClient) -> None:
    video = ui.get("/index.json").json()["videos"][0]
    for url in ("/", "/index.json", "/status", "/status.json", "/search?q=gate", video["watch"],
                "/static/app.js", f"/hls/{video['video_id']}/master.m3u8"):
        assert KEY not in ui.get(url).text


def test_status_page_counts_and_refreshes(ui: TestClient) -> None:
    data = ui.get("/status.json").json()
    assert data["counts"] == {"done": 4} and data["total"] == 4 and data["pending"] == []
    page = ui.get("/status")
    assert '<meta http-equiv="refresh"' in page.text


def test_loopback_only_without_a_password(world: UiWorld) -> None:
    with TestClient(build_app(world.config()), base_url="http://attacker.example") as client:
        assert client.get("/").status_code == 403  # DNS rebinding: a foreign Host is refused


def test_a_password_guards_every_request(world: UiWorld) -> None:
    app = build_app(world.config(SYNCD_UI_PASSWORD="s3cret-pass"))
    with TestClient(app, base_url="http://192.0.2.1:8470") as client:
        assert client.get("/").status_code == 401
        assert client.get("/static/style.css").status_code == 401
        assert client.get("/", auth=("anyone", "wrong")).status_code == 401
        assert client.get("/", auth=("anyone", "s3cret-pass")).status_code == 200
        assert client.get("/", headers={"Authorization": "Bearer s3cret-pass"}).status_code == 200


def test_non_loopback_listen_needs_a_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9", ui={"listen": "0.0.0.0:8470"})
    from syncd.config import load_config

    with pytest.raises(ConfigError, match="ui.listen.*password"):
        load_config(config, {"SYNCD_TEST_KEY": KEY})
    assert load_config(config, {"SYNCD_TEST_KEY": KEY, "SYNCD_UI_PASSWORD": "pw"}).ui.listen == ("0.0.0.0", 8470)


def test_reads_while_a_writer_holds_the_catalog(world: UiWorld, ui: TestClient) -> None:
    """The sync writing (an open write transaction) does not stop a page."""
    writer = sqlite3.connect(world.root / "state" / "catalog.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert ui.get("/index.json").status_code == 200
        assert ui.get("/search.json", params={"q": "forklift gate"}).status_code == 200
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_keyset_pages_cost_the_same_at_any_depth(tmp_path: Path) -> None:
    """20,000 files: a page deep in the grid runs the same statements as the first,
    each through the primary-key index (counted, not timed; without ANALYZE statistics
    SQLite's plan does not depend on the table's size, and 100,000 cost 5x the set-up)."""
    folder = tmp_path / "drop"
    config_path = write_config(tmp_path, "http://127.0.0.1:9")
    with Catalog.open(tmp_path / "state") as writer:
        files = [(LocalFile(folder, f"cam{i // 1000:03d}/clip-{i:06d}.mp4", 10, i, i), f"{i:064x}")
                 for i in range(20_000)]
        writer.record_scan(folder, files, (), 1.0)
    from syncd.config import load_config

    config = load_config(config_path, {"SYNCD_TEST_KEY": KEY})
    catalog = Catalog.open_readonly(config.state_dir)
    statements: list[str] = []
    catalog.db.conn.set_trace_callback(statements.append)
    try:
        first = browse(config, catalog, limit=60)
        counted_first = len(statements)
        cursor = first.next_cursor
        for _ in range(3):
            page = browse(config, catalog, limit=60, cursor=cursor)
            cursor = page.next_cursor
        statements.clear()
        deep = browse(config, catalog, limit=60, cursor=_cursor_at(folder, 19_000))
        assert len(statements) == counted_first
        assert [c.rel_path for c in deep.cards][:2] == ["cam019/clip-019001.mp4", "cam019/clip-019002.mp4"]
        plan = catalog.db.conn.execute("EXPLAIN QUERY PLAN " + _files_query(statements)).fetchall()
        assert any("USING INDEX" in str(row) or "PRIMARY KEY" in str(row) for row in plan), plan
        assert not any("USE TEMP B-TREE FOR ORDER BY" in str(row) for row in plan), plan
    finally:
        catalog.close()


def _cursor_at(folder: Path, i: int) -> str:
    from syncd.ui.browse import encode_cursor

    return encode_cursor(folder, f"cam{i // 1000:03d}/clip-{i:06d}.mp4")


def _files_query(statements: list[str]) -> str:
    return next(s for s in statements if "FROM files f" in s)


def test_the_ui_does_not_block_the_writer(world: UiWorld) -> None:
    """A read-only connection: a writer's transaction starts and commits while the UI reads."""
    catalog = Catalog.open_readonly(world.root / "state")
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            catalog.db.execute("CREATE TABLE nope (x)")
        done = threading.Event()

        def write() -> None:
            with Catalog.open(world.root / "state") as writer:
                writer.set_meta("ui-test", "1")
                writer.set_meta("ui-test", None)
            done.set()

        catalog.db.execute("BEGIN")
        catalog.files()  # a read transaction held open
        thread = threading.Thread(target=write)
        thread.start()
        thread.join(10)
        catalog.db.execute("COMMIT")
        assert done.is_set()
    finally:
        catalog.close()


# ------------------------------------------------------------------ the commands
def _config_with(world: UiWorld, tmp_path: Path, **ui: object) -> Path:
    import yaml

    data = yaml.safe_load(world.config_path.read_text())
    data["ui"] = ui
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "syncd", "-c", str(config), *args],
                                env=syncd_env(), stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes], log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(errors="replace")
    assert KEY not in text
    return text


def _videos(port: int) -> int:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/index.json", timeout=5)
    except httpx.TransportError:
        return -1
    return len(response.json()["videos"]) if response.status_code == 200 else -1


def test_the_daemon_serves_the_ui_and_syncd_ui_reads_beside_it(world: UiWorld, tmp_path: Path) -> None:
    """`syncd run` with ui.listen serves the pages; `syncd ui` works while the daemon holds
    the state directory (it only reads)."""
    daemon_port, ui_port = free_port(), free_port()
    config = _config_with(world, tmp_path, listen=f"127.0.0.1:{daemon_port}")
    daemon = _start(config, "run", log=tmp_path / "daemon.log")
    ui = None
    try:
        wait_for(lambda: _videos(daemon_port) == 4, 60, "the daemon's UI", lambda: (tmp_path / "daemon.log").read_text())
        ui = _start(config, "ui", "--listen", f"127.0.0.1:{ui_port}", log=tmp_path / "ui.log")
        wait_for(lambda: _videos(ui_port) == 4, 60, "syncd ui", lambda: (tmp_path / "ui.log").read_text())
        assert f"open http://127.0.0.1:{ui_port}/" in (tmp_path / "ui.log").read_text()
    finally:
        try:
            if ui is not None:
                _stop(ui, tmp_path / "ui.log")
        finally:
            _stop(daemon, tmp_path / "daemon.log")
    assert ui is not None and ui.returncode == 0 and daemon.returncode == 0


def test_syncd_ui_refuses_an_open_listen_without_a_password(world: UiWorld, tmp_path: Path) -> None:
    result = run_syncd(world.config_path, "ui", "--listen", "0.0.0.0:8470")
    assert result.returncode == 2 and "password" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    config = _config_with(world, tmp_path, listen="0.0.0.0:8470")
    result = run_syncd(config, "status")
    assert result.returncode == 2 and "ui.listen" in result.stderr and "Traceback" not in result.stderr


def test_status_lists_the_trash_and_folder_problems(tmp_path: Path) -> None:
    from syncd.config import load_config
    from syncd.models import TRASH_DIR

    config_path = write_config(tmp_path, "http://127.0.0.1:9", folders=[
        {"path": str(tmp_path / "drop")}, {"path": str(tmp_path / "cams"), "require_marker": True}])
    Catalog.open(tmp_path / "state").close()
    trashed = tmp_path / "drop" / TRASH_DIR / "cam" / "old.mp4"
    trashed.parent.mkdir(parents=True)
    trashed.write_bytes(b"x" * 2048)
    config = load_config(config_path, {"SYNCD_TEST_KEY": KEY})
    with TestClient(create_app(config), base_url=LOCAL) as client:
        data = client.get("/status.json").json()
        page = client.get("/status").text
    assert data["trash"] == 1 and data["trashed"][0]["path"] == str(trashed)
    assert data["folders"][0]["problem"] == ""
    assert data["folders"][1]["problem"] == (f"{tmp_path / 'cams'}: marker .syncd-folder is missing "
                                             f"(run `syncd init-folder {tmp_path / 'cams'}` if this is the right folder)")
    assert str(trashed) in page and "2.0 KiB" in page


def test_syncd_ui_before_any_sync_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    result = run_syncd(config, "ui", "--listen", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "run `syncd sync`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _stored_library(root: Path, done: int, not_done: int = 3) -> Config:
    """A catalog of ``done`` finished files and ``not_done`` new ones in one folder, reached
    without uploads (as ``bench_scale`` does), with its done rule and a last scan recorded."""
    from syncd.config import load_config
    from syncd.remote.facts import MIKSHI_PROCESSING_STEPS, backend_facts
    from syncd.store.catalog import ScanSummary
    from syncd.sync.report import done_rules

    folder = root / "drop"
    config = load_config(write_config(root, "http://127.0.0.1:9", folders=[
        {"path": str(folder), "collections": "none", "pipelines": []}]), {"SYNCD_TEST_KEY": KEY})
    files = [(LocalFile(folder, f"cam{i // 1000:03d}/clip-{i:06d}.mp4", 10, i, i), f"{i:064x}")
             for i in range(done + not_done)]
    with Catalog.open(config.state_dir) as writer:
        writer.record_scan(folder, files, (), 1.0)
        writer.link_finished([(sha, f"video-{n}", f.rel_path) for n, (f, sha) in enumerate(files[:done])],
                             MIKSHI_PROCESSING_STEPS)
        writer.set_done_rules(done_rules(config.folders, backend_facts("mikshi")))
        writer.record_scan_summary(ScanSummary(folder, 1_700_000_000.0, empty=2, settling=1))
    return config


def _status_statements(config: Config) -> tuple[dict[str, object], list[str]]:
    """The status page's JSON twin, and the SQL statements the page sent."""
    statements: list[str] = []
    app = create_app(config)
    with TestClient(app, base_url=LOCAL) as client:
        app.state.ui.catalog.db.conn.set_trace_callback(statements.append)
        data = client.get("/status.json").json()
        assert client.get("/status").status_code == 200
    return data, statements


def test_status_page_reads_stored_counts_and_scans_whatever_the_file_count(tmp_path: Path) -> None:
    """The page refreshes every 10 s: at 10x the files it sends the same statements
    (counted through SQLite's trace callback), and builds rows only for files not done."""
    few, many = _stored_library(tmp_path / "few", 200), _stored_library(tmp_path / "many", 2000)
    (small, sent_few), (large, sent_many) = _status_statements(few), _status_statements(many)
    assert small["counts"] == {"done": 200, "new": 3} and large["counts"] == {"done": 2000, "new": 3}
    assert len(small["pending"]) == len(large["pending"]) == 3  # type: ignore[arg-type]
    assert len(sent_many) == len(sent_few), set(sent_many) ^ set(sent_few)
    assert 0 < len(sent_few) < 60, sent_few


def test_status_page_shows_each_folders_last_scan(tmp_path: Path) -> None:
    """As `syncd status`: when each folder was last scanned and what that scan found
    (files still being written, empty files, unreadable subfolders), from the catalog."""
    import time

    from syncd.store.catalog import ScanSummary

    config = _stored_library(tmp_path, 5)
    drop = config.folders[0].path
    data, _ = _status_statements(config)
    [folder] = data["folders"]  # type: ignore[misc]
    assert folder["files"] == 8 and folder["problem"] == ""
    assert folder["scanned_at"] == 1_700_000_000.0 and (folder["empty"], folder["settling"]) == (2, 1)
    assert folder["notes"] == ["1 still being written", "2 empty file(s) skipped"]
    assert re.fullmatch(r"\d+d(\d+h)?", folder["scanned_ago"])  # years ago: whole hours

    with Catalog.open(config.state_dir) as writer:
        writer.record_scan_summary(ScanSummary(drop, time.time() - 40, empty=0, settling=0, unreadable=("locked",)))
    app = create_app(config)
    with TestClient(app, base_url=LOCAL) as client:
        [folder] = client.get("/status.json").json()["folders"]
        page = client.get("/status").text
    assert folder["problem"].startswith(f"{drop}: cannot read {drop / 'locked'}; the rest of the folder syncs")
    assert folder["notes"] == [] and folder["unreadable"] == ["locked"]
    assert "<th>Last scan</th>" in page and time.strftime("%Y-%m-%d", time.localtime()) in page
    assert "s ago)" in page and f"cannot read {drop / 'locked'}" in page


def test_status_page_before_a_folders_first_scan(tmp_path: Path) -> None:
    from syncd.config import load_config

    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"), {"SYNCD_TEST_KEY": KEY})
    Catalog.open(config.state_dir).close()
    data, _ = _status_statements(config)
    [folder] = data["folders"]  # type: ignore[misc]
    assert folder["scanned_at"] is None and folder["scanned_ago"] is None and folder["notes"] == []
    with TestClient(create_app(config), base_url=LOCAL) as client:
        assert "not yet" in client.get("/status").text
