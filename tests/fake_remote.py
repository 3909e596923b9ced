"""A ``Remote`` whose methods are plain function fields (litestream's mock ReplicaClient):
a test sets exactly the calls it expects and the faults it injects; any other call fails
the test loudly. For executor/engine unit tests that need no HTTP.

    remote = FakeRemote(upload=lambda path, name: "v1", list_videos=lambda: [])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from syncd.remote.base import Features, ListingSink, RemoteVideo, VideoDetails


def unexpected(name: str) -> Callable[..., NoReturn]:
    def call(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"unexpected call: {name}{args}")

    return call


@dataclass
class FakeRemote:
    description: str = "fake remote"
    features: Callable[[], Features] = lambda: Features()
    upload: Callable[[Path, str], str] = field(default_factory=lambda: unexpected("upload"))
    list_videos: Callable[[], list[RemoteVideo]] = field(default_factory=lambda: unexpected("list_videos"))
    video_details: Callable[[str], VideoDetails] = field(default_factory=lambda: unexpected("video_details"))
    delete_video: Callable[[str], None] = field(default_factory=lambda: unexpected("delete_video"))
    download_video: Callable[[str, BinaryIO], int] = field(default_factory=lambda: unexpected("download_video"))
    check: Callable[[], str] = lambda: "fake: fine"
    close: Callable[[], None] = lambda: None
    calls: list[str] = field(default_factory=list)

    def list_into(self, sink: ListingSink[RemoteVideo]) -> None:
        """The listing ``list_videos`` gives (its faults too), as one page."""
        sink.add(self.list_videos())

    def recording(self, name: str, result: Any = None) -> Callable[..., Any]:
        """A function field that records its calls (``calls``) and returns ``result``
        (or raises it, if it is an exception)."""
        def call(*args: Any) -> Any:
            self.calls.append(f"{name}{args}")
            if isinstance(result, BaseException):
                raise result
            return result() if callable(result) else result

        return call
