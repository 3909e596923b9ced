"""The config file: YAML in, typed frozen dataclasses out.

This is the only module that knows YAML; the rest of syncd takes ``Config``.
One schema (``_SCHEMA``) drives validation, the defaults and the commented
sample that ``render_example()`` prints (``config.example.yaml`` is its output),
so the three cannot drift apart.

Every problem is a ``ConfigError`` whose message is one line::

    <file>:<line>: <dotted.key>: <what is wrong>
    <file>: <dotted.key>: <what is wrong>        (when no line applies)

Relative paths resolve against the config file's directory, not the working
directory, because under systemd the working directory is ``/``.

The API key never comes from the YAML itself: it is read from a file, an
environment variable or a systemd credential and kept in a ``Secret``, which
never prints, logs or pickles its value.
"""

from __future__ import annotations

import datetime
import difflib
import hmac
import ipaddress
import json
import os
import re
import socket
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from syncd.errors import ConfigError
from syncd.remote.facts import backend_facts
from syncd.remote.base import Features
from syncd.units import format_size, parse_duration, parse_size

__all__ = [
    "BACKENDS",
    "CONFIG_ENV",
    "CREDENTIAL_NAME",
    "DEFAULT_CONFIG_NAME",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "Config",
    "FolderConfig",
    "MetricsConfig",
    "MirrorConfig",
    "RemoteConfig",
    "SafetyConfig",
    "ScheduleConfig",
    "Secret",
    "UploadConfig",
    "load_config",
    "render_example",
    "resolve_config_path",
]

CONFIG_ENV = "SYNCD_CONFIG"
DEFAULT_CONFIG_NAME = "config.yaml"
CREDENTIAL_NAME = "api-key"  # systemd LoadCredential=api-key:/path → $CREDENTIALS_DIRECTORY/api-key
BACKENDS: tuple[str, ...] = ("mikshi",)
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


class _Invalid(Exception):
    """A value failed its check; the loader adds file, line and key."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index  # which list item is wrong, when the value is a list


@dataclass(frozen=True)
class _Env:
    """What a parser may consult besides the value itself."""

    base_dir: Path  # relative paths start here: the config file's directory
    home: str  # what "~" means


_Parser = Callable[[object, _Env], object]


def _quote(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:56] + "...'"


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_quote(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"a date ({value})"
    return f"a {type(value).__name__}"


def _want_str(value: object, what: str = "a string") -> str:
    if isinstance(value, str):
        return value
    # YAML reads 2024 or 1.5 as numbers; quoting keeps them strings.
    hint = f' (quote it: "{value}")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    raise _Invalid(f"expected {what}, got {_describe(value)}{hint}")


def _boolean(value: object, env: _Env) -> bool:
    if isinstance(value, bool):
        return value
    raise _Invalid(f"expected true or false, got {_describe(value)}")


def _range_message(lo: float, hi: float | None, got: object) -> str:
    if hi is None:
        return f"must be at least {lo} (got {got})"
    return f"must be between {lo} and {hi} (got {got})"


def _integer(lo: int, hi: int | None = None) -> _Parser:
    def parse(value: object, env: _Env) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected a whole number, got {_describe(value)}")
        if value < lo or (hi is not None and value > hi):
            raise _Invalid(_range_message(lo, hi, value))
        return value

    return parse


def _number(lo: float, hi: float) -> _Parser:
    def parse(value: object, env: _Env) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"expected a number, got {_describe(value)}")
        if not lo <= value <= hi:  # also false for nan
            raise _Invalid(_range_message(lo, hi, value))
        return float(value)

    return parse


def _duration(*, positive: bool) -> _Parser:
    def parse(value: object, env: _Env) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _Invalid(f"expected a duration such as 30s or 10m, got {_describe(value)}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        if positive and seconds <= 0:
            raise _Invalid(f"must be longer than 0 (got {_quote(str(value))})")
        return seconds

    return parse


def _size(lo: int, hi: int | None = None) -> _Parser:
    def parse(value: object, env: _Env) -> int:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _Invalid(f"expected a size such as 16MiB or a byte count, got {_describe(value)}")
        try:
            size = parse_size(value)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        if size < lo:
            raise _Invalid(f"{format_size(size)} is below the {format_size(lo)} minimum")
        if hi is not None and size > hi:
            raise _Invalid(f"{format_size(size)} is above the {format_size(hi)} maximum")
        return size

    return parse


def _choice(*choices: str) -> _Parser:
    def parse(value: object, env: _Env) -> str:
        text = _want_str(value, "one of " + ", ".join(choices))
        if text.lower() not in choices:
            raise _Invalid(f"must be one of {', '.join(choices)} (got {_quote(text)})")
        return text.lower()

    return parse


def _instance(value: object, env: _Env) -> str:
    """This syncd's name on a shared account; null = the host name."""
    if value is None:  # a host name is letters, digits, '-' and '.'; anything else made safe
        value = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:100].lstrip("._-") or "syncd"
    text = _want_str(value, "a name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", text):
        raise _Invalid("must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit "
                       f"(got {_quote(text)})")
    return text


