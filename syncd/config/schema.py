"""The config schema: one tree of keys with their parsers, defaults and docs.

It drives validation (``loader``), the defaults and the commented sample (``example``),
so the three cannot drift apart."""

from __future__ import annotations

import datetime
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

from syncd.config.model import BACKENDS, MAX_PART_SIZE, MIN_PART_SIZE
from syncd.units import format_size, parse_duration, parse_rate, parse_size


class Invalid(Exception):
    """A value failed its check; the loader adds file, line and key."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index  # which list item is wrong, when the value is a list


@dataclass(frozen=True)
class Env:
    """What a parser may consult besides the value itself."""

    base_dir: Path  # relative paths start here: the config file's directory
    home: str  # what "~" means


Parser = Callable[[object, Env], object]


def quote(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:56] + "...'"


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {quote(value)}"
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
    raise Invalid(f"expected {what}, got {describe(value)}{hint}")


def _boolean(value: object, env: Env) -> bool:
    if isinstance(value, bool):
        return value
    raise Invalid(f"expected true or false, got {describe(value)}")


def _range_message(lo: float, hi: float | None, got: object) -> str:
    if hi is None:
        return f"must be at least {lo} (got {got})"
    return f"must be between {lo} and {hi} (got {got})"


def _integer(lo: int, hi: int | None = None) -> Parser:
    def parse(value: object, env: Env) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected a whole number, got {describe(value)}")
        if value < lo or (hi is not None and value > hi):
            raise Invalid(_range_message(lo, hi, value))
        return value

    return parse


def _number(lo: float, hi: float) -> Parser:
    def parse(value: object, env: Env) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"expected a number, got {describe(value)}")
        if not lo <= value <= hi:  # also false for nan
            raise Invalid(_range_message(lo, hi, value))
        return float(value)

    return parse


def _duration(*, positive: bool) -> Parser:
    def parse(value: object, env: Env) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid(f"expected a duration such as 30s or 10m, got {describe(value)}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if positive and seconds <= 0:
            raise Invalid(f"must be longer than 0 (got {quote(str(value))})")
        return seconds

    return parse


def _size(lo: int, hi: int | None = None) -> Parser:
    def parse(value: object, env: Env) -> int:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid(f"expected a size such as 16MiB or a byte count, got {describe(value)}")
        try:
            size = parse_size(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if size < lo:
            raise Invalid(f"{format_size(size)} is below the {format_size(lo)} minimum")
        if hi is not None and size > hi:
            raise Invalid(f"{format_size(size)} is above the {format_size(hi)} maximum")
        return size

    return parse


def _choice(*choices: str) -> Parser:
    def parse(value: object, env: Env) -> str:
        text = _want_str(value, "one of " + ", ".join(choices))
        if text.lower() not in choices:
            raise Invalid(f"must be one of {', '.join(choices)} (got {quote(text)})")
        return text.lower()

    return parse


def _instance(value: object, env: Env) -> str:
    """This syncd's name on a shared account; null = the host name."""
    if value is None:  # a host name is letters, digits, '-' and '.'; anything else made safe
        value = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:100].lstrip("._-") or "syncd"
    text = _want_str(value, "a name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", text):
        raise Invalid("must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit "
                       f"(got {quote(text)})")
    return text


def _backend(value: object, env: Env) -> str:
    text = _want_str(value, "a backend name")
    if text.lower() not in BACKENDS:
        raise Invalid(f"unknown backend {quote(text)} (known: {', '.join(BACKENDS)})")
    return text.lower()


def _url(value: object, env: Env) -> str:
    text = _want_str(value, "an http:// or https:// URL").strip()
    # Never echo a value that might carry credentials.
    shown = quote(text) if "@" not in text else "a value containing '@'"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise Invalid(f"not a valid URL: {shown}") from None
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            "must not contain a user name or password; "
            "the API key comes from remote.api_key_env or remote.api_key_file"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or not text.isprintable() or " " in text:
        raise Invalid(f"expected an http:// or https:// URL, got {shown}")
    if parts.query or parts.fragment:
        raise Invalid(f"must not have a query or fragment (got {shown})")
    return text.rstrip("/")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: object, env: Env) -> str:
    # A common slip is pasting the key itself here, so the message never echoes the value.
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise Invalid("expected the name of an environment variable such as SYNCD_API_KEY (the name, not the key)")
    return value


