"""Config loading: every error message, defaults, paths, key sources, units, the sample."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import pytest

from syncd.config import (
    Config,
    FolderConfig,
    MetricsConfig,
    MirrorConfig,
    SafetyConfig,
    ScheduleConfig,
    Secret,
    UploadConfig,
    load_config,
    render_example,
    resolve_config_path,
)
from syncd.errors import ConfigError
from syncd.units import format_duration, format_size, parse_duration, parse_size, rough_duration

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-SECRET-0123456789"
ENV = {"SYNCD_API_KEY": KEY, "HOME": "/home/tester"}

MINIMAL = """\
remote:
  base_url: http://127.0.0.1:8765
folders:
  - path: ./drop
"""

MiB = 2**20


def write(directory: Path, text: str, name: str = "config.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(directory: Path, text: str, environ: dict[str, str] | None = None, **kwargs: bool) -> Config:
    return load_config(write(directory, text), ENV if environ is None else environ, **kwargs)


def error_of(path: Path, environ: dict[str, str] | None = None, **kwargs: bool) -> str:
    """The ConfigError message with the file name cut off the front; always one line, never the key."""
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV if environ is None else environ, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert KEY not in message
    assert message.startswith(str(path)), message
    return message[len(str(path)) :]


# --------------------------------------------------------------------------- error table

ERRORS: list[tuple[str, str, str]] = [
    # (id, config text, expected message after the file name; {dir} is the config's directory)
    (
        "unknown-top-key",
        MINIMAL + "log_levl: info\n",
        ":5: log_levl: unknown key (did you mean log_level?)",
    ),
    (
        "unknown-folder-key",
        MINIMAL + "    delet_remote: false\n",
        ":5: folders[0].delet_remote: unknown key (did you mean delete_remote?)",
    ),
    (
        "unknown-key-no-match",
        MINIMAL + "zzz: 1\n",
        ":5: zzz: unknown key (known keys: instance, remote, state_dir, folders, upload, safety, schedule, "
        "mirror, metrics, ui, streams, log_level)",
    ),
    (
        "api-key-in-file",
        "remote:\n  base_url: http://127.0.0.1:8765\n  api_key: " + KEY + "\nfolders:\n  - path: ./drop\n",
        ":3: remote.api_key: unknown key (the API key never goes in this file: use remote.api_key_env "
        "or remote.api_key_file)",
    ),
    (
        "duplicate-key",
        MINIMAL + "log_level: info\nlog_level: debug\n",
        ":6: log_level: duplicate key (first set on line 5)",
    ),
    (
        "bool-as-string",
        MINIMAL + '    delete_remote: "true"\n',
        ":5: folders[0].delete_remote: expected true or false, got the string 'true'",
    ),
    (
        "bool-as-int",
        MINIMAL + "    require_marker: 1\n",
        ":5: folders[0].require_marker: expected true or false, got the integer 1",
    ),
    (
        "list-as-string",
        MINIMAL + '    include: "*.mp4"\n',
        ":5: folders[0].include: expected a list of file name patterns such as \"*.mp4\", "
        "got the string '*.mp4'",
    ),
    (
        "list-item-not-string",
        MINIMAL + "    exclude:\n      - .*\n      - 3\n",
        ":7: folders[0].exclude[1]: expected a string, got the integer 3",
    ),
    (
        "bad-collections",
        MINIMAL + "    collections: flat\n",
        ":5: folders[0].collections: must be one of subfolder, none (got 'flat')",
    ),
    (
        "bad-on-remote-delete",
        MINIMAL + "    on_remote_delete: remove\n",
        ":5: folders[0].on_remote_delete: must be one of trash, delete, keep (got 'remove')",
    ),
    (
        "bad-pipeline",
        MINIMAL + "    pipelines: [analyse, transcode]\n",
        ":5: folders[0].pipelines[1]: unknown pipeline 'transcode' (known: analyse, search-process)",
    ),
    (
        "pipeline-twice",
        MINIMAL + "    pipelines: [analyse, analyse]\n",
        ":5: folders[0].pipelines[1]: pipeline 'analyse' is listed twice",
    ),
    (
        "folder-path-number",
        "remote:\n  base_url: http://127.0.0.1:8765\nfolders:\n  - path: 2024\n",
        ':4: folders[0].path: expected a path, got the integer 2024 (quote it: "2024")',
    ),
    (
        "part-size-too-small",
        MINIMAL + "upload:\n  part_size: 1MiB\n",
        ":6: upload.part_size: 1.0 MiB is below the 5.0 MiB minimum",
    ),
    (
        "part-size-bytes-too-small",
        MINIMAL + "upload:\n  part_size: 5242879\n",
        ":6: upload.part_size: 5.0 MiB is below the 5.0 MiB minimum",
    ),
    (
        "part-size-too-big",
        MINIMAL + "upload:\n  part_size: 6GiB\n",
        ":6: upload.part_size: 6.0 GiB is above the 5.0 GiB maximum",
    ),
    (
        "part-size-garbage",
        MINIMAL + "upload:\n  part_size: 16 MiBs\n",
        ":6: upload.part_size: invalid size '16 MiBs': use bytes or a number with a unit B, KB, MB, GB, "
        "TB, KiB, MiB, GiB, TiB (e.g. 16MiB, 5MB)",
    ),
    (
        "concurrency-zero",
        MINIMAL + "upload:\n  concurrency: 0\n",
        ":6: upload.concurrency: must be between 1 and 32 (got 0)",
    ),
    (
        "concurrency-too-high",
        MINIMAL + "upload:\n  concurrency: 33\n",
        ":6: upload.concurrency: must be between 1 and 32 (got 33)",
    ),
    (
        "concurrency-string",
        MINIMAL + 'upload:\n  concurrency: "4"\n',
        ":6: upload.concurrency: expected a whole number, got the string '4'",
    ),
    (
        "max-attempts-zero",
        MINIMAL + "upload:\n  max_attempts: 0\n",
        ":6: upload.max_attempts: must be at least 1 (got 0)",
    ),
    (
        "delete-percent-high",
        MINIMAL + "safety:\n  max_delete_percent: 150\n",
        ":6: safety.max_delete_percent: must be between 0 and 100 (got 150)",
    ),
    (
        "delete-percent-negative",
        MINIMAL + "safety:\n  max_delete_percent: -0.5\n",
        ":6: safety.max_delete_percent: must be between 0 and 100 (got -0.5)",
    ),
    (
        "bad-duration",
        MINIMAL + "schedule:\n  rescan: 10 minutes\n",
        ":6: schedule.rescan: invalid duration '10 minutes': use seconds or a number with a unit ms, s, "
        "m, h, d (e.g. 500ms, 5s, 10m, 1h30m, 30d)",
    ),
    (
        "zero-duration",
        MINIMAL + "schedule:\n  remote_poll: 0s\n",
        ":6: schedule.remote_poll: must be longer than 0 (got '0s')",
    ),
    (
        "duration-bool",
        "remote:\n  base_url: http://127.0.0.1:8765\n  timeout: true\nfolders:\n  - path: ./drop\n",
        ":3: remote.timeout: expected a duration such as 30s or 10m, got true",
    ),
    (
        "folder-missing-path",
        "remote:\n  base_url: http://127.0.0.1:8765\nfolders:\n  - include: ['*.mp4']\n",
        ":4: folders[0].path: required key is missing",
    ),
    (
        "second-folder-missing-path",
        MINIMAL + "  - delete_remote: false\n",
        ":5: folders[1].path: required key is missing",
    ),
    (
        "folders-empty",
        "remote:\n  base_url: http://127.0.0.1:8765\nfolders: []\n",
        ":3: folders: at least one folder is required",
    ),
    (
        "folders-missing",
        "remote:\n  base_url: http://127.0.0.1:8765\n",
        ": folders: at least one folder is required",
    ),
    (
        "folders-not-a-list",
        "remote:\n  base_url: http://127.0.0.1:8765\nfolders:\n  path: ./drop\n",
        ":4: folders: expected a list of folders (- path: ...), got a mapping",
    ),
    (
        "folder-entry-string",
        "remote:\n  base_url: http://127.0.0.1:8765\nfolders:\n  - ./drop\n",
        ":4: folders[0]: expected a mapping of keys, got the string './drop'",
    ),
    (
        "duplicate-folders",
        MINIMAL + "  - path: drop/\n",
        ":5: folders[1].path: same folder as folders[0] ({dir}/drop)",
    ),
    (
        "nested-folder",
        MINIMAL + "  - path: ./drop/cam\n",
        ":5: folders[1].path: {dir}/drop/cam is inside folders[0] ({dir}/drop); folders must not nest",
    ),
    (
        "enclosing-folder",
        MINIMAL + "  - path: .\n",
        ":5: folders[1].path: {dir} contains folders[0] ({dir}/drop); folders must not nest",
    ),
    (
        "state-dir-in-folder",
        MINIMAL + "state_dir: ./drop/.state\n",
        ":5: state_dir: {dir}/drop/.state is inside folders[0] ({dir}/drop); keep state outside "
        "watched folders",
    ),
    (
        "pull-into-unknown",
        MINIMAL + "mirror:\n  pull_into: ./elsewhere\n",
        ":6: mirror.pull_into: {dir}/elsewhere is not one of the folders ({dir}/drop)",
    ),
    (
        "sidecars-empty",
        MINIMAL + 'mirror:\n  sidecars: ""\n',
        ":6: mirror.sidecars: must be beside or a directory path, not empty",
    ),
    (
        "metrics-no-port",
        MINIMAL + "metrics:\n  listen: localhost\n",
        ":6: metrics.listen: expected HOST:PORT such as 127.0.0.1:9464, got 'localhost'",
    ),
    (
        "metrics-bad-port",
        MINIMAL + "metrics:\n  listen: 127.0.0.1:99999\n",
        ":6: metrics.listen: port must be 1..65535 (got '99999')",
    ),
    (
        "metrics-ipv6-unbracketed",
        MINIMAL + 'metrics:\n  listen: "::1:9464"\n',
        ":6: metrics.listen: an IPv6 host needs brackets, like [::1]:9464 (got '::1:9464')",
    ),
    (
        "unknown-backend",
        "remote:\n  backend: s3\n  base_url: http://127.0.0.1:8765\nfolders:\n  - path: ./drop\n",
        ":2: remote.backend: unknown backend 's3' (known: mikshi, memories)",
    ),
    (
        "memories-key-on-mikshi",
        "remote:\n  base_url: http://127.0.0.1:8765\n  unique_id: cams\nfolders:\n  - path: ./drop\n",
        ":3: remote.unique_id: only the memories backend reads this key (backend is mikshi)",
    ),
    (
        "rate-limit-unknown-group",
        "remote:\n  backend: memories\n  base_url: http://127.0.0.1:8765\n  rate_limits: {uplod: 1/s}\n"
        "folders:\n  - path: ./drop\n",
        ":4: remote.rate_limits.uplod: the memories backend has no endpoint group 'uplod' (known: upload, list, "
        "delete, search, metadata, task_status, download, stream)",
    ),
    (
        "rate-limit-bad-rate",
        "remote:\n  backend: memories\n  base_url: http://127.0.0.1:8765\n  rate_limits: {upload: fast}\n"
        "folders:\n  - path: ./drop\n",
        ":4: remote.rate_limits: upload: bad rate 'fast': use <count>/<unit> with a unit s, min or h (e.g. 5/s, 1/min, 12/min)",
    ),
    (
        "rate-limits-on-mikshi",
        "remote:\n  base_url: http://127.0.0.1:8765\n  rate_limits: {upload: 1/s}\nfolders:\n  - path: ./drop\n",
        ":3: remote.rate_limits.upload: the mikshi backend has no endpoint group 'upload' (known: none: it "
        "publishes no rate limits)",
    ),
    (
        "base-url-ftp",
        "remote:\n  base_url: ftp://example.com\nfolders:\n  - path: ./drop\n",
        ":2: remote.base_url: expected an http:// or https:// URL, got 'ftp://example.com'",
    ),
    (
        "base-url-no-scheme",
        "remote:\n  base_url: example.com:8765\nfolders:\n  - path: ./drop\n",
        ":2: remote.base_url: expected an http:// or https:// URL, got 'example.com:8765'",
    ),
    (
        "base-url-space",
        'remote:\n  base_url: "http://a b"\nfolders:\n  - path: ./drop\n',
        ":2: remote.base_url: expected an http:// or https:// URL, got 'http://a b'",
    ),
    (
        "two-documents",
        MINIMAL + "---\nlog_level: info\n",
        ":5: invalid YAML: expected a single document in the stream, but found another document",
    ),
    (
        "control-character",
        MINIMAL + 'log_level: "\x01"\n',
        ":5: invalid YAML: unacceptable character #x0001: special characters are not allowed",
    ),
    (
        "base-url-credentials",
        "remote:\n  base_url: https://me:" + KEY + "@example.com\nfolders:\n  - path: ./drop\n",
        ":2: remote.base_url: must not contain a user name or password; the API key comes from "
        "remote.api_key_env or remote.api_key_file",
    ),
    (
        "base-url-missing",
        "remote:\n  backend: mikshi\nfolders:\n  - path: ./drop\n",
        ":1: remote.base_url: required key is missing",
    ),
    (
        "remote-missing",
        "folders:\n  - path: ./drop\n",
        ": remote.base_url: required key is missing",
    ),
    (
        "section-not-mapping",
        MINIMAL + "upload: 5\n",
        ":5: upload: expected a mapping of keys, got the integer 5",
    ),
    (
        "log-level",
        MINIMAL + "log_level: verbose\n",
        ":5: log_level: must be one of debug, info, warning, error (got 'verbose')",
    ),
    (
        "api-key-env-holds-the-key",
        "remote:\n  base_url: http://127.0.0.1:8765\n  api_key_env: " + KEY + "\nfolders:\n  - path: ./drop\n",
        ":3: remote.api_key_env: expected the name of an environment variable such as SYNCD_API_KEY "
        "(the name, not the key)",
    ),
    (
        "top-level-list",
        "- remote\n- folders\n",
        ":1: top level must be a mapping of keys such as remote and folders, got a list",
    ),
    (
        "top-level-string",
        "just some words\n",
        ":1: top level must be a mapping of keys such as remote and folders, got the string 'just some words'",
    ),
    (
        "empty-file",
        "# nothing but a comment\n",
        ": the file is empty; expected a mapping of keys such as remote and folders",
    ),
    (
        "yaml-syntax",
        "remote:\n  base_url: http://127.0.0.1:8765\n folders: []\n",
        ":3: invalid YAML: expected <block end>, but found '<block mapping start>'",
    ),
    (
        "yaml-unclosed-flow",
        MINIMAL + "    include: [*.mp4\n",
        ":5: invalid YAML: expected alphabetic or numeric character, but found '.'",
    ),
    (
        "yaml-python-tag",
        MINIMAL + "log_level: !!python/name:os.system\n",
        ":5: log_level: could not determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in ERRORS], ids=[i for i, _, _ in ERRORS])
def test_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path) == expected.format(dir=tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert error_of(path) == (
        ": no such file (start from config.example.yaml, or pass -c/--config or set $SYNCD_CONFIG)"
    )


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert error_of(tmp_path) == ": is a directory, not a config file"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:  # chmod 0 would not stop root, so fake the refusal
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert error_of(path) == ": cannot read: Permission denied"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(MINIMAL.encode() + b"log_level: \xff\n")
    assert error_of(path) == ":5: not UTF-8 text"


def test_relative_config_path_in_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, MINIMAL + "upload:\n  concurrency: 99\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(Path("config.yaml"), ENV)
    assert str(info.value) == "config.yaml:6: upload.concurrency: must be between 1 and 32 (got 99)"


# --------------------------------------------------------------------------- defaults and values


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    drop = tmp_path / "drop"
    assert config.remote.backend == "mikshi"
    assert config.remote.base_url == "http://127.0.0.1:8765"
    assert config.remote.api_key == Secret(KEY)
    assert config.remote.api_key_source == "$SYNCD_API_KEY"
    assert config.remote.timeout == 30.0
    assert config.remote.max_retries == 5
    assert config.state_dir == tmp_path / "state"
    assert config.folders == (
        FolderConfig(
            path=drop,
            include=("*.mp4", "*.mov", "*.mkv", "*.avi", "*.webm", "*.m4v"),
            exclude=(".*", "*.part", "*.tmp", "*.crdownload"),
            collections="subfolder",
            pipelines=("analyse", "search-process"),
            delete_remote=True,
            on_remote_delete="trash",
            require_marker=False,
            remove_empty_collections=False,
        ),
    )
    assert config.upload == UploadConfig(
        part_size=16 * MiB, concurrency=4, settle_seconds=5.0, direct_upload_below=0, max_attempts=5,
        retry_backoff=30.0,
    )
    assert config.safety == SafetyConfig(max_delete_percent=50.0, delete_grace=30.0, max_proof_download=1 << 30)
    assert config.instance and config.instance[0].isalnum()  # the host name, made safe
    assert config.schedule == ScheduleConfig(rescan=600.0, remote_poll=120.0)
    assert config.mirror == MirrorConfig(
        interval=900.0, sidecars="beside", sidecar_dir=None, embeddings=True, pull_remote=False, pull_into=drop
    )
    assert config.metrics == MetricsConfig(listen=None)
    assert config.log_level == "info"
    assert config.source == tmp_path / "config.yaml"


def test_every_key_set(tmp_path: Path) -> None:
    text = """\
