"""The config file: YAML in, typed frozen dataclasses out.

This is the only package that knows YAML; the rest of syncd takes ``Config``.
One schema (``schema.SCHEMA``) drives validation, the defaults and the commented
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

The package: ``model`` (the dataclasses the rest of syncd takes), ``schema`` (every key with
its parser, default and doc), ``loader`` (YAML → model) and ``example`` (the sample).
Import from ``syncd.config``; the split is for readers.
"""

from syncd.config.example import render_example
from syncd.config.loader import load_config, resolve_config_path
from syncd.config.model import (
    BACKENDS,
    CONFIG_ENV,
    CREDENTIAL_NAME,
    DEFAULT_CONFIG_NAME,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    UI_DEFAULT_LISTEN,
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
from syncd.config.schema import parse_listen, shown_stream_url

__all__ = [
    "BACKENDS", "CONFIG_ENV", "CREDENTIAL_NAME", "DEFAULT_CONFIG_NAME", "MAX_PART_SIZE", "MIN_PART_SIZE",
    "UI_DEFAULT_LISTEN", "Config", "FolderConfig", "MetricsConfig", "MirrorConfig", "RemoteConfig",
    "SafetyConfig", "ScheduleConfig", "Secret", "StreamConfig", "UiConfig", "UploadConfig", "is_loopback", "load_config",
    "parse_listen", "render_example", "shown_stream_url", "resolve_config_path",
]