def _expand(text: str, env: Env) -> Path:
    if text == "~" or text.startswith("~/"):
        text = env.home + text[1:]
    elif text.startswith("~"):
        text = os.path.expanduser(text)  # ~user
    path = Path(text)
    if not path.is_absolute():
        path = env.base_dir / path
    # Lexical normalisation only: the disk may be unmounted while we load.
    return Path(os.path.normpath(path))


def _path(*, optional: bool = False) -> Parser:
    def parse(value: object, env: Env) -> Path | None:
        if value is None and optional:
            return None
        text = _want_str(value, "a path")
        if not text.strip():
            raise Invalid("must not be empty")
        if "\0" in text:
            raise Invalid("must not contain a NUL character")
        return _expand(text, env)

    return parse


def _string_list(what: str) -> Callable[[object], list[str]]:
    def parse(value: object) -> list[str]:
        if not isinstance(value, list):
            raise Invalid(f"expected a list of {what}, got {describe(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise Invalid(f"expected a string, got {describe(item)}", index)
            if not item:
                raise Invalid("must not be empty", index)
        return value

    return parse


def _patterns(value: object, env: Env) -> tuple[str, ...]:
    return tuple(_string_list("file name patterns such as \"*.mp4\"")(value))


def _optional_url(value: object, env: Env) -> str | None:
    return None if value is None else _url(value, env)


STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")  # http(s): an HLS playlist


def _stream_url(value: object, env: Env) -> str:
    text = _want_str(value, "a camera URL (rtsp://, rtmp:// or an https:// HLS playlist)").strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise Invalid(f"not a valid URL: {quote(shown_stream_url(text))}") from None
    if parts.scheme not in STREAM_SCHEMES or not parts.hostname or not text.isprintable() or " " in text:
        raise Invalid(f"expected an rtsp://, rtmp:// or http(s):// (HLS) URL, got {quote(shown_stream_url(text))}")
    return text


def shown_stream_url(url: str) -> str:
    """A camera URL fit to print: a password in it (rtsp://user:pass@cam/...) becomes ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("@")[-1]
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _unique_id(value: object, env: Env) -> str | None:
    if value is None:
        return None
    text = _want_str(value, "a namespace name")
    if not text.strip() or not text.isprintable():
        raise Invalid(f"expected a non-empty printable name, got {quote(text)}")
    return text


def _rate_limits(value: object, env: Env) -> dict[str, str | None]:
    """Syntax only here; the group names are checked against the backend's (``loader``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping of endpoint group to rate such as {{upload: 1/min}}, got {describe(value)}")
    limits: dict[str, str | None] = {}
    for group, rate in value.items():
        if not isinstance(group, str):
            raise Invalid(f"expected endpoint group names, got {describe(group)}")
        if rate is None:
            limits[group] = None  # not paced at all
            continue
        try:
            parse_rate(str(rate))
        except ValueError as exc:
            raise Invalid(f"{group}: {exc}") from None
        limits[group] = str(rate)
    return limits


def _pipelines(value: object, env: Env) -> tuple[str, ...] | None:
    """Syntax only here; the names are checked against the backend's (``_Loader.pipelines``).
    None: the backend's default."""
    if value is None:
        return None
    names = _string_list("pipeline names")(value)
    for index, name in enumerate(names):
        if name in names[:index]:
            raise Invalid(f"pipeline {quote(name)} is listed twice", index)
    return tuple(names)


def _sidecars(value: object, env: Env) -> tuple[str, Path | None]:
    text = _want_str(value, "beside or a directory path")
    if text == "beside":
        return ("beside", None)
    if not text.strip():
        raise Invalid("must be beside or a directory path, not empty")
    return ("directory", _expand(text, env))


def _listen(value: object, env: Env) -> tuple[str, int] | None:
    if value is None:
        return None
    usage = "HOST:PORT such as 127.0.0.1:9464"
    if isinstance(value, int) and not isinstance(value, bool):
        host, port_text = "127.0.0.1", str(value)  # a bare port stays local
    else:
        text = _want_str(value, usage).strip()
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise Invalid(f"expected {usage}, got {quote(text)}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise Invalid(f"an IPv6 host needs brackets, like [::1]:9464 (got {quote(text)})")
        if not host:
            host = "0.0.0.0"  # ":9464" means every interface, as in Go and Prometheus
        if any(ch.isspace() for ch in host):
            raise Invalid(f"expected {usage}, got {quote(text)}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise Invalid(f"port must be 1..65535 (got {quote(port_text)})")
    return (host, int(port_text))


def parse_listen(text: str) -> tuple[str, int]:
    """A HOST:PORT from the command line (``syncd ui --listen``); ValueError if malformed."""
    try:
        listen = _listen(text, Env(base_dir=Path.cwd(), home=os.path.expanduser("~")))
    except Invalid as exc:
        raise ValueError(str(exc)) from None
    assert listen is not None
    return listen


# --------------------------------------------------------------------------- the schema


class Marker(Enum):
    REQUIRED = "required"


REQUIRED = Marker.REQUIRED


@dataclass(frozen=True)
class Key:
    name: str
    parse: Parser
    doc: str
    default: object = REQUIRED  # as a user would write it; it goes through ``parse`` too
    sample: object = None  # what the sample shows for a required key


@dataclass(frozen=True)
class Section:
    name: str
    doc: str
    keys: tuple[Key | Section, ...]
    many: str = ""  # non-empty: a list of these mappings, at least one; the word for one entry
    optional: bool = False  # a list that may be left out or empty (shown commented out in the sample)


_DEFAULT_INCLUDE = ["*.mp4", "*.mov", "*.mkv", "*.avi", "*.webm", "*.m4v"]
_DEFAULT_EXCLUDE = [".*", "*.part", "*.tmp", "*.crdownload"]

SCHEMA = Section(
    "",
    "",
    (
        Key(
            "instance",
            _instance,
            "This syncd's name. Several syncd hosts may share one account: each deletes only remote "
            "videos it uploaded and no other instance holds. Give each host its own name; null = the "
            "host name.",
            None,
        ),
        Section(
            "remote",
            "The remote video service.",
            (
                Key("backend", _backend, "Which service API to speak: mikshi or memories (memories.ai).", "mikshi"),
                Key(
                    "base_url",
                    _url,
                    "Base URL of the service, http:// or https://.",
                    sample="http://127.0.0.1:8765",
                ),
                Key(
                    "api_key_env",
                    _env_name,
                    "Environment variable holding the API key. The key is looked up in order: "
                    "api_key_file, this variable, then the systemd credential \"api-key\" "
                    "($CREDENTIALS_DIRECTORY/api-key, from LoadCredential=). Never put the key itself in this file.",
                    "SYNCD_API_KEY",
                ),
                Key(
                    "api_key_file",
                    _path(optional=True),
                    "File holding the API key (surrounding whitespace is ignored); wins over api_key_env. "
                    "null = not used.",
                    None,
                ),
                Key("timeout", _duration(positive=True), "Time limit for one HTTP request.", "30s"),
                Key(
                    "v2_base_url",
                    _optional_url,
                    "memories only: the v2 host for downloads and live streams. "
                    "null = https://mavi-backend.memories.ai/serve/api/v2.",
                    None,
                ),
                Key(
                    "unique_id",
                    _unique_id,
                    "memories only: the namespace (unique_id) this syncd uploads into and lists. null = default.",
                    None,
                ),
                Key(
                    "rate_limits",
                    _rate_limits,
                    "Requests per endpoint group, paced before the service refuses (\"5/s\", \"1/min\"; null = "
                    "unpaced). Unset groups keep the backend's published figures (memories: upload 1/min, "
                    "list 5/s, delete 5/s, search 1/s, metadata 5/s, task_status 1/s, download 12/min, stream 1/s; "
                    "mikshi publishes none).",
                    {},
                ),
                Key(
                    "max_retries",
                    _integer(0, 100),
                    "How often one failed request is repeated (with backoff) when repeating is safe.",
                    5,
                ),
            ),
        ),
        Key(
            "state_dir",
            _path(),
            "Where catalog.db and the other state live. When this key is left out and systemd sets "
            "$STATE_DIRECTORY (StateDirectory=), that directory is used instead.",
            "./state",
        ),
        Section(
            "folders",
            "Watched folders; at least one. Folders must not overlap. A folder that is missing at run "
            "time (an unmounted disk) is skipped, never treated as emptied.",
            (
                Key("path", _path(), "The folder to watch.", sample="./drop"),
                Key(
                    "include",
                    _patterns,
                    "Files to sync: shell patterns matched against the file name.",
                    _DEFAULT_INCLUDE,
                ),
                Key(
                    "exclude",
                    _patterns,
                    "Files to skip even when they match include (hidden files and partial downloads).",
                    _DEFAULT_EXCLUDE,
                ),
                Key(
                    "collections",
                    _choice("subfolder", "none"),
                    "subfolder: each first-level subfolder becomes a remote collection; none: no collections "
                    "(its videos leave theirs; with no collection folder left, syncd changes no collection).",
                    "subfolder",
                ),
                Key(
                    "pipelines",
                    _pipelines,
                    "Processing to request after upload, by the names the backend declares (mikshi: "
                    "analyse, search-process; memories has none); null: the backend's default (all of "
                    "them); [] for none. collections: subfolder needs the ones its backend files "
                    "collections after (mikshi: both; a config without them is refused).",
                    None,
                ),
                Key(
                    "delete_remote",
                    _boolean,
                    "Delete the remote copy when a local file is deleted (subject to the safety limits).",
                    True,
                ),
                Key(
                    "on_remote_delete",
                    _choice("trash", "delete", "keep"),
                    "When a video is deleted on the remote: trash moves the local file to the trash, "
                    "delete removes it, keep leaves it alone.",
                    "trash",
                ),
                Key(
                    "require_marker",
                    _boolean,
                    "Only sync while a .syncd-folder file exists in the folder (guards against syncing "
                    "an empty mount point).",
                    False,
                ),
                Key(
                    "remove_empty_collections",
                    _boolean,
                    "Delete a remote collection once its local subfolder is gone and it holds no videos.",
                    False,
                ),
            ),
            many="folder",
        ),
        Section(
            "upload",
            "How files are uploaded.",
            (
                Key(
                    "part_size",
                    _size(MIN_PART_SIZE, MAX_PART_SIZE),
                    "Multipart upload part size: a size or a byte count, 5MiB..5GiB.",
                    "16MiB",
                ),
                Key("concurrency", _integer(1, 32), "Parts uploaded in parallel, 1..32.", 4),
                Key(
                    "settle_seconds",
                    _duration(positive=False),
                    "A file counts once it has not changed (the later of mtime and ctime) for this long "
                    "(seconds or a duration).",
                    5,
                ),
                Key(
                    "direct_upload_below",
                    _size(0),
                    "Files smaller than this use the single-request direct upload; 0 = always "
                    "multipart. Over the remote's own cap (100 MB on Mikshi), it answers 413 and "
                    "syncd uploads in parts.",
                    0,
                ),
                Key(
                    "max_attempts",
                    _integer(1),
                    "Attempts per file at uploading and processing before it is reported as failed.",
                    5,
                ),
                Key(
                    "retry_backoff",
                    _duration(positive=True),
                    "Wait before retrying a failed upload or pipeline; doubles with each attempt (capped at 1h).",
                    "30s",
                ),
            ),
        ),
        Section(
            "safety",
            "Guards against mass deletion.",
            (
                Key(
                    "max_delete_percent",
                    _number(0, 100),
                    "Refuse a pass that would delete more than this percentage of a folder's synced "
                    "videos, 0..100.",
                    50,
                ),
                Key(
                    "delete_grace",
                    _duration(positive=False),
                    "Daemon: a vanished file waits this long for the other half of a move before its "
                    "remote copy is deleted.",
                    "30s",
                ),
                Key(
                    "delete_wait",
                    _duration(positive=False),
                    "A deletion also waits while files not yet settled (or not yet hashed) could hold "
                    "the vanished content, for at most this long after the file vanished.",
                    "1h",
                ),
                Key(
                    "max_proof_download",
                    _size(0),
                    "Catalog recovery links a file to a remote video only on proof that the bytes are the "
                    "same; where the S3 ETag cannot decide, the original is downloaded and hashed, up to this "
                    "size. A larger file is uploaded instead.",
                    "1GiB",
                ),
            ),
        ),
        Section(
            "schedule",
            "Periodic work in the daemon (file events trigger work in between).",
            (
                Key("rescan", _duration(positive=True),
                     "Full rescan of every folder. Keep it a multiple of remote_poll: it then runs "
                     "midway between two polls, never in the same minute as one.", "10m"),
                Key("remote_poll", _duration(positive=True),
                     "Poll the remote for what is in flight: processing states of videos not yet done, "
                     "and (with mirror.pull_remote) videos new on the remote.", "2m"),
                Key("deletion_check", _duration(positive=True),
                     "Read the remote's complete video listing to find videos deleted there (one at a "
                     "time). The daemon: at the first poll once this long has passed since the last one "
                     "(a restart counts from the catalog's record of it). `syncd sync` too: once this long "
                     "has passed since the last one "
                     "(`syncd sync --check-deletions`: now). Its cost grows with the remote library, "
                     "so it runs less often than polls.", "1h"),
            ),
        ),
        Section(
            "mirror",
            "Local copies of what the remote knows about each video.",
            (
                Key(
                    "interval",
                    _duration(positive=True),
                    "How often every video's details are checked against the remote listing "
                    "(only changed ones are pulled again).",
                    "15m",
                ),
                Key(
                    "sidecars",
                    _sidecars,
                    "Where sidecar files go: beside (next to each video) or a directory path.",
                    "beside",
                ),
                Key("embeddings", _boolean, "Keep segment embeddings for offline search.", True),
                Key("pull_remote", _boolean, "Download videos that exist only on the remote.", False),
                Key(
                    "pull_into",
                    _path(optional=True),
                    "The folder (one of folders[].path) that pulled videos go to; null = the first folder.",
                    None,
                ),
            ),
        ),
        Section(
            "metrics",
            "Prometheus metrics.",
            (
                Key(
                    "listen",
                    _listen,
                    "HOST:PORT to serve /metrics on, e.g. 127.0.0.1:9464 (:9464 = every interface); "
                    "null = off.",
                    None,
                ),
            ),
        ),
        Section(
            "ui",
            "The web UI (`syncd ui`, or served by the daemon): browse, search, play and ask; it only reads.",
            (
                Key(
                    "listen",
                    _listen,
                    "HOST:PORT the daemon serves the web UI on, e.g. 127.0.0.1:8470; null = only "
                    "`syncd ui` serves it (on 127.0.0.1:8470). A non-loopback host needs a password.",
                    None,
                ),
                Key(
                    "password_env",
                    _env_name,
                    "Environment variable holding the UI password (any user name, this password; "
                    "or the header Authorization: Bearer PASSWORD).",
                    "SYNCD_UI_PASSWORD",
                ),
                Key("password_file", _path(optional=True), "File holding the UI password; wins over password_env.",
                     None),
            ),
        ),
        Section(
            "streams",
            "Live camera streams the service watches (memories.ai; a backend without live streams refuses "
            "this section). The daemon starts each listed stream that is not running, stops a stream "
            "removed from this list, and leaves running streams alone across restarts. Empty or left "
            "out: none.",
            (
                Key("url", _stream_url, "The camera: rtsp://, rtmp:// or an http(s):// HLS playlist.",
                    sample="rtsp://camera.local:554/stream1"),
                Key("enable_content_moderation", _boolean, "Flag unsafe content in each 5-second segment.",
                    False),
                Key("enable_logo_detection", _boolean, "Detect logos in each segment.", False),
                Key("fps", _integer(1, 30), "Frames per second analysed, 1..30.", 1),
                Key("max_logos", _integer(1, 50), "Most logos reported per segment, 1..50.", 5),
            ),
            many="stream",
            optional=True,
        ),
        Key("log_level", _choice("debug", "info", "warning", "error"), "debug, info, warning or error.", "info"),
    ),
)


# --------------------------------------------------------------------------- loading
