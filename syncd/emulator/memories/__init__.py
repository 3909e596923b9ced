"""A local emulator of the memories.ai Visual Search API (v1) and its v2 host (download,
live streams), on one loopback port, on the shared plumbing in ``syncd.emulator`` (HTTP
server and lifecycle, router, multipart parser, request log, fault injection, clock, shared
admin routes)::

    from syncd.emulator.memories import MemoriesConfig, MemoriesEmulator

    with MemoriesEmulator(MemoriesConfig(data_dir=tmp, api_keys=["sk-mavi-a"])) as emu:
        httpx.post(emu.v1_url + "/list_videos", headers={"Authorization": "sk-mavi-a"},
                   json={"page": 1, "size": 20})

Modules:

    config.py     MemoriesConfig (timings, credits, rate limits = published figures)
    envelope.py   v1 {code,msg,data,success,failed} / v2 integer-code answers; business codes
    hooks.py      Authorization header (no Bearer), fault and unknown-path answers
    routes.py     api_route(): each route's rate-limit group, checked after auth
    ratelimit.py  per-account sliding-window limits (0429 / HTTP 429)
    params.py     strict parameter reading (0001 / 0003)
    store.py      SQLite + files addressed by bucket/blob
    videos.py     parse status over time, how each endpoint shows a video
    api_v1.py     upload, get_metadata, list_videos, delete_videos, search
    api_tasks.py  scraper_url, get_video_ids_by_task_id
    api_v2.py     download, stream/start, stream/stop
    admin.py      /_admin/ routes for this service
    emulator.py   MemoriesEmulator: its store, context, routes and hooks; admin helpers

Choices where the pages are silent or ambiguous (each is at least as strict as the doc):

* v1 business errors are always sent with HTTP 200 (the summary: "HTTP status often 200").
  v2 errors use the download page's shape ``{code, msg, success: false, failed: true}``
  with ``code`` = HTTP status; "Resource does not exist" is 400 (the v2 code list has no 404).
* Rate limits: sliding windows per account and endpoint group (upload = /upload and
  /scraper_url; metadata 5/s and stream unlimited have no published figure).
  Refused requests do not count. v1 answers ``0429``; v2 answers HTTP 429. No Retry-After
  (none is documented).
* Upload: one ``file`` part, extension .mp4/.avi/.mkv/.mov, part type ``video/*``, at most
  3,000,000,000 bytes ("3 GB", decimal is stricter), streamed to disk; ``datetime_taken``
  exactly ``yyyy-MM-dd HH:mm:ss`` (read as UTC); latitude and longitude together and in
  range; ``tags`` repeated and/or ``tags[i]``; empty tags refused. ``videoName`` is the
  file name without extension. Credits: one per upload, scraped URL and download (search
  is free); 0402 / 402.
* list_videos: ``page`` required (>= 1), ``size`` default 20; JSON numbers only (no "1");
  ``status`` only PARSE/UNPARSE/FAIL (FAILED refused with the live-enum parse error);
  newest first. Capture metadata and tags appear, and metadata filters match, only once a
  video is PARSE (its "summary row" exists); tags are then the user's, two scene tags and
  ``api``. get_metadata shows tags (user tags + ``api``) from the start, numbers as JSON
  numbers, and ``data: null`` for an unknown, deleted or other-namespace video_no.
* delete_videos: a JSON array of 1..100 strings; another account's or namespace's ids are
  ignored (success); an id deleted before makes the answer ``0409`` (the rest of the batch
  is still deleted).
* search: ``data`` is the list of hits; BY_IMAGE is refused (0003); only PARSE videos.
* Tasks: each URL yields a video spread over ``task_seconds``; markers in the URL:
  private/blocked/drm/unavailable -> FAIL, notfound -> no video. Unknown task -> videos [].
* Streams: there is no documented call listing running streams; ``/_admin/streams`` shows
  them. Stopping a stopped stream is 200; an unknown or another account's task_id is 400.
* Each key is its own account unless ``key_accounts`` names its account: limits and
  credits are per account, across its keys.
"""

from syncd.emulator.memories.config import MemoriesConfig
from syncd.emulator.memories.emulator import MemoriesEmulator

__all__ = ["MemoriesConfig", "MemoriesEmulator"]
