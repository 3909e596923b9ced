"""What each backend declares without a connection: its ``Features`` data (how it groups
videos, its processing steps, its pipelines and their default), for config validation and
for commands that never call the remote (``syncd status``). Nothing here imports HTTP.

The step and pipeline names below are the backends' own vocabulary: they appear nowhere
outside ``syncd/remote/`` and ``syncd/emulator/`` (``tests/remote/test_seam.py`` checks).
"""

from __future__ import annotations

from syncd.remote.base import Features

BACKENDS: tuple[str, ...] = ("mikshi", "memories")

# ---------------------------------------------------------------- Mikshi
#: Upload-side processing every Mikshi video goes through; it counts as processed once all
#: three are done (transcoding is what the pipelines wait for).
MIKSHI_PROCESSING_STEPS = ("thumbnail", "transcoding", "hls")
#: The startable pipelines, by the names users write in a folder's ``pipelines``.
MIKSHI_PIPELINES = ("analyse", "search-process")
MIKSHI = Features(
    grouping="collection",
    processing_steps=MIKSHI_PROCESSING_STEPS,
    pipelines=MIKSHI_PIPELINES,
    default_pipelines=MIKSHI_PIPELINES,
    # Collections accept only fully processed videos: a collection implies both pipelines.
    collection_pipelines=MIKSHI_PIPELINES,
    embeddings_after=("search-process",),
    progress_step="transcoding",
    abilities=frozenset({"chunked", "collections", "processing", "embeddings", "search", "chat",
                         "visualize", "url_import", "media", "proof", "marks", "newest"}),
)

# ---------------------------------------------------------------- memories.ai
#: The one processing step: the service parses every upload by itself (no pipelines).
MEMORIES_PARSE_STEP = "parse"
#: Published per-account limits (memories-public-summary.md, "Rate limits"). get_metadata
#: has no figure of its own: the list figure. ``stream`` has none: a cautious 1/s.
MEMORIES_RATE_LIMITS: dict[str, str | None] = {
    "upload": "1/min",
    "list": "5/s",
    "delete": "5/s",
    "search": "1/s",
    "metadata": "5/s",
    "task_status": "1/s",
    "download": "12/min",
    "stream": "1/s",
}
MEMORIES = Features(grouping="tag", processing_steps=(MEMORIES_PARSE_STEP,),
                    direct_upload_max_bytes=3 * 1000 ** 3, rate_limits=MEMORIES_RATE_LIMITS,
                    search_library=True,
                    # The service names a video by its file, less the extension; it keeps
                    # no per-instance text (instance marks are tags).
                    video_names="stem", instance_notes=False,
                    abilities=frozenset({"tags", "processing", "search", "url_import", "streams",
                                         "batch_delete", "status_batch", "proof", "marks"}))

_FACTS = {"mikshi": MIKSHI, "memories": MEMORIES}


def backend_facts(backend: str) -> Features:
    """The declared features of ``backend`` (data only: no ability is bound)."""
    try:
        return _FACTS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}") from None