remote:
  backend: mikshi
  base_url: https://videos.example.com/api/
  api_key_env: MY_KEY
  timeout: 1m
  max_retries: 0
state_dir: /var/lib/syncd
folders:
  - path: /srv/cam
    include: ["*.MP4"]
    exclude: []
    collections: none
    pipelines: []
    delete_remote: false
    on_remote_delete: keep
    require_marker: yes
    remove_empty_collections: true
  - path: /srv/drop
upload:
  part_size: 67108864
  concurrency: 32
  settle_seconds: 1.5
  direct_upload_below: 5MB
  max_attempts: 9
safety:
  max_delete_percent: 0
  delete_grace: 500ms
schedule:
  rescan: 1h30m
  remote_poll: 45
mirror:
  interval: 2h
  sidecars: ./sidecars
  embeddings: false
  pull_remote: true
  pull_into: /srv/drop/
metrics:
  listen: "[::1]:9464"
log_level: DEBUG
"""
    config = load(tmp_path, text, {"MY_KEY": KEY})
    assert config.remote.base_url == "https://videos.example.com/api"
    assert config.remote.api_key_source == "$MY_KEY"
    assert (config.remote.timeout, config.remote.max_retries) == (60.0, 0)
    assert config.state_dir == Path("/var/lib/syncd")
    cam, drop = config.folders
    assert cam == FolderConfig(
        path=Path("/srv/cam"),
        include=("*.MP4",),
        exclude=(),
        collections="none",
        pipelines=(),
        delete_remote=False,
        on_remote_delete="keep",
        require_marker=True,
        remove_empty_collections=True,
    )
    assert drop.path == Path("/srv/drop") and drop.delete_remote is True
    assert config.upload == UploadConfig(
        part_size=64 * MiB, concurrency=32, settle_seconds=1.5, direct_upload_below=5_000_000, max_attempts=9,
        retry_backoff=30.0,
    )
    assert config.safety == SafetyConfig(max_delete_percent=0.0, delete_grace=0.5)
    assert config.schedule == ScheduleConfig(rescan=5400.0, remote_poll=45.0)
    assert config.mirror == MirrorConfig(
        interval=7200.0,
        sidecars="directory",
        sidecar_dir=tmp_path / "sidecars",
        embeddings=False,
        pull_remote=True,
        pull_into=Path("/srv/drop"),
    )
    assert config.metrics.listen == ("::1", 9464)
    assert config.log_level == "debug"


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("localhost:80", ("localhost", 80)),
        ('":9464"', ("0.0.0.0", 9464)),
        ("9464", ("127.0.0.1", 9464)),
        ('"[::]:1"', ("::", 1)),
        ("null", None),
    ],
)
def test_metrics_listen(tmp_path: Path, listen: str, expected: tuple[str, int] | None) -> None:
    assert load(tmp_path, MINIMAL + f"metrics:\n  listen: {listen}\n").metrics.listen == expected


def test_empty_section_means_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL + "upload:\nmetrics:\n").upload == load(tmp_path, MINIMAL).upload


def test_yaml_merge_keys_override(tmp_path: Path) -> None:
    text = """\