def _backend(value: object, env: _Env) -> str:
    text = _want_str(value, "a backend name")
    if text.lower() not in BACKENDS:
        raise _Invalid(f"unknown backend {_quote(text)} (known: {', '.join(BACKENDS)})")
    return text.lower()


def _url(value: object, env: _Env) -> str:
    text = _want_str(value, "an http:// or https:// URL").strip()
    # Never echo a value that might carry credentials.
    shown = _quote(text) if "@" not in text else "a value containing '@'"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _Invalid(f"not a valid URL: {shown}") from None
    if parts.username is not None or parts.password is not None:
        raise _Invalid(
            "must not contain a user name or password; "
            "the API key comes from remote.api_key_env or remote.api_key_file"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or not text.isprintable() or " " in text:
        raise _Invalid(f"expected an http:// or https:// URL, got {shown}")
    if parts.query or parts.fragment:
        raise _Invalid(f"must not have a query or fragment (got {shown})")
    return text.rstrip("/")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: object, env: _Env) -> str:
    # A common slip is pasting the key itself here, so the message never echoes the value.
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise _Invalid("expected the name of an environment variable such as SYNCD_API_KEY (the name, not the key)")
    return value


def _expand(text: str, env: _Env) -> Path:
    if text == "~" or text.startswith("~/"):
        text = env.home + text[1:]
    elif text.startswith("~"):
        text = os.path.expanduser(text)  # ~user
    path = Path(text)
    if not path.is_absolute():
        path = env.base_dir / path
    # Lexical normalisation only: the disk may be unmounted while we load.
    return Path(os.path.normpath(path))


def _path(*, optional: bool = False) -> _Parser:
    def parse(value: object, env: _Env) -> Path | None:
        if value is None and optional:
            return None
        text = _want_str(value, "a path")
        if not text.strip():
            raise _Invalid("must not be empty")
        if "\0" in text:
            raise _Invalid("must not contain a NUL character")
        return _expand(text, env)

    return parse


