"""Loading a config file: YAML nodes checked against the schema, one-line ``ConfigError``s,
the API key resolved into a ``Secret``, paths resolved against the file's directory."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from syncd.config.model import (
    CONFIG_ENV,
    CREDENTIAL_NAME,
    DEFAULT_CONFIG_NAME,
    Config,
    FolderConfig,
    MetricsConfig,
    MirrorConfig,
    RemoteConfig,
    SafetyConfig,
    ScheduleConfig,
    Secret,
    StreamConfig,
    UiConfig,
    UploadConfig,
    is_loopback,
)
from syncd.config.schema import (
    REQUIRED,
    SCHEMA,
    Env,
    Invalid,
    Key,
    Section,
    describe,
    quote,
)
from syncd.errors import ConfigError
from syncd.remote.base import Features
from syncd.remote.facts import backend_facts

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

    def __init__(self, file: str, env: Env) -> None:
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

    def mapping(self, spec: Section, node: Node, prefix: str) -> dict[str, tuple[Node, Node]]:
        """The keys of a mapping node by name, after checking names and duplicates."""
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            return {}  # "upload:" with nothing under it: all defaults
        if not isinstance(node, MappingNode):
            got = "a list" if isinstance(node, SequenceNode) else describe(self.construct(node, prefix))
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

    def section(self, spec: Section, node: Node | None, prefix: str, owner_line: int | None) -> dict[str, Any]:
        """Parse one mapping against its schema; absent keys take their defaults."""
        present = {} if node is None else self.mapping(spec, node, prefix)
        out: dict[str, Any] = {}
        for item in spec.keys:
            dotted = _join(prefix, item.name)
            found = present.get(item.name)
            if found is not None:
                self.lines[dotted] = _line(found[1]) if isinstance(item, Key) else _line(found[0])
            if isinstance(item, Section):
                if item.many:
                    out[item.name] = self.many(item, found, dotted)
                else:
                    line = owner_line if found is None else _line(found[0])
                    out[item.name] = self.section(item, None if found is None else found[1], dotted, line)
            elif found is None:
                if item.default is REQUIRED:
                    self.fail(dotted, "required key is missing", owner_line)
                out[item.name] = item.parse(item.default, self.env)
            else:
                out[item.name] = self.value(item, found[1], dotted)
        return out

    def many(self, spec: Section, found: tuple[Node, Node] | None, dotted: str) -> list[dict[str, Any]]:
        needed = f"at least one {spec.many} is required"
        if found is None:
            if spec.optional:
                return []
            self.fail(dotted, needed)
        key_node, node = found
        if (isinstance(node, ScalarNode) and node.tag == _NULL_TAG) or (
            isinstance(node, SequenceNode) and not node.value
        ):
            if spec.optional:
                return []
            self.fail(dotted, needed, _line(key_node))
        if not isinstance(node, SequenceNode):
            got = "a mapping" if isinstance(node, MappingNode) else describe(self.construct(node, dotted))
            self.fail(dotted, f"expected a list of {spec.many}s (- path: ...), got {got}", _line(node))
        return [self.section(spec, item, f"{dotted}[{i}]", _line(item)) for i, item in enumerate(node.value)]

    def value(self, spec: Key, node: Node, dotted: str) -> object:
        raw = self.construct(node, dotted)
        try:
            return spec.parse(raw, self.env)
        except Invalid as exc:
            if exc.index is not None and isinstance(node, SequenceNode) and exc.index < len(node.value):
                self.fail(f"{dotted}[{exc.index}]", exc.message, _line(node.value[exc.index]))
            self.fail(dotted, exc.message, _line(node))

    # ----------------------------------------------------------------------- cross-key rules

    def rate_limits(self, limits: dict[str, str | None], backend: str,
                    facts: Features) -> tuple[tuple[str, str | None], ...]:
        """Overrides of the backend's published rates: only groups it declares."""
        for group in limits:
            if group not in facts.rate_limits:
                known = ", ".join(facts.rate_limits) or "none: it publishes no rate limits"
                self.fail(f"remote.rate_limits.{group}",
                          f"the {backend} backend has no endpoint group {quote(group)} (known: {known})",
                          self.lines.get("remote.rate_limits"))
        return tuple(limits.items())

    def check_backend_keys(self, remote: dict[str, Any]) -> None:
        """Keys that only one backend reads are an error for another, not silently ignored."""
        if remote["backend"] == "memories":
            return
        for key in ("v2_base_url", "unique_id"):
            if remote[key] is not None:
                self.fail(f"remote.{key}", f"only the memories backend reads this key (backend is {remote['backend']})",
                          self.lines.get(f"remote.{key}"))

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
                self.fail(f"{key}[{at}]", f"unknown pipeline {quote(name)} (known: {', '.join(facts.pipelines)})",
                          self.lines.get(key))
        return names

    def streams(self, entries: list[dict[str, Any]], backend: str, facts: Features) -> tuple[StreamConfig, ...]:
        """Live streams: only for a backend that declares them; each camera once."""
        if entries and "streams" not in facts.abilities:
            self.fail("streams", f"the {backend} backend has no live streams; remove this section",
                      self.lines.get("streams"))
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            url = entry["url"]
            if url in seen:
                self.fail(f"streams[{index}].url", f"the same camera as streams[{seen[url]}]",
                          self.lines.get(f"streams[{index}].url"))
            seen[url] = index
        return tuple(StreamConfig(**entry) for entry in entries)

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
    loader = _Loader(file, Env(base_dir=source.parent, home=home))

    root = loader.compose(text)
    if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL_TAG):
        loader.fail("", "the file is empty; expected a mapping of keys such as remote and folders")
    if not isinstance(root, MappingNode):
        got = "a list" if isinstance(root, SequenceNode) else describe(loader.construct(root, ""))
        loader.fail("", f"top level must be a mapping of keys such as remote and folders, got {got}", _line(root))
    raw = loader.section(SCHEMA, root, "", None)

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
        v2_base_url=remote_raw["v2_base_url"],
        unique_id=remote_raw["unique_id"],
        rate_limits=loader.rate_limits(remote_raw["rate_limits"], remote_raw["backend"], facts),
    )
    loader.check_backend_keys(remote_raw)

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

    streams = loader.streams(raw["streams"], remote_raw["backend"], facts)

    return Config(
        streams=streams,
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
