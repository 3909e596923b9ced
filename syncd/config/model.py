"""The config model: typed frozen dataclasses the rest of syncd takes, and the API key as a ``Secret``."""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from syncd.remote.facts import BACKENDS  # the names `remote.backend` accepts: the backends' own list

CONFIG_ENV = "SYNCD_CONFIG"
DEFAULT_CONFIG_NAME = "config.yaml"
CREDENTIAL_NAME = "api-key"  # systemd LoadCredential=api-key:/path → $CREDENTIALS_DIRECTORY/api-key
# S3-style multipart limits: every part but the last must be at least 5 MiB.
MIN_PART_SIZE = 5 * 2**20
MAX_PART_SIZE = 5 * 2**30


# --------------------------------------------------------------------------- secrets


class Secret:
    """A credential. ``repr``/``str`` are masked; ``reveal()`` is the one way out."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant-time, so comparing keys leaks nothing through timing.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Secret is immutable")

    # Pickles end up in files, caches and other processes: refuse outright.
    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    # Immutable, so copies may share it (and copy.deepcopy(config) keeps working).
    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self


# --------------------------------------------------------------------------- the typed config


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    backend: str
    base_url: str  # http(s), no trailing slash
    api_key: Secret
    api_key_source: str  # where the key came from, for messages: "$SYNCD_API_KEY", "file /x", ...
    timeout: float  # seconds per request
    max_retries: int
    v2_base_url: str | None = None  # memories: download/streams host; None = its default
    unique_id: str | None = None  # memories: the namespace; None = "default"
    #: Overrides of the backend's published rates: (group, "count/period" or None = unpaced).
    #: Pairs, not a dict, so the config stays hashable.
    rate_limits: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class FolderConfig:
    path: Path  # absolute, normalised; may not exist yet (unmounted disks are a runtime matter)
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    collections: str  # "subfolder" | "none"
    pipelines: tuple[str, ...]  # pipelines the backend declares, in the order written
    delete_remote: bool
    on_remote_delete: str  # "trash" | "delete" | "keep"
    require_marker: bool
    remove_empty_collections: bool


@dataclass(frozen=True, slots=True)
class UploadConfig:
    part_size: int  # bytes, MIN_PART_SIZE..MAX_PART_SIZE
    concurrency: int  # 1..32
    settle_seconds: float
    direct_upload_below: int  # bytes; 0 = never use direct upload
    max_attempts: int
    retry_backoff: float  # seconds before the first retry; doubles per attempt


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    max_delete_percent: float  # 0..100
    delete_grace: float  # seconds
    delete_wait: float = 3600.0  # seconds a deletion waits at most for unsettled files
    max_proof_download: int = 1 << 30  # bytes: catalog recovery downloads no larger original to compare


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    rescan: float  # seconds
    remote_poll: float  # seconds
    deletion_check: float = 3600.0  # seconds: the complete remote listing (remote deletions)


@dataclass(frozen=True, slots=True)
class MirrorConfig:
    interval: float  # seconds
    sidecars: str  # "beside" | "directory"
    sidecar_dir: Path | None  # set exactly when sidecars == "directory"
    embeddings: bool
    pull_remote: bool
    pull_into: Path | None  # one of the folder paths; defaults to the first folder


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    listen: tuple[str, int] | None  # (host, port), or None for no metrics endpoint


@dataclass(frozen=True, slots=True)
class UiConfig:
    listen: tuple[str, int] | None  # (host, port) the daemon serves the web UI on; None: only `syncd ui`
    password: Secret  # Secret("") = none; required for a non-loopback listen
    password_source: str  # for messages: "$SYNCD_UI_PASSWORD", "file /x" or "none"


UI_DEFAULT_LISTEN = ("127.0.0.1", 8470)  # what `syncd ui` binds when ui.listen is null


def is_loopback(host: str) -> bool:
    """A host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """One live camera stream (``streams:``); the options are sent as they are at start."""

    url: str
    enable_content_moderation: bool = False
    enable_logo_detection: bool = False
    fps: int = 1
    max_logos: int = 5

    def options(self) -> dict[str, object]:
        return {"enable_content_moderation": self.enable_content_moderation,
                "enable_logo_detection": self.enable_logo_detection, "fps": self.fps,
                "max_logos": self.max_logos}


@dataclass(frozen=True, slots=True)
class Config:
    remote: RemoteConfig
    state_dir: Path
    folders: tuple[FolderConfig, ...]
    upload: UploadConfig
    safety: SafetyConfig
    schedule: ScheduleConfig
    mirror: MirrorConfig
    metrics: MetricsConfig
    ui: UiConfig
    log_level: str  # "debug" | "info" | "warning" | "error"
    source: Path  # the config file, absolute
    instance: str = "syncd"  # this syncd's name on a (possibly shared) account
    streams: tuple[StreamConfig, ...] = ()  # live camera streams the daemon keeps running

    def folder_for(self, path: Path | str) -> FolderConfig | None:
        """The watched folder that contains ``path`` (or is it), else None.

        Purely lexical: relative paths are taken against the working directory and
        symlinks are not followed. Folders never nest, so at most one matches.
        """
        target = Path(os.path.normpath(os.path.abspath(path)))
        for folder in self.folders:
            if target == folder.path or target.is_relative_to(folder.path):
                return folder
        return None


# --------------------------------------------------------------------------- value parsers
