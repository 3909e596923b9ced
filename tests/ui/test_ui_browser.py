"""The web UI in a real browser: Debian's headless Chromium driven by Playwright (issue 17).

The UI runs under uvicorn in a thread over a synced emulator world; the browser loads
pages as a person would. Screenshots of the main pages go to ``artifacts/ui/`` (git
ignores it) for a person to look at. Outside CI, a machine without Chromium skips these
tests; in CI (``CI=true``) a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from syncd.remote.mikshi import MikshiClient
from syncd.ui.server import UiServer
from tests.conftest import FAST_RETRY, KEY, REPO, admin_videos, free_port
from tests.ui_world import UiWorld, ui_world

CHROMIUM = os.environ.get("SYNCD_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "artifacts" / "ui"
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from playwright import sync_api  # noqa: E402 - after the check above names what is missing


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiWorld, str]]:
    with ui_world(tmp_path_factory.mktemp("ui-browser")) as world:
        listen = ("127.0.0.1", free_port())
        server = UiServer.start(world.config(), listen)
        try:
            yield world, f"http://127.0.0.1:{listen[1]}"
        finally:
            server.close()


@pytest.fixture(scope="module")
def page(served: tuple[UiWorld, str]) -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            tab = context.new_page()
            tab.set_default_timeout(15_000)
            yield tab
        finally:
            browser.close()


def test_grid_shows_the_videos_with_thumbnails(served: tuple[UiWorld, str], page: Any) -> None:
    _, base = served
    page.goto(base + "/")
    cards = page.locator(".card")
    assert cards.count() == 4
    names = sorted(page.locator(".card .name").all_inner_texts())
    assert names == ["car-entering-gate.mp4", "forklift-loading-gate.mp4", "pallet-stack-night.mp4",
                     "truck-at-barrier.mp4"]
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.card img')).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".badge.s-done").count() == 4
    page.screenshot(path=str(SHOTS / "grid.png"), full_page=True)
    page.goto(base + "/status")
    assert "4" in page.locator(".count b").first.inner_text()
    # The folder table: each folder's last scan (from the catalog) and its health.
    scan_cell = page.locator("h2:has-text('Folders') + table tr").nth(1).locator("td").nth(2)
    assert scan_cell.inner_text().endswith(" ago)"), scan_cell.inner_text()
    page.screenshot(path=str(SHOTS / "status.png"), full_page=True)


def test_search_finds_the_moment_and_plays_from_that_second(served: tuple[UiWorld, str], page: Any) -> None:
    world, base = served
    video_id, start, query = _known_segment(world)
    page.goto(base + "/")
    page.fill("header input[name=q]", query)
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/search?q=*")
    first = page.locator(".hits .card").first
    assert "forklift-loading-gate.mp4" in first.locator(".name").inner_text()
    assert f"?t={start:g}" in (first.locator("a.name").get_attribute("href") or "")
    page.screenshot(path=str(SHOTS / "search.png"), full_page=True)
    first.locator("a.name").click()
    page.wait_for_url(f"**/watch/**?t={start:g}")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.5")
    assert abs(page.evaluate("document.getElementById('player').currentTime") - start) < 0.5
    page.screenshot(path=str(SHOTS / "watch.png"))


def test_ask_streams_an_answer(served: tuple[UiWorld, str], page: Any) -> None:
    _, base = served
    page.goto(base + "/watch/0/warehouse-cam3/forklift-loading-gate.mp4")
    page.fill("#ask textarea", "What is the forklift doing?")
    page.click("#ask button")
    page.wait_for_selector(".msg.assistant.done")
    answer = page.locator(".msg.assistant").last
    assert "forklift-loading-gate.mp4" in answer.inner_text() and len(answer.inner_text()) > 40
    assert int(answer.get_attribute("data-chunks") or 0) >= 3  # streamed: shown piece by piece
    page.fill("#ask textarea", "And after that?")
    page.click("#ask button")
    page.wait_for_function("document.querySelectorAll('.msg.assistant.done').length == 2")
    page.screenshot(path=str(SHOTS / "ask.png"))


def test_a_gone_local_file_plays_the_remote_hls_and_the_browser_never_sees_the_key(
        served: tuple[UiWorld, str], page: Any) -> None:
    world, base = served
    gone = world.drop / "parking-north" / "truck-at-barrier.mp4"
    keep = world.root / "truck.keep"
    os.replace(gone, keep)  # the catalog still tracks it; the remote has it, with HLS
    requests: list[Any] = []

    def record(request: Any) -> None:
        requests.append(request)

    page.on("request", record)
    try:
        page.goto(base + "/watch/0/parking-north/truck-at-barrier.mp4?t=5")
        assert "playing the remote HLS copy" in page.locator(".player .sub").inner_text()
        page.wait_for_function("document.getElementById('player').readyState >= 2")  # a frame decoded
        assert page.evaluate("document.getElementById('player').src").startswith("blob:")  # hls.js (MSE)
        assert abs(page.evaluate("document.getElementById('player').currentTime") - 5) < 0.5  # from ?t=5
        page.evaluate("void document.getElementById('player').play()")
        page.wait_for_function("document.getElementById('player').currentTime > 5.5")  # it plays on
        assert page.evaluate("document.getElementById('player').videoWidth") == 160
        page.screenshot(path=str(SHOTS / "watch-remote-hls.png"))
        html = page.content()
        page.goto("about:blank")  # no request of the player is in flight when the file returns
    finally:
        page.remove_listener("request", record)
        os.replace(keep, gone)
    hls = [r.url for r in requests if "/hls/" in r.url]
    assert any(u.endswith("/master.m3u8") for u in hls) and any(u.endswith("/index.m3u8") for u in hls)
    assert any(u.endswith(".ts") and not u.endswith("/segment-0.ts") for u in hls)  # a later segment
    # Every request went to the UI, none to the remote, and none carried the key.
    elsewhere = [r.url for r in requests if not r.url.startswith((base + "/", f"blob:{base}/", "about:"))]
    assert elsewhere == []
    for r in requests:
        assert KEY not in r.url + repr(r.all_headers()) + (r.post_data or "")
    assert KEY not in html


def test_traversal_gets_404(served: tuple[UiWorld, str], page: Any) -> None:
    _, base = served
    for url in ("/media/0/..%2F..%2Fconfig.yaml", "/media/0/warehouse-cam3/..%2F..%2F..%2Fetc%2Fpasswd"):
        response = page.goto(base + url)
        assert response is not None and response.status == 404
    assert KEY not in page.content()


def _known_segment(world: UiWorld) -> tuple[str, float, str]:
    """A segment of the forklift clip past its start, and a query (the name plus that
    segment's caption) whose best match across every video is that segment, as computed
    from the API's own vectors."""
    videos = {v["name"]: v["video_id"] for v in admin_videos(world.admin)}
    video_id = next(i for n, i in videos.items() if "forklift-loading-gate" in n)
    captions = world.admin.get(f"/videos/{video_id}").json()["segments"]
    with MikshiClient(world.emu.base_url, KEY, retry=FAST_RETRY) as client:
        segments = {vid: client.embeddings_video(vid) for vid in videos.values()}
        for seg in captions[1:]:
            query = f"forklift {seg['caption']}"
            q = np.array(client.embeddings_text(query))
            best = max((float(np.dot(q, s.vector) / np.linalg.norm(s.vector)), vid, s.start)
                       for vid, segs in segments.items() for s in segs)
            if best[1] == video_id and best[2] == seg["start_seconds"]:
                return video_id, best[2], query
    raise AssertionError("no segment of the forklift clip is the best match for its own caption")
