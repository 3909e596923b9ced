"""Settings of the memories.ai emulator. Defaults are the published figures; tests lower them.

Rate limits are per account (shared by all its keys) and per endpoint group:
``memories-public-summary.md`` ("Rate limits — the platform page"). ``metadata`` and
``stream`` have no published figure: get_metadata gets the list figure (5/s, the syncd
issue's contract) and streams none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syncd.emulator.config import Faults, _check_share
from syncd.units import parse_rate

#: Endpoint group -> published limit ("count/period"); None = not limited.
PUBLISHED_RATE_LIMITS: dict[str, str | None] = {
    "upload": "1/min",       # /upload and /scraper_url (an upload from social media)
    "list": "5/s",
    "delete": "5/s",
    "search": "1/s",
    "metadata": "5/s",
    "task_status": "1/s",
    "download": "12/min",
    "stream": None,
}

#: The doc says "at most 3 GB"; decimal gigabytes are the stricter reading.
MAX_UPLOAD_BYTES = 3 * 1000 ** 3


@dataclass
class MemoriesConfig:
    """Everything fixed for the life of one memories.ai emulator. Keys are not in ``repr``."""

    data_dir: Path
    api_keys: list[str] = field(default_factory=list, repr=False)
    #: Keys that belong to a named account (also accepted); other keys are each their own
    #: account. Rate limits and credits are per account, "shared by all keys".
    key_accounts: dict[str, str] = field(default_factory=dict, repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    #: UNPARSE -> PARSE/FAIL takes this long after a video is stored.
    parse_seconds: float = 6.0
    #: A scraper task's videos appear spread over this long after the task starts.
    task_seconds: float = 5.0
    #: Share of videos whose parsing fails (drawn from a hash: reproducible).
    fail_share: float = 0.0
    #: Videos whose name matches this fnmatch pattern always fail parsing.
    fail_name_glob: str | None = None
    #: Credits per account (one per upload, scraped URL, search and download); None = unlimited.
    credits: int | None = None
    #: Endpoint group -> "count/period" or None (unlimited). Missing groups get the published one.
    rate_limits: dict[str, str | None] = field(default_factory=dict)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    #: Live streams are enabled per account by the vendor; here for every account by default.
    streams_enabled: bool = True
    segment_seconds: float = 5.0
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    keepalive_seconds: float = 5.0
    bucket: str = "mavi-resource"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.api_keys = list(self.api_keys)
        if any(not k for k in [*self.api_keys, *self.key_accounts, *self.key_accounts.values()]):
            raise ValueError("API keys and account names must not be empty")
        _check_share("fail_share", self.fail_share)
        for name in ("parse_seconds", "task_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.credits is not None and self.credits < 0:
            raise ValueError("credits must not be negative")
        if self.max_upload_bytes <= 0:
            raise ValueError("max_upload_bytes must be positive")
        unknown = set(self.rate_limits) - set(PUBLISHED_RATE_LIMITS)
        if unknown:
            raise ValueError(f"unknown rate limit groups: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(PUBLISHED_RATE_LIMITS)})")
        self.rate_limits = {**PUBLISHED_RATE_LIMITS, **self.rate_limits}
        for value in self.rate_limits.values():
            if value is not None:
                parse_rate(value)  # raises ValueError naming the bad value

    def limit_of(self, group: str) -> tuple[float, float] | None:
        value = self.rate_limits.get(group)
        return None if value is None else parse_rate(value)
