"""Pydantic-flavoured validation of JSON bodies and query strings.

Collects every problem, then raises one FastAPI-style 422 (``errors.validation``). Body
fields are typed strictly (no "5" for an int, no 1 for a bool): the emulator should be at
least as strict as the real service, never laxer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.emulator.errors import field_error, validation

_MISSING = object()
_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def parse_uuid(value: Any) -> str | None:
    """Canonical lowercase form of a UUID string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def parse_json_object(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as a JSON object, or a 422 the way FastAPI words it."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and not (ctype == "application/json" or ctype.endswith("+json")):
        # FastAPI hands non-JSON bodies to the model as raw bytes, which fail validation.
        raise validation([field_error(["body"], "Input should be a valid dictionary or object "
                                      "to extract fields from", "model_attributes_type",
                                      raw.decode("utf-8", "replace")[:200])])
    if not raw.strip():
        raise validation([field_error(["body"], "Field required", "missing")])
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation([field_error(["body", 0], "JSON decode error", "json_invalid", {},
                                      {"error": str(exc)})]) from None
    if not isinstance(data, dict):
        raise validation([field_error(["body"], "Input should be a valid dictionary or object "
                                      "to extract fields from", "model_attributes_type", data)])
    return data


class Fields:
    """Typed access to one request source (``"body"`` or ``"query"``), collecting errors.

    Query values arrive as strings (the last one wins, as in Starlette) and are coerced;
    body values must already have the right JSON type.
    """

    def __init__(self, source: str, data: Mapping[str, Any], *, coerce: bool | None = None) -> None:
        self.source = source
        self.data = data
        # Query strings and form fields arrive as text and are coerced; JSON is typed.
        self.coerce = source == "query" if coerce is None else coerce
        self.errors: list[dict[str, Any]] = []

    def _get(self, name: str) -> Any:
        value = self.data.get(name, _MISSING)
        if isinstance(value, list) and self.source == "query":
            value = value[-1] if value else _MISSING
        return value

    def _err(self, name: str, msg: str, type_: str, value: Any,
             ctx: dict[str, Any] | None = None) -> None:
        self.errors.append(field_error([self.source, name], msg, type_,
                                       None if value is _MISSING else value, ctx))

    def present(self, name: str) -> bool:
        return self._get(name) is not _MISSING

    def string(self, name: str, *, required: bool = False, default: str | None = None,
               min_len: int = 0, max_len: int | None = None,
               nullable: bool = True) -> str | None:
        value = self._get(name)
        if value is _MISSING:
            if required:
                self._err(name, "Field required", "missing", value)
            return default
        if value is None and nullable and not required:
            return None
        if not isinstance(value, str):
            self._err(name, "Input should be a valid string", "string_type", value)
            return default
        if len(value) < min_len:
            self._err(name, f"String should have at least {min_len} character"
                      f"{'' if min_len == 1 else 's'}", "string_too_short", value,
                      {"min_length": min_len})
            return default
        if max_len is not None and len(value) > max_len:
            self._err(name, f"String should have at most {max_len} characters",
                      "string_too_long", value, {"max_length": max_len})
            return default
        return value

    def uuid(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name)
        if value is _MISSING or (value is None and not required):
            if required:
                self._err(name, "Field required", "missing", value)
            return None
        parsed = parse_uuid(value)
        if parsed is None:
            self._err(name, "Input should be a valid UUID, invalid length or character",
                      "uuid_parsing", value)
        return parsed

    def integer(self, name: str, *, default: int, ge: int | None = None,
                le: int | None = None) -> int:
        value = self._get(name)
        if value is _MISSING or (value is None and not self.coerce):
            return default
        if self.coerce:
            try:
                value = int(str(value).strip())
            except ValueError:
                self._err(name, "Input should be a valid integer, unable to parse string as "
                          "an integer", "int_parsing", value)
                return default
        elif isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self._err(name, "Input should be a valid integer", "int_type", value)
                return default
        if ge is not None and value < ge:
            self._err(name, f"Input should be greater than or equal to {ge}",
                      "greater_than_equal", value, {"ge": ge})
            return default
        if le is not None and value > le:
            self._err(name, f"Input should be less than or equal to {le}",
                      "less_than_equal", value, {"le": le})
            return default
        return int(value)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._get(name)
        if value is _MISSING or (value is None and not self.coerce):
            return default
        if self.coerce:
            lowered = str(value).strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        elif isinstance(value, bool):
            return value
        self._err(name, "Input should be a valid boolean, unable to interpret input",
                  "bool_parsing", value)
        return default

    def choice(self, name: str, choices: Sequence[str], *, default: str | None) -> str | None:
        value = self._get(name)
        if value is _MISSING or value is None:
            return default
        if value not in choices:
            quoted = [f"'{c}'" for c in choices]
            expected = (", ".join(quoted[:-1]) + " or " + quoted[-1]) if len(quoted) > 1 \
                else quoted[0]
            self._err(name, f"Input should be {expected}", "literal_error", value,
                      {"expected": expected})
            return default
        return str(value)

    def timestamp(self, name: str) -> float | None:
        """An ISO-8601 datetime as epoch seconds; naive values are taken as UTC."""
        value = self._get(name)
        if value is _MISSING or value is None:
            return None
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            self._err(name, "Input should be a valid datetime", "datetime_from_date_parsing",
                      value)
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()

    def raw(self, name: str) -> Any:
        value = self._get(name)
        return None if value is _MISSING else value

    def error(self, name: str, msg: str, type_: str = "value_error") -> None:
        self._err(name, msg, type_, self._get(name))

    def done(self) -> None:
        if self.errors:
            raise validation(self.errors)


def require_path_uuid(name: str, value: str) -> str:
    """A path parameter typed ``UUID`` in FastAPI: 422 when malformed."""
    parsed = parse_uuid(value)
    if parsed is None:
        raise validation([field_error(["path", name], "Input should be a valid UUID, invalid "
                                      "length or character", "uuid_parsing", value)])
    return parsed