remote:
  base_url: http://127.0.0.1:8765
folders:
  - &cam
    path: ./cam1
    collections: none
    pipelines: [analyse]
    delete_remote: false
  - <<: *cam
    path: ./cam2
"""
    first, second = load(tmp_path, text).folders
    assert second.path == tmp_path / "cam2"
    assert second.pipelines == ("analyse",) and second.delete_remote is False


# --------------------------------------------------------------------------- paths


def test_relative_paths_follow_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # like systemd's CWD of /: must not matter
    conf_dir = tmp_path / "etc" / "syncd"
    text = MINIMAL + "  - path: ~/videos\n  - path: ../media/cam/\n  - path: /abs/x\nstate_dir: state/../db\n"
    config = load(conf_dir, text)
    assert [f.path for f in config.folders] == [
        conf_dir / "drop",
        Path("/home/tester/videos"),
        tmp_path / "etc" / "media" / "cam",
        Path("/abs/x"),
    ]
    assert config.state_dir == conf_dir / "db"
    assert config.source == conf_dir / "config.yaml"


def test_missing_folder_directory_is_not_an_error(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL.replace("./drop", "/mnt/not-mounted/cam"))
    assert config.folders[0].path == Path("/mnt/not-mounted/cam")


def test_state_directory_from_systemd_when_unset(tmp_path: Path) -> None:
    environ = {**ENV, "STATE_DIRECTORY": "/var/lib/syncd:/var/lib/other"}
    assert load(tmp_path, MINIMAL, environ).state_dir == Path("/var/lib/syncd")
    explicit = load(tmp_path, MINIMAL + "state_dir: ./mine\n", environ)
    assert explicit.state_dir == tmp_path / "mine"


def test_folder_for(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL + "  - path: ./cam\n")
    drop, cam = config.folders
    assert config.folder_for(tmp_path / "drop") is drop
    assert config.folder_for(tmp_path / "drop" / "trip" / "a.mp4") is drop
    assert config.folder_for(str(tmp_path / "cam" / "x.mov")) is cam
    assert config.folder_for(tmp_path / "drop2" / "a.mp4") is None
    assert config.folder_for(tmp_path / "cam" / ".." / "state") is None


def test_resolve_config_path() -> None:
    assert resolve_config_path("/etc/syncd/a.yaml", {"SYNCD_CONFIG": "/b.yaml"}) == Path("/etc/syncd/a.yaml")
    assert resolve_config_path(None, {"SYNCD_CONFIG": "/b.yaml"}) == Path("/b.yaml")
    assert resolve_config_path(None, {"SYNCD_CONFIG": ""}) == Path("config.yaml")
    assert resolve_config_path(None, {}) == Path("config.yaml")


# --------------------------------------------------------------------------- the API key


def test_key_from_env(tmp_path: Path) -> None:
    remote = load(tmp_path, MINIMAL, {"SYNCD_API_KEY": f"  {KEY}\n"}).remote
    assert remote.api_key.reveal() == KEY
    assert remote.api_key_source == "$SYNCD_API_KEY"


def test_key_from_file_wins_over_env(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "key").write_text(KEY + "\n")
    text = MINIMAL.replace("folders:", "  api_key_file: secrets/key\nfolders:")
    remote = load(tmp_path, text, {"SYNCD_API_KEY": "other-key"}).remote
    assert remote.api_key.reveal() == KEY
    assert remote.api_key_source == f"file {tmp_path / 'secrets' / 'key'}"


def test_key_from_systemd_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-key").write_text(KEY)
    environ = {"SYNCD_API_KEY": "", "CREDENTIALS_DIRECTORY": str(creds)}
    remote = load(tmp_path, MINIMAL, environ).remote
    assert remote.api_key.reveal() == KEY
    assert remote.api_key_source == "systemd credential api-key"
    # The environment variable comes before the credential.
    assert load(tmp_path, MINIMAL, {**environ, "SYNCD_API_KEY": "from-env"}).remote.api_key_source == (
        "$SYNCD_API_KEY"
    )


NO_KEY = ': no API key: set $SYNCD_API_KEY (remote.api_key_env), remote.api_key_file, or a systemd credential "api-key"'


@pytest.mark.parametrize(
    "environ",
    [{}, {"SYNCD_API_KEY": "   "}, {"CREDENTIALS_DIRECTORY": "/nonexistent"}],
    ids=["unset", "blank", "no-credential-file"],
)
def test_no_key(tmp_path: Path, environ: dict[str, str]) -> None:
    assert error_of(write(tmp_path, MINIMAL), environ) == NO_KEY


def test_no_key_names_the_configured_variable(tmp_path: Path) -> None:
    text = MINIMAL.replace("folders:", "  api_key_env: VIDEO_KEY\nfolders:")
    assert error_of(write(tmp_path, text), {}) == (
        ': no API key: set $VIDEO_KEY (remote.api_key_env), remote.api_key_file, or a systemd credential "api-key"'
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read {file}: No such file or directory"),
        ("  \n", "{file} is empty"),
        (KEY + "\n" + KEY, "{file} contains whitespace, control or non-ASCII characters inside the key"),
    ],
    ids=["missing", "empty", "two-lines"],
)
def test_bad_key_file(tmp_path: Path, content: str | None, problem: str) -> None:
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    text = MINIMAL.replace("folders:", "  api_key_file: ./key\nfolders:")
    path = write(tmp_path, text)
    assert error_of(path) == ":3: remote.api_key_file: " + problem.format(file=key_file)
    # Commands that never call the remote still load.
    relaxed = load_config(path, ENV, require_key=False).remote
    assert (relaxed.api_key, relaxed.api_key_source) == (Secret(""), "none")


def test_empty_systemd_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-key").write_text("")
    path = write(tmp_path, MINIMAL)
    assert error_of(path, {"CREDENTIALS_DIRECTORY": str(creds)}) == (
        f': systemd credential "api-key": {creds / "api-key"} is empty'
    )


def test_require_key_false(tmp_path: Path) -> None:
    remote = load(tmp_path, MINIMAL, {}, require_key=False).remote
    assert remote.api_key == Secret("")
    assert not remote.api_key
    assert remote.api_key_source == "none"


def test_key_never_printed(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert KEY not in repr(config)
    assert KEY not in str(config)
    assert KEY not in f"{config.remote.api_key}"
    assert repr(config.remote.api_key) == str(config.remote.api_key) == "Secret('********')"


def test_secret_behaviour() -> None:
    secret = Secret(KEY)
    assert secret.reveal() == KEY
    assert secret == Secret(KEY)
    assert secret != Secret("other")
    assert secret != KEY  # never equal to the bare string: no accidental comparisons
    assert hash(secret) == hash(Secret(KEY))
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]


def test_config_is_frozen_and_copyable(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.log_level = "debug"  # type: ignore[misc]
    assert copy.deepcopy(config) == config
    assert config == load(tmp_path, MINIMAL)
    hash(config)


# --------------------------------------------------------------------------- the sample


def test_example_file_is_rendered_from_the_schema() -> None:
    assert (REPO / "config.example.yaml").read_text() == render_example()


def test_example_loads_to_the_defaults(tmp_path: Path) -> None:
    example = load(tmp_path, render_example())
    assert example == load(tmp_path, MINIMAL)


def test_example_comments_every_key() -> None:
    lines = render_example().splitlines()
    for index, line in enumerate(lines):
        stripped = line.lstrip(" -")
        if stripped and not stripped.startswith("#"):
            above = lines[index - 1].strip()
            assert above.startswith("#"), f"no comment above {line!r}"


def test_example_in_place_loads() -> None:
    config = load_config(REPO / "config.example.yaml", ENV)
    assert config.state_dir == REPO / "state"
    assert config.folders[0].path == REPO / "drop"


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("5s", 5.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("30d", 2_592_000.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        (" 2 m ", 120.0),
        ("45", 45.0),
        ("0", 0.0),
        (7, 7.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10 minutes", "invalid duration '10 minutes': use seconds"),
        ("5x", "invalid duration '5x'"),
        ("", "invalid duration ''"),
        ("-5s", "invalid duration '-5s'"),
        (-1, "invalid duration -1: must not be negative"),
        (True, "invalid duration True"),
        (float("inf"), "must be a finite number"),
    ],
)
def test_parse_duration_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("16MiB", 16 * 2**20),
        ("5MB", 5 * 10**6),
        ("1GiB", 2**30),
        ("512KiB", 512 * 1024),
        ("64k", 64 * 1024),
        ("2gb", 2 * 10**9),
        ("1TiB", 2**40),
        ("100B", 100),
        ("1.5KiB", 1536),
        ("1234", 1234),
        (0, 0),
        (5242880, 5242880),
        (1e6, 1_000_000),
    ],
)
def test_parse_size(value: str | int | float, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("16 MiBs", "invalid size '16 MiBs'"),
        ("MiB", "invalid size 'MiB'"),
        ("1.5", "not a whole number of bytes"),
        (-1, "must not be negative"),
        (False, "invalid size False"),
        (2.5, "not a whole number of bytes"),
    ],
)
def test_parse_size_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(value)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (16 * 2**20, "16.0 MiB"), (5 * 2**30, "5.0 GiB"), (3 * 2**40, "3.0 TiB")],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (5, "5s"), (90, "1m30s"), (5.25, "5.25s"), (3600, "1h"), (86400 * 30, "30d"), (93784, "1d2h3m4s")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds



@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-3, "0s"), (0.4, "0s"), (40.4, "40s"), (59.4, "59s"), (61, "1m"), (12 * 60 + 20, "12m"), (89 * 60 + 40, "1h30m"),
     (5 * 3600 + 1000, "5h"), (26 * 3600, "1d2h"), (float("nan"), "0s")],
)
def test_rough_duration_is_what_status_and_sync_say(seconds: float, text: str) -> None:
    """One rough format for ages and waits ("as of the last scan, 40s ago", "next check in
    48m"), read back by ``parse_duration`` as the config's own durations are."""
    assert rough_duration(seconds) == text
    assert parse_duration(text) >= 0

# ------------------------------------------------------------------ live streams (issue 13)
MEMORIES_MINIMAL = """\
remote:
  backend: memories
  base_url: http://127.0.0.1:8765/serve/api/v1
folders:
  - path: ./drop
"""

STREAM_ERRORS = [
    ("mikshi-has-none", MINIMAL + "streams:\n  - url: rtsp://cam/1\n",
     ":5: streams: the mikshi backend has no live streams; remove this section"),
    ("bad-scheme", MEMORIES_MINIMAL + "streams:\n  - url: ftp://cam/1\n",
     ":7: streams[0].url: expected an rtsp://, rtmp:// or http(s):// (HLS) URL, got 'ftp://cam/1'"),
    ("password-never-echoed", MEMORIES_MINIMAL + "streams:\n  - url: udp://me:pw123@cam/1\n",
     ":7: streams[0].url: expected an rtsp://, rtmp:// or http(s):// (HLS) URL, got 'udp://me:***@cam/1'"),
    ("no-url", MEMORIES_MINIMAL + "streams:\n  - fps: 2\n", ":7: streams[0].url: required key is missing"),
    ("fps-range", MEMORIES_MINIMAL + "streams:\n  - url: rtsp://cam/1\n    fps: 0\n",
     ":8: streams[0].fps: must be between 1 and 30 (got 0)"),
    ("max-logos-range", MEMORIES_MINIMAL + "streams:\n  - url: rtsp://cam/1\n    max_logos: 51\n",
     ":8: streams[0].max_logos: must be between 1 and 50 (got 51)"),
    ("same-camera-twice", MEMORIES_MINIMAL + "streams:\n  - url: rtsp://cam/1\n  - url: rtsp://cam/1\n",
     ":8: streams[1].url: the same camera as streams[0]"),
    ("unknown-option", MEMORIES_MINIMAL + "streams:\n  - url: rtsp://cam/1\n    callback: x\n",
     ":8: streams[0].callback: unknown key (known keys: url, enable_content_moderation, enable_logo_detection, "
     "fps, max_logos)"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in STREAM_ERRORS],
                         ids=[i for i, _, _ in STREAM_ERRORS])
def test_stream_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(write(tmp_path, text)) == expected


def test_streams_load_with_their_defaults(tmp_path: Path) -> None:
    from syncd.config import StreamConfig

    assert load(tmp_path, MINIMAL + "streams: []\n").streams == ()  # empty: fine on any backend
    config = load(tmp_path, MEMORIES_MINIMAL + "streams:\n  - url: rtsp://cam/1\n"
                  "  - url: https://cdn.example/live.m3u8?token=x\n    fps: 3\n    enable_logo_detection: true\n")
    assert config.streams == (
        StreamConfig("rtsp://cam/1"),
        StreamConfig("https://cdn.example/live.m3u8?token=x", enable_logo_detection=True, fps=3),
    )
    assert config.streams[1].options() == {"enable_content_moderation": False, "enable_logo_detection": True,
                                           "fps": 3, "max_logos": 5}
