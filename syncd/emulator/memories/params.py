"""Strict reading of request parameters; every refusal is a v1 ``0001`` (or ``0003`` for a
value outside a documented set) with one line saying which field and why.

JSON bodies are typed (no ``"5"`` for a number, no ``1`` for a boolean): the emulator must
be at least as strict as the service, never laxer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from syncd.emulator.errors import ApiError
from syncd.emulator.memories import envelope
from syncd.emulator.wire import MAX_JSON_BYTES, Request

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # the doc's yyyy-MM-dd HH:mm:ss
_DATETIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
LATLON_TOGETHER = "The latitude and longitude parameters must be provided together."
_MISSING = object()


def bad(msg: str, code: str = envelope.BAD_PARAM) -> ApiError:
    return envelope.v1_error(code, msg)


def json_body(req: Request) -> Any:
    """The body as JSON (any type: delete_videos takes a bare array)."""
    ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise bad(f"Content-Type '{ctype or 'none'}' is not supported: send application/json")
    raw = req.body.read_all(MAX_JSON_BYTES)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"JSON parse error: {exc}") from None


def json_object(req: Request) -> dict[str, Any]:
    data = json_body(req)
    if not isinstance(data, dict):
        raise bad("JSON parse error: the request body must be a JSON object")
    return data


class Params:
    """Typed access to a JSON object or a query string (query values are text)."""

    def __init__(self, data: Mapping[str, Any], *, text: bool = False) -> None:
        self.data = data
        self.text = text

    def _get(self, name: str) -> Any:
        value = self.data.get(name, _MISSING)
        if self.text and isinstance(value, list):
            value = value[-1] if value else _MISSING
        return value

    def present(self, name: str) -> bool:
        value = self._get(name)
        return value is not _MISSING and value is not None

    def string(self, name: str, *, required: bool = False, default: str | None = None,
               non_empty: bool = False, max_len: int = 1024) -> str | None:
        value = self._get(name)
        if value is _MISSING or value is None:
            if required:
                raise bad(f"{name} is required")
            return default
        if not isinstance(value, str):
            raise bad(f"{name} must be a string")
        if (required or non_empty) and not value.strip():
            raise bad(f"{name} must not be empty")
        if len(value) > max_len:
            raise bad(f"{name} is longer than {max_len} characters")
        return value

    def integer(self, name: str, *, default: int | None = None, required: bool = False,
                ge: int | None = None, le: int | None = None) -> int | None:
        value = self._get(name)
        if value is _MISSING or value is None:
            if required:
                raise bad(f"{name} is required")
            return default
        if self.text and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"{name} must be an integer")
        if ge is not None and value < ge:
            raise bad(f"{name} must be >= {ge}")
        if le is not None and value > le:
            raise bad(f"{name} must be <= {le}")
        return value

    def number(self, name: str, lo: float, hi: float) -> float | None:
        value = self._get(name)
        if value is _MISSING or value is None:
            return None
        if self.text and isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise bad(f"{name} must be a decimal number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise bad(f"{name} must be a decimal number")
        if not lo <= value <= hi:
            raise bad(f"{name} must be between {lo:g} and {hi:g}")
        return float(value)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._get(name)
        if value is _MISSING or value is None:
            return default
        if self.text and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, bool):
            return value
        raise bad(f"{name} must be true or false")

    def string_list(self, name: str, *, max_items: int) -> list[str] | None:
        value = self._get(name)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(f"{name} must be a list of strings")
        if len(value) > max_items:
            raise bad(f"{name} takes at most {max_items} items")
        return list(value)

    def lat_lon(self) -> tuple[float, float] | None:
        """latitude + longitude, both or neither (memories-list-videos.txt)."""
        if self.present("latitude") != self.present("longitude"):
            raise bad(LATLON_TOGETHER)
        lat = self.number("latitude", -90.0, 90.0)
        lon = self.number("longitude", -180.0, 180.0)
        return None if lat is None or lon is None else (lat, lon)


def datetime_ms(name: str, text: str) -> int:
    """``yyyy-MM-dd HH:mm:ss`` exactly, as epoch milliseconds. The doc names no time zone;
    the emulator reads it as UTC."""
    if not _DATETIME_SHAPE.fullmatch(text):
        raise bad(f"{name} must be formatted yyyy-MM-dd HH:mm:ss")
    try:
        parsed = datetime.strptime(text, DATETIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise bad(f"{name} is not a valid date and time") from None
    return int(parsed.timestamp() * 1000)
