"""A faithful local emulator of the Mikshi developer API (and its pre-signed object store),
on the plumbing in ``syncd.emulator``. Every Mikshi test, demo and benchmark runs against it
over real HTTP on loopback::

    from syncd.emulator.mikshi import Emulator, EmulatorConfig, Faults

    with Emulator(EmulatorConfig(data_dir=tmp, api_keys=["key-a"])) as emu:
        httpx.get(emu.base_url + "/api/backend/v1/developer/videos/list",
                  headers={"X-API-Key": "key-a"})

Modules, each owning one thing:

    config.py        EmulatorConfig
    emulator.py      Emulator: its store, context, routes and hooks; Python-side admin helpers
    hooks.py         X-API-Key, FastAPI-style and S3-style (XML) fault / error answers
    context.py       Context: what a handler needs (store, signer, caches, credits)
    store.py         all SQLite + blob files
    signing.py       pre-signed URL HMAC
    s3.py            object store: part PUT, object GET (Range)
    api_uploads.py   multipart, preprocess, direct, YouTube, upload status
    api_videos.py    list/details/delete, HLS proxy, analyse / search-process
    api_collections.py  collections
    api_ai.py        search, visualize, embeddings, chat (SSE)
    admin.py         /_admin/ records of this service (videos, uploads, objects, users, ...)
    views.py         how the API shows a video / upload
    timeline.py      lazy pipeline progress from stored timestamps
    failures.py      which attempts fail
    hls.py           HLS renditions: MPEG-TS segments remuxed with PyAV

Choices where the API doc is silent (the emulator is meant to be at least as strict):

* Ownership: another user's video is 403 ``Not authorized for this video`` (embeddings:
  404); another user's upload 403 ``Not authorized for this upload``; another user's
  object at preprocess is treated as missing (400).
* Multipart: part-url checks the upload exists and is the caller's (404/403). S3 errors at
  complete / list-parts / abort are ``{"detail": "An error occurred (<Code>) when calling
  the <Operation> operation: ..."}`` (a FastAPI service re-raising botocore errors); an
  empty parts list is 400 MalformedXML; parts uploaded but not listed are discarded;
  complete answers 200 ``{"message", "s3_object_name", "etag"}`` (multipart ETag
  ``"<md5-of-md5s>-N"``). Part PUTs also check Content-MD5 (400 BadDigest) and a 5 GiB
  cap (400 EntityTooLarge). A tampered and an expired URL are both 403 AccessDenied
  (XML). Pre-signed GET URLs are method-specific (HEAD needs its own signature, as on S3).
* Preprocess: 409 check first (so a retried preprocess gets 409), then the object must be
  completed and the caller's (400), then ``video_id`` must be the one issued with the
  upload (400). ``name`` is required (1+ chars).
* Direct upload: cap 100,000,000 bytes; Content-Length beyond cap + 1 MiB is rejected at
  once (413, connection closed when the body is too large to drain); missing ``file`` 422.
* YouTube: only http(s) youtube.com / youtu.be URLs with a video id are accepted, anything
  else is ``YOUTUBE_IMPORT_FAILED``. Markers in the URL (lowercased, ``-``/``_`` removed)
  pick an error: unavailable, private, agerestricted, geoblocked, copyright
  (VIDEO_BLOCKED), authrequired, authexpired, authmissing, authinvalid, importfailed.
  Success stores a few synthetic bytes and a 30-300 s, 1280x720 duration.
* Timing: see ``timeline``. Analyse/search-process show ``pending`` briefly after
  initiate (queued) before ``running``. Initiate answers 200 ``enqueued``.
* Lists: videos/list ``limit`` 1-100 (default 100), ``skip`` >= 0, ``sort_by``
  created_at|name, ``sort_order`` asc|desc, unknown values 422; ``status`` item values
  uploaded|analysed|search_processed|processed (``uploaded`` = no pipeline done; the
  ``analysed`` / ``search_processed`` filters test one pipeline). ``analyse_status`` /
  ``search_process_status`` are null until initiated. ``thumbnail_path`` and
  ``hls_playlist_path`` are null until that task completed. ``created_at`` has seconds
  precision (sorting uses the exact time).
* HLS: the proxy serves ``master.m3u8``, ``index.m3u8`` (VOD) and its MPEG-TS segments
  ``segment-N.ts`` (see ``hls``: remuxed from the stored object on first request, about
  2 s each), all behind the key, as the doc requires of every manifest and segment fetch.
  An object PyAV cannot read as a video has a master playlist but no media playlist (404).
* Collections: names unique per user, case-sensitive; update treats null fields as not
  provided; ``thumbnails`` is null when a collection has no videos. Collections are listed
  newest first. Add-video order: 404 collection, 403, 404 video, 400 other user, 400 not
  processed, 409.
* Search/visualize/chat ``top_k`` 1-100 (default 5). Unknown ids in ``video_ids`` count as
  not owned (403). Chat on a video without search-process done answers without moments.
* Credits: 402 ``{"detail": "Insufficient credits"}``.
* Faults: 429 body ``{"detail": "Rate limit exceeded. Retry later."}`` with a
  ``Retry-After`` in whole seconds (``Faults.retry_after`` rounded up; 0 for fast tests);
  on the object store, 503 SlowDown without one, as S3 does; injected 500/503
  alternate (``Faults.error_statuses`` picks). Idle keep-alive connections close after
  ``keepalive_seconds`` (5 s).
* Auth errors: ``{"message": "Missing API key. ..."}`` / ``{"message": "Invalid API key."}``.
"""

from syncd.emulator.config import Faults
from syncd.emulator.mikshi.config import EmulatorConfig
from syncd.emulator.mikshi.emulator import Emulator

__all__ = ["Emulator", "EmulatorConfig", "Faults"]
