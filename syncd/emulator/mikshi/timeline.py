"""Pipeline progress, computed lazily from timestamps stored in the database.

No background workers: a status is a pure function of (record, now), so progress survives
restarts and stays consistent across threads.

Upload processing (duration ``T`` = the video's ``processing_seconds``) runs three tasks in
overlapping windows, expressed as fractions of ``T``::

    thumbnail    0.0 .. 0.4
    transcoding  0.1 .. 0.7
    hls          0.6 .. 1.0     (needs transcoding: stays pending forever if it failed)

Before its window a task is ``pending`` (0 %), inside ``in_progress`` with a rising
percentage (0..99), after it ``completed`` (100). A doomed task turns ``failed`` halfway
through its window, keeping the percentage it had reached.

Analyse / search-process runs (duration ``S``): ``pending`` (queued) for the first 10 %,
then ``running`` with a rising percentage, ``done`` (100) at ``S``; a doomed run turns
``failed`` at ``S/2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.emulator.mikshi.store import RunRecord, VideoRecord

UPLOAD_TASKS = ("thumbnail", "transcoding", "hls")
PIPELINES = ("analyse", "search-process")

_WINDOWS = {"thumbnail": (0.0, 0.4), "transcoding": (0.1, 0.7), "hls": (0.6, 1.0)}
_QUEUED_FRACTION = 0.1


@dataclass(frozen=True)
class TaskState:
    status: str
    percentage: int | None
    error: str | None

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "percentage": self.percentage, "error": self.error}


def _progress(elapsed: float, start: float, end: float) -> int:
    if end <= start:
        return 100
    return max(0, min(99, int(100 * (elapsed - start) / (end - start))))


def upload_task(video: VideoRecord, task: str, now: float) -> TaskState:
    """State of one upload-processing task (thumbnail | transcoding | hls)."""
    total = video.processing_seconds
    elapsed = now - video.processing_started_at
    if task == "hls" and video.fail_pipeline == "transcoding":
        trans = upload_task(video, "transcoding", now)
        if trans.status == "failed":
            return TaskState("pending", 0, None)
    lo, hi = _WINDOWS[task]
    start, end = lo * total, hi * total
    if video.fail_pipeline == task:
        fail_at = (start + end) / 2
        if elapsed >= fail_at:
            return TaskState("failed", _progress(fail_at, start, end), video.fail_error)
    if total <= 0 or elapsed >= end:
        return TaskState("completed", 100, None)
    if elapsed < start:
        return TaskState("pending", 0, None)
    return TaskState("in_progress", _progress(elapsed, start, end), None)


def upload_states(video: VideoRecord, now: float) -> dict[str, TaskState]:
    return {task: upload_task(video, task, now) for task in UPLOAD_TASKS}


def upload_error(video: VideoRecord, now: float) -> str | None:
    """``error_message`` of the status endpoint: the failed task's error, if any."""
    for state in upload_states(video, now).values():
        if state.status == "failed":
            return state.error
    return None


def run_state(run: RunRecord | None, now: float,
              cache_seconds: float | None = None) -> TaskState:
    """State of an analyse / search-process run; no run yet is ``pending`` at 0 %.

    With ``cache_seconds``, a run finished longer ago than that is answered the way the
    service's database fallback does after the Redis entry expired: status only,
    ``percentage`` and ``error`` null.
    """
    if run is None:
        return TaskState("pending", 0, None)
    elapsed = now - run.started_at
    total = run.seconds
    if run.fails and elapsed >= total / 2:
        if cache_seconds is not None and elapsed - total / 2 > cache_seconds:
            return TaskState("failed", None, None)
        return TaskState("failed", _progress(total / 2, 0, total), run.error)
    if total <= 0 or elapsed >= total:
        if cache_seconds is not None and elapsed - total > cache_seconds:
            return TaskState("done", None, None)
        return TaskState("done", 100, None)
    if elapsed < _QUEUED_FRACTION * total:
        return TaskState("pending", 0, None)
    return TaskState("running", _progress(elapsed, 0, total), None)
