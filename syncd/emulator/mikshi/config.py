"""The Mikshi emulator's static settings, ``EmulatorConfig``.

Defaults are faithful to the API doc; tests lower the timings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syncd.emulator.config import Faults, _check_share

MiB = 1024 * 1024

#: Pipelines a failure can be injected into (upload processing + the two optional ones).
FAILABLE_PIPELINES = ("thumbnail", "transcoding", "hls", "analyse", "search-process")


@dataclass
class EmulatorConfig:
    """Everything fixed for the life of one emulator process.

    ``api_keys`` is excluded from ``repr`` so keys never reach logs by accident.
    """

    data_dir: Path
    api_keys: list[str] = field(default_factory=list, repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    min_part_size: int = 5 * MiB
    processing_seconds: float = 6.0
    pipeline_seconds: float = 6.0
    url_ttl_seconds: int = 900
    direct_upload_max_bytes: int = 100 * 1000 * 1000
    collections_cache_seconds: float = 300.0
    segment_seconds: float = 5.0
    fail_share: float = 0.0
    fail_pipeline: str = "analyse"
    fail_name_glob: str | None = None
    credits: int | None = None
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    #: A finished analyse/search-process run's progress stays in "Redis" this long; after
    #: that its status endpoint falls back to the database: percentage and error are null.
    status_cache_seconds: float = 3600.0
    #: Idle keep-alive connections are closed after this long (uvicorn's default is 5 s).
    keepalive_seconds: float = 5.0
    bucket: str = "mikshi-dev-uploads"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.api_keys = list(self.api_keys)
        if any(not k for k in self.api_keys):
            raise ValueError("API keys must not be empty")
        if self.fail_pipeline not in FAILABLE_PIPELINES:
            raise ValueError(f"fail_pipeline must be one of {', '.join(FAILABLE_PIPELINES)}")
        _check_share("fail_share", self.fail_share)
        if self.min_part_size < 0 or self.direct_upload_max_bytes < 0:
            raise ValueError("sizes must not be negative")
        for name in ("processing_seconds", "pipeline_seconds", "collections_cache_seconds",
                     "status_cache_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.segment_seconds <= 0:
            raise ValueError("segment_seconds must be positive")
        if self.url_ttl_seconds < 1:
            raise ValueError("url_ttl_seconds must be at least 1")
        if self.credits is not None and self.credits < 0:
            raise ValueError("credits must not be negative")
