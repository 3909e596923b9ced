"""The local mirror: sidecar files, the local search index, ask-by-path and pulling
remote videos down.

Modules, each owning one thing (nothing is imported here, so ``catalog`` can use
``records`` without an import cycle):

    records.py   frozen records shared with the catalog
    atomic.py    crash-safe file writes and moves (temp + fsync + rename)
    sidecars.py  sidecar paths (beside / directory) and their two formats
    names.py     making remote names safe as local file names
    index.py     the search index: float32 vector files + catalog rows + FTS5
    mirror.py    the job run after each pass: details, embeddings, sidecars, index
    pull.py      downloading remote-only videos into a watched folder
    search.py    local (vector / full-text) and remote search
    ask.py       chat with a video by its local path
"""