def _string_list(what: str) -> Callable[[object], list[str]]:
    def parse(value: object) -> list[str]:
        if not isinstance(value, list):
            raise _Invalid(f"expected a list of {what}, got {_describe(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise _Invalid(f"expected a string, got {_describe(item)}", index)
            if not item:
                raise _Invalid("must not be empty", index)
        return value

    return parse


def _patterns(value: object, env: _Env) -> tuple[str, ...]:
    return tuple(_string_list("file name patterns such as \"*.mp4\"")(value))


def _pipelines(value: object, env: _Env) -> tuple[str, ...] | None:
    """Syntax only here; the names are checked against the backend's (``_Loader.pipelines``).
    None: the backend's default."""
    if value is None:
        return None
    names = _string_list("pipeline names")(value)
    for index, name in enumerate(names):
        if name in names[:index]:
            raise _Invalid(f"pipeline {_quote(name)} is listed twice", index)
    return tuple(names)


def _sidecars(value: object, env: _Env) -> tuple[str, Path | None]:
    text = _want_str(value, "beside or a directory path")
    if text == "beside":
        return ("beside", None)
    if not text.strip():
        raise _Invalid("must be beside or a directory path, not empty")
    return ("directory", _expand(text, env))


def _listen(value: object, env: _Env) -> tuple[str, int] | None:
    if value is None:
        return None
    usage = "HOST:PORT such as 127.0.0.1:9464"
    if isinstance(value, int) and not isinstance(value, bool):
        host, port_text = "127.0.0.1", str(value)  # a bare port stays local
    else:
        text = _want_str(value, usage).strip()
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise _Invalid(f"expected {usage}, got {_quote(text)}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise _Invalid(f"an IPv6 host needs brackets, like [::1]:9464 (got {_quote(text)})")
        if not host:
            host = "0.0.0.0"  # ":9464" means every interface, as in Go and Prometheus
        if any(ch.isspace() for ch in host):
            raise _Invalid(f"expected {usage}, got {_quote(text)}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _Invalid(f"port must be 1..65535 (got {_quote(port_text)})")
    return (host, int(port_text))


def parse_listen(text: str) -> tuple[str, int]:
    """A HOST:PORT from the command line (``syncd ui --listen``); ValueError if malformed."""
    try:
        listen = _listen(text, _Env(base_dir=Path.cwd(), home=os.path.expanduser("~")))
    except _Invalid as exc:
        raise ValueError(str(exc)) from None
    assert listen is not None
    return listen


# --------------------------------------------------------------------------- the schema


class _Marker(Enum):
    REQUIRED = "required"


_REQUIRED = _Marker.REQUIRED


@dataclass(frozen=True)
class _Key:
    name: str
    parse: _Parser
    doc: str
    default: object = _REQUIRED  # as a user would write it; it goes through ``parse`` too
    sample: object = None  # what the sample shows for a required key


@dataclass(frozen=True)
class _Section:
    name: str
    doc: str
    keys: tuple[_Key | _Section, ...]
    many: str = ""  # non-empty: a list of these mappings, at least one; the word for one entry


_DEFAULT_INCLUDE = ["*.mp4", "*.mov", "*.mkv", "*.avi", "*.webm", "*.m4v"]
_DEFAULT_EXCLUDE = [".*", "*.part", "*.tmp", "*.crdownload"]

_SCHEMA = _Section(
    "",
    "",
    (
        _Key(
            "instance",
            _instance,
            "This syncd's name. Several syncd hosts may share one account: each deletes only remote "
            "videos it uploaded and no other instance holds. Give each host its own name; null = the "
            "host name.",
            None,
        ),
        _Section(
            "remote",
            "The remote video service.",
            (
                _Key("backend", _backend, "Which service API to speak. Only mikshi exists for now.", "mikshi"),
                _Key(
                    "base_url",
                    _url,
                    "Base URL of the service, http:// or https://.",
                    sample="http://127.0.0.1:8765",
                ),
                _Key(
                    "api_key_env",
                    _env_name,
                    "Environment variable holding the API key. The key is looked up in order: "
                    "api_key_file, this variable, then the systemd credential \"api-key\" "
                    "($CREDENTIALS_DIRECTORY/api-key, from LoadCredential=). Never put the key itself in this file.",
                    "SYNCD_API_KEY",
                ),
                _Key(
                    "api_key_file",
                    _path(optional=True),
                    "File holding the API key (surrounding whitespace is ignored); wins over api_key_env. "
                    "null = not used.",
                    None,
                ),
                _Key("timeout", _duration(positive=True), "Time limit for one HTTP request.", "30s"),
                _Key(
                    "max_retries",
                    _integer(0, 100),
                    "How often one failed request is repeated (with backoff) when repeating is safe.",
                    5,
                ),
            ),
        ),
        _Key(
            "state_dir",
            _path(),
            "Where catalog.db and the other state live. When this key is left out and systemd sets "
            "$STATE_DIRECTORY (StateDirectory=), that directory is used instead.",
            "./state",
        ),
        _Section(
            "folders",
            "Watched folders; at least one. Folders must not overlap. A folder that is missing at run "
            "time (an unmounted disk) is skipped, never treated as emptied.",
            (
                _Key("path", _path(), "The folder to watch.", sample="./drop"),
                _Key(
                    "include",
                    _patterns,
                    "Files to sync: shell patterns matched against the file name.",
                    _DEFAULT_INCLUDE,
                ),
                _Key(
                    "exclude",
                    _patterns,
                    "Files to skip even when they match include (hidden files and partial downloads).",
                    _DEFAULT_EXCLUDE,
                ),
                _Key(
                    "collections",
                    _choice("subfolder", "none"),
                    "subfolder: each first-level subfolder becomes a remote collection; none: no collections.",
                    "subfolder",
                ),
                _Key(
                    "pipelines",
                    _pipelines,
                    "Processing to request after upload, by the names the backend declares (mikshi: "
                    "analyse, search-process; memories has none); null: the backend's default (all of "
                    "them); [] for none. collections: subfolder needs the ones its backend files "
                    "collections after (mikshi: both; a config without them is refused).",
                    None,
                ),
                _Key(
                    "delete_remote",
                    _boolean,
                    "Delete the remote copy when a local file is deleted (subject to the safety limits).",
                    True,
                ),
                _Key(
                    "on_remote_delete",
                    _choice("trash", "delete", "keep"),
                    "When a video is deleted on the remote: trash moves the local file to the trash, "
                    "delete removes it, keep leaves it alone.",
                    "trash",
                ),
                _Key(
                    "require_marker",
                    _boolean,
                    "Only sync while a .syncd-folder file exists in the folder (guards against syncing "
                    "an empty mount point).",
                    False,
                ),
                _Key(
                    "remove_empty_collections",
                    _boolean,
                    "Delete a remote collection once its local subfolder is gone and it holds no videos.",
                    False,
                ),
            ),
            many="folder",
        ),
        _Section(
            "upload",
            "How files are uploaded.",
            (
                _Key(
                    "part_size",
                    _size(MIN_PART_SIZE, MAX_PART_SIZE),
                    "Multipart upload part size: a size or a byte count, 5MiB..5GiB.",
                    "16MiB",
                ),
                _Key("concurrency", _integer(1, 32), "Parts uploaded in parallel, 1..32.", 4),
                _Key(
                    "settle_seconds",
                    _duration(positive=False),
                    "A file counts once it has not changed (the later of mtime and ctime) for this long "
                    "(seconds or a duration).",
                    5,
                ),
                _Key(
                    "direct_upload_below",
                    _size(0),
                    "Files smaller than this use the single-request direct upload; 0 = always "
                    "multipart. Over the remote's own cap (100 MB on Mikshi), it answers 413 and "
                    "syncd uploads in parts.",
                    0,
                ),
                _Key(
                    "max_attempts",
                    _integer(1),
                    "Attempts per file at uploading and processing before it is reported as failed.",
                    5,
                ),
                _Key(
                    "retry_backoff",
                    _duration(positive=True),
                    "Wait before retrying a failed upload or pipeline; doubles with each attempt (capped at 1h).",
                    "30s",
                ),
            ),
        ),
        _Section(
            "safety",
            "Guards against mass deletion.",
            (
                _Key(
                    "max_delete_percent",
                    _number(0, 100),
                    "Refuse a pass that would delete more than this percentage of a folder's synced "
                    "videos, 0..100.",
                    50,
                ),
                _Key(
                    "delete_grace",
                    _duration(positive=False),
                    "Daemon: a vanished file waits this long for the other half of a move before its "
                    "remote copy is deleted.",
                    "30s",
                ),
                _Key(
                    "delete_wait",
                    _duration(positive=False),
                    "A deletion also waits while files not yet settled (or not yet hashed) could hold "
                    "the vanished content, for at most this long after the file vanished.",
                    "1h",
                ),
                _Key(
                    "max_proof_download",
                    _size(0),
                    "Catalog recovery links a file to a remote video only on proof that the bytes are the "
                    "same; where the S3 ETag cannot decide, the original is downloaded and hashed, up to this "
                    "size. A larger file is uploaded instead.",
                    "1GiB",
                ),
            ),
        ),
        _Section(
            "schedule",
            "Periodic work in the daemon (file events trigger work in between).",
            (
                _Key("rescan", _duration(positive=True),
                     "Full rescan of every folder. Keep it a multiple of remote_poll: it then runs "
                     "midway between two polls, never in the same minute as one.", "10m"),
                _Key("remote_poll", _duration(positive=True),
                     "Poll the remote for what is in flight: processing states of videos not yet done, "
                     "and (with mirror.pull_remote) videos new on the remote.", "2m"),
                _Key("deletion_check", _duration(positive=True),
                     "Read the remote's complete video listing to find videos deleted there (one at a "
                     "time, at the first poll once this long has passed; also on start and reload). "
                     "Its cost grows with the remote library, so it runs less often than polls.", "1h"),
            ),
        ),
        _Section(
            "mirror",
            "Local copies of what the remote knows about each video.",
            (
                _Key(
                    "interval",
                    _duration(positive=True),
                    "How often every video's details are checked against the remote listing "
                    "(only changed ones are pulled again).",
                    "15m",
                ),
                _Key(
                    "sidecars",
                    _sidecars,
                    "Where sidecar files go: beside (next to each video) or a directory path.",
                    "beside",
                ),
                _Key("embeddings", _boolean, "Keep segment embeddings for offline search.", True),
                _Key("pull_remote", _boolean, "Download videos that exist only on the remote.", False),
                _Key(
                    "pull_into",
                    _path(optional=True),
                    "The folder (one of folders[].path) that pulled videos go to; null = the first folder.",
                    None,
                ),
            ),
        ),
        _Section(
            "metrics",
            "Prometheus metrics.",
            (
                _Key(
                    "listen",
                    _listen,
                    "HOST:PORT to serve /metrics on, e.g. 127.0.0.1:9464 (:9464 = every interface); "
                    "null = off.",
                    None,
                ),
            ),
        ),
        _Section(
            "ui",
            "The web UI (`syncd ui`, or served by the daemon): browse, search, play and ask; it only reads.",
            (
                _Key(
                    "listen",
                    _listen,
                    "HOST:PORT the daemon serves the web UI on, e.g. 127.0.0.1:8470; null = only "
                    "`syncd ui` serves it (on 127.0.0.1:8470). A non-loopback host needs a password.",
                    None,
                ),
                _Key(
                    "password_env",
                    _env_name,
                    "Environment variable holding the UI password (any user name, this password; "
                    "or the header Authorization: Bearer PASSWORD).",
                    "SYNCD_UI_PASSWORD",
                ),
                _Key("password_file", _path(optional=True), "File holding the UI password; wins over password_env.",
                     None),
            ),
        ),
        _Key("log_level", _choice("debug", "info", "warning", "error"), "debug, info, warning or error.", "info"),
    ),
)


# --------------------------------------------------------------------------- loading

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).replace("\r", " ")


def _unknown_key(name: str, known: list[str]) -> str:
    if name in ("api_key", "key", "token", "api_token"):
        return "unknown key (the API key never goes in this file: use remote.api_key_env or remote.api_key_file)"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key (known keys: {', '.join(known)})"


class _Loader:
    """One load of one file: names it in messages and remembers the line of every key."""

    def __init__(self, file: str, env: _Env) -> None:
        self.file = file
        self.env = env
        self.lines: dict[str, int] = {}
        self._constructor = SafeConstructor()

    def fail(self, key: str, message: str, line: int | None = None) -> NoReturn:
        where = self.file if line is None else f"{self.file}:{line}"
        head = f"{where}: {key}: " if key else f"{where}: "
        raise ConfigError(_one_line(head + message))

    def compose(self, text: str) -> Node | None:
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "cannot parse"
            if problem.startswith("but ") and exc.context:  # "expected a single document, but found another"
                problem = f"{exc.context}, {problem}"
            self.fail("", f"invalid YAML: {problem}", None if mark is None else mark.line + 1)
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1
            self.fail("", f"invalid YAML: {str(exc).splitlines()[0]}", line)
        except yaml.YAMLError as exc:
            self.fail("", f"invalid YAML: {str(exc).splitlines()[0]}")

    def construct(self, node: Node, key: str) -> object:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            self.fail(key, exc.problem or "cannot read this value", _line(node) if mark is None else mark.line + 1)

    def mapping(self, spec: _Section, node: Node, prefix: str) -> dict[str, tuple[Node, Node]]:
        """The keys of a mapping node by name, after checking names and duplicates."""
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            return {}  # "upload:" with nothing under it: all defaults
        if not isinstance(node, MappingNode):
            got = "a list" if isinstance(node, SequenceNode) else _describe(self.construct(node, prefix))
            self.fail(prefix, f"expected a mapping of keys, got {got}", _line(node))
        # Duplicates among keys written here; keys merged in with "<<" may be overridden.
        first: dict[str, Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                if key_node.value in first:
                    earlier = _line(first[key_node.value])
                    self.fail(
                        _join(prefix, key_node.value),
                        f"duplicate key (first set on line {earlier})",
                        _line(key_node),
                    )
                first[key_node.value] = key_node
        try:
            self._constructor.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            self.fail(prefix or "<<", exc.problem or "bad merge", _line(node) if mark is None else mark.line + 1)
        known = [item.name for item in spec.keys]
        present: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.fail(prefix, "keys must be plain names", _line(key_node))
            name = str(key_node.value)
            if name not in known:
                self.fail(_join(prefix, name), _unknown_key(name, known), _line(key_node))
            present[name] = (key_node, value_node)
        return present

    def section(self, spec: _Section, node: Node | None, prefix: str, owner_line: int | None) -> dict[str, Any]:
        """Parse one mapping against its schema; absent keys take their defaults."""
        present = {} if node is None else self.mapping(spec, node, prefix)
        out: dict[str, Any] = {}
        for item in spec.keys:
            dotted = _join(prefix, item.name)
            found = present.get(item.name)
            if found is not None:
                self.lines[dotted] = _line(found[1]) if isinstance(item, _Key) else _line(found[0])
            if isinstance(item, _Section):
                if item.many:
                    out[item.name] = self.many(item, found, dotted)
                else:
                    line = owner_line if found is None else _line(found[0])
                    out[item.name] = self.section(item, None if found is None else found[1], dotted, line)
            elif found is None:
                if item.default is _REQUIRED:
                    self.fail(dotted, "required key is missing", owner_line)
                out[item.name] = item.parse(item.default, self.env)
            else:
                out[item.name] = self.value(item, found[1], dotted)
        return out

    def many(self, spec: _Section, found: tuple[Node, Node] | None, dotted: str) -> list[dict[str, Any]]:
        needed = f"at least one {spec.many} is required"
        if found is None:
            self.fail(dotted, needed)
        key_node, node = found
        if (isinstance(node, ScalarNode) and node.tag == _NULL_TAG) or (
            isinstance(node, SequenceNode) and not node.value
        ):
            self.fail(dotted, needed, _line(key_node))
        if not isinstance(node, SequenceNode):
            got = "a mapping" if isinstance(node, MappingNode) else _describe(self.construct(node, dotted))
            self.fail(dotted, f"expected a list of {spec.many}s (- path: ...), got {got}", _line(node))
        return [self.section(spec, item, f"{dotted}[{i}]", _line(item)) for i, item in enumerate(node.value)]

    def value(self, spec: _Key, node: Node, dotted: str) -> object:
        raw = self.construct(node, dotted)
        try:
            return spec.parse(raw, self.env)
        except _Invalid as exc:
            if exc.index is not None and isinstance(node, SequenceNode) and exc.index < len(node.value):
                self.fail(f"{dotted}[{exc.index}]", exc.message, _line(node.value[exc.index]))
            self.fail(dotted, exc.message, _line(node))

    # ----------------------------------------------------------------------- cross-key rules

    def pipelines(self, names: tuple[str, ...] | None, backend: str, facts: Features, index: int) -> tuple[str, ...]:
        """A folder's pipelines, checked against what its backend declares; None: its default."""
        if names is None:
            return facts.default_pipelines
        key = f"folders[{index}].pipelines"
        if names and not facts.pipelines:
            self.fail(key, f"the {backend} backend has no pipelines to start (its processing starts by "
                           "itself); remove this key", self.lines.get(key))
        for at, name in enumerate(names):
            if name not in facts.pipelines:
                self.fail(f"{key}[{at}]", f"unknown pipeline {_quote(name)} (known: {', '.join(facts.pipelines)})",
                          self.lines.get(key))
        return names

    def check_folders(self, folders: tuple[FolderConfig, ...], facts: Features) -> None:
        needed = facts.collection_pipelines if facts.grouping == "collection" else ()
        for j, later in enumerate(folders):
            lacking = [p for p in needed if p not in later.pipelines]
            if later.collections == "subfolder" and lacking:
                # Refused rather than quietly run anyway: the remote adds a video to a
                # collection only once both pipelines are done.
                key = f"folders[{j}].pipelines"
                self.fail(
                    key,
                    f"collections: subfolder needs both {' and '.join(needed)} (the remote files only "
                    f"fully processed videos into collections), but pipelines leaves out {' and '.join(lacking)}; "
                    f"list both pipelines, or set folders[{j}].collections: none",
                    self.lines.get(key) or self.lines.get(f"folders[{j}].collections"),
                )
            key = f"folders[{j}].path"
            for i, earlier in enumerate(folders[:j]):
                if later.path == earlier.path:
                    self.fail(key, f"same folder as folders[{i}] ({earlier.path})", self.lines.get(key))
                if later.path.is_relative_to(earlier.path):
                    self.fail(
                        key,
                        f"{later.path} is inside folders[{i}] ({earlier.path}); folders must not nest",
                        self.lines.get(key),
                    )
                if earlier.path.is_relative_to(later.path):
                    self.fail(
                        key,
                        f"{later.path} contains folders[{i}] ({earlier.path}); folders must not nest",
                        self.lines.get(key),
                    )

    def check_state_dir(self, state_dir: Path, folders: tuple[FolderConfig, ...]) -> None:
        # The scanner would otherwise watch syncd's own database churn.
        for i, folder in enumerate(folders):
            if state_dir == folder.path or state_dir.is_relative_to(folder.path):
                self.fail(
                    "state_dir",
                    f"{state_dir} is inside folders[{i}] ({folder.path}); keep state outside watched folders",
                    self.lines.get("state_dir"),
                )

    def pull_into(self, value: Path | None, folders: tuple[FolderConfig, ...]) -> Path:
        if value is None:
            return folders[0].path
        if not any(folder.path == value for folder in folders):
            known = ", ".join(str(folder.path) for folder in folders)
            line = self.lines.get("mirror.pull_into")
            self.fail("mirror.pull_into", f"{value} is not one of the folders ({known})", line)
        return value

    def api_key(
        self, env_name: str, key_file: Path | None, environ: Mapping[str, str], require_key: bool
    ) -> tuple[Secret, str]:
        """The key and a description of its source; messages name sources, never the key."""
        missing = (Secret(""), "none")
        if key_file is not None:
            key = "remote.api_key_file"
            text = self.read_key(key_file, key, require_key)
            return missing if text is None else (Secret(text), f"file {key_file}")
        from_env = environ.get(env_name, "").strip()
        if from_env:
            if not _valid_key(from_env):
                if not require_key:
                    return missing
                self.fail("remote.api_key_env",
                          f"${env_name} contains whitespace, control or non-ASCII characters")
            return Secret(from_env), f"${env_name}"
        credentials = environ.get("CREDENTIALS_DIRECTORY", "")
        if credentials:
            path = Path(credentials) / CREDENTIAL_NAME
            if path.exists():
                text = self.read_key(path, f'systemd credential "{CREDENTIAL_NAME}"', require_key)
                return missing if text is None else (Secret(text), f"systemd credential {CREDENTIAL_NAME}")
        if not require_key:
            return missing
        self.fail(
            "",
            f"no API key: set ${env_name} (remote.api_key_env), remote.api_key_file, "
            f'or a systemd credential "{CREDENTIAL_NAME}"',
        )

    def ui(self, raw: dict[str, Any], environ: Mapping[str, str]) -> UiConfig:
        """The UI section; a listen address others can reach without a password is refused."""
        password, source = Secret(""), "none"
        if raw["password_file"] is not None:
            text = self.read_key(raw["password_file"], "ui.password_file", True)
            password, source = Secret(text or ""), f"file {raw['password_file']}"
        elif environ.get(raw["password_env"], "").strip():
            password, source = Secret(environ[raw["password_env"]].strip()), f"${raw['password_env']}"
        listen = raw["listen"]
        if listen is not None and not is_loopback(listen[0]) and not password:
            self.fail("ui.listen", f"{listen[0]} is reachable from other machines: set a password "
                      f"(${raw['password_env']} or ui.password_file), or listen on 127.0.0.1",
                      self.lines.get("ui.listen"))
        return UiConfig(listen, password, source)

    def read_key(self, path: Path, key: str, require_key: bool) -> str | None:
        """The stripped key in ``path``; None (or a ConfigError when required) if unusable."""
        line = self.lines.get(key)
        problem = ""
        text = ""
        try:
            text = path.read_bytes().decode("utf-8").strip()
        except OSError as exc:
            problem = f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        except UnicodeDecodeError:
            problem = f"{path} is not UTF-8 text"
        if not problem and not text:
            problem = f"{path} is empty"
        if not problem and not _valid_key(text):
            problem = f"{path} contains whitespace, control or non-ASCII characters inside the key"
        if not problem:
            return text
        if require_key:
            self.fail(key, problem, line)
        return None


def _valid_key(text: str) -> bool:
    # It goes into an HTTP header: a stray newline, or a non-ASCII character (which httpx
    # would refuse naming the character and its position), would otherwise fail there.
    return text.isascii() and text.isprintable() and not any(ch.isspace() for ch in text)


def _read_text(path: Path, file: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: no such file (start from config.example.yaml, or pass -c/--config or set ${CONFIG_ENV})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{file}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{file}:{line}: not UTF-8 text") from None


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """``-c/--config`` if given, else ``$SYNCD_CONFIG`` if set, else ``./config.yaml``."""
    env = os.environ if environ is None else environ
    chosen = cli_value or env.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME
    return Path(chosen).expanduser()


def load_config(
    path: Path | str, environ: Mapping[str, str] | None = None, *, require_key: bool = True
) -> Config:
    """Read, validate and resolve one config file; raise ConfigError with one line on any problem.

    ``environ`` (default ``os.environ``) supplies the API key variable,
    ``$CREDENTIALS_DIRECTORY``, ``$STATE_DIRECTORY`` and ``$HOME``. With
    ``require_key=False`` (commands that never call the remote) a missing or
    unreadable key is not an error: the key is ``Secret("")`` from source "none".
    """
    environ = os.environ if environ is None else environ
    path = Path(path)
    file = str(path)
    text = _read_text(path, file)
    source = Path(os.path.normpath(path.absolute()))
    home = environ.get("HOME") or os.path.expanduser("~")
    loader = _Loader(file, _Env(base_dir=source.parent, home=home))

    root = loader.compose(text)
    if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL_TAG):
        loader.fail("", "the file is empty; expected a mapping of keys such as remote and folders")
    if not isinstance(root, MappingNode):
        got = "a list" if isinstance(root, SequenceNode) else _describe(loader.construct(root, ""))
        loader.fail("", f"top level must be a mapping of keys such as remote and folders, got {got}", _line(root))
    raw = loader.section(_SCHEMA, root, "", None)

    facts = backend_facts(raw["remote"]["backend"])
    for index, entry in enumerate(raw["folders"]):
        entry["pipelines"] = loader.pipelines(entry["pipelines"], raw["remote"]["backend"], facts, index)
    folders = tuple(FolderConfig(**entry) for entry in raw["folders"])
    loader.check_folders(folders, facts)

    state_dir: Path = raw["state_dir"]
    systemd_state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if "state_dir" not in loader.lines and systemd_state:
        state_dir = Path(os.path.normpath(systemd_state))
    loader.check_state_dir(state_dir, folders)

    remote_raw = raw["remote"]
    api_key, api_key_source = loader.api_key(
        remote_raw["api_key_env"], remote_raw["api_key_file"], environ, require_key
    )
    remote = RemoteConfig(
        backend=remote_raw["backend"],
        base_url=remote_raw["base_url"],
        api_key=api_key,
        api_key_source=api_key_source,
        timeout=remote_raw["timeout"],
        max_retries=remote_raw["max_retries"],
    )

    mirror_raw = raw["mirror"]
    sidecars, sidecar_dir = mirror_raw["sidecars"]
    mirror = MirrorConfig(
        interval=mirror_raw["interval"],
        sidecars=sidecars,
        sidecar_dir=sidecar_dir,
        embeddings=mirror_raw["embeddings"],
        pull_remote=mirror_raw["pull_remote"],
        pull_into=loader.pull_into(mirror_raw["pull_into"], folders),
    )

    return Config(
        remote=remote,
        state_dir=state_dir,
        folders=folders,
        upload=UploadConfig(**raw["upload"]),
        safety=SafetyConfig(**raw["safety"]),
        schedule=ScheduleConfig(**raw["schedule"]),
        mirror=mirror,
        metrics=MetricsConfig(**raw["metrics"]),
        ui=loader.ui(raw["ui"], environ),
        log_level=raw["log_level"],
        source=source,
        instance=raw["instance"],
    )


# --------------------------------------------------------------------------- the sample

_HEADER = """\
# syncd configuration.
#
# Generated by syncd.config.render_example(): every key is shown with its default,
# or an example where there is none (remote.base_url, folders[].path). Unknown keys
# are errors. Relative paths resolve against the directory of this file, ~ is the
# home directory.
# Durations: 500ms, 5s, 10m, 2h, 30d, 1h30m or a number of seconds.
# Sizes: 512KiB, 16MiB, 1GiB (binary), 5MB (decimal) or a number of bytes."""

_WIDTH = 88


def _yaml_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain_or_quoted(str(item), "[{}]", [str(item)]) for item in value) + "]"
    return _plain_or_quoted(str(value), "k: {}", {"k": str(value)})


def _plain_or_quoted(text: str, probe: str, expected: object) -> str:
    """``text`` bare if YAML reads it back unchanged in that context, else double-quoted."""
    try:
        plain_ok = yaml.safe_load(probe.format(text)) == expected
    except yaml.YAMLError:
        plain_ok = False
    return text if plain_ok else json.dumps(text)


def _comment(doc: str, pad: str) -> list[str]:
    return [f"{pad}# {line}" for line in textwrap.wrap(doc, width=_WIDTH - len(pad) - 2)]


def _render(item: _Key | _Section, pad: str, out: list[str]) -> None:
    out.extend(_comment(item.doc, pad))
    if isinstance(item, _Key):
        shown = item.sample if item.default is _REQUIRED else item.default
        out.append(f"{pad}{item.name}: {_yaml_scalar(shown)}")
        return
    out.append(f"{pad}{item.name}:")
    if not item.many:
        for child in item.keys:
            _render(child, pad + "  ", out)
        return
    # One example entry: the first key carries the "- ", the rest line up under it.
    inner = pad + "    "
    for index, child in enumerate(item.keys):
        assert isinstance(child, _Key), "list entries hold plain keys"
        if index > 0:
            _render(child, inner, out)
            continue
        entry: list[str] = []
        _render(child, inner, entry)
        *comments, line = entry
        out.extend(pad + "  " + c.lstrip() for c in comments)
        out.append(pad + "  - " + line.lstrip())


def render_example() -> str:
    """The full sample config, a comment on every key; ``config.example.yaml`` is this text."""
    out = [_HEADER]
    for item in _SCHEMA.keys:
        out.append("")
        _render(item, "", out)
    return "\n".join(out) + "\n"
