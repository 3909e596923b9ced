"""The web UI: the local mirror in a browser (browse, search, play, ask, status).

A thin, read-only layer over the catalog and the search index, like datasette over
SQLite: server-rendered Jinja pages, each also available as JSON, plain GET forms (a
search is a URL), a little plain JavaScript only as enhancement, every asset shipped
in this package (no CDN, works offline).

* ``app.py``: the Starlette routes (pages, media, thumbnails, HLS relay, ask).
* ``browse.py``: the grid, a keyset-paged walk over the catalog's files.
* ``files.py``: which local files a request may read, and thumbnails.
* ``auth.py``: loopback by default; a password for anything else.
* ``server.py``: uvicorn, for `syncd ui` and inside the daemon.
"""
