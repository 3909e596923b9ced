"""Human units: durations ("500ms", "10m", "1h30m") and byte sizes ("16MiB", "5MB").

Parsers raise ``ValueError`` with a message that names the bad value and says
what would be accepted, so config.py can put it on one line after the key.
Formatters produce strings the parsers read back, for log and error messages.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

__all__ = ["format_duration", "format_rate", "format_size", "parse_duration", "parse_rate", "parse_size",
           "rough_duration"]

_DURATION_UNITS: dict[str, Decimal] = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# One or more "<number><unit>" terms, Go style: "1h30m" is 5400 seconds.
_DURATION_TERM = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)")
_DURATION_FULL = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h|d)\s*)+")
_DURATION_HELP = "use seconds or a number with a unit ms, s, m, h, d (e.g. 500ms, 5s, 10m, 1h30m, 30d)"

# Single letters are binary, like rclone and dd ("64k" = 64 KiB); "KB"/"MB"/... are decimal.
_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kib": 2**10,
    "kb": 10**3,
    "m": 2**20,
    "mib": 2**20,
    "mb": 10**6,
    "g": 2**30,
    "gib": 2**30,
    "gb": 10**9,
    "t": 2**40,
    "tib": 2**40,
    "tb": 10**12,
}
_SIZE_RE = re.compile(rf"({_NUMBER})\s*([a-z]*)", re.IGNORECASE)
_SIZE_HELP = "use bytes or a number with a unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 16MiB, 5MB)"

_BINARY_NAMES: tuple[tuple[int, str], ...] = (
    (2**40, "TiB"),
    (2**30, "GiB"),
    (2**20, "MiB"),
    (2**10, "KiB"),
)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_duration(value: str | int | float) -> float:
    """Seconds from ``"500ms"``, ``"5s"``, ``"10m"``, ``"2h"``, ``"30d"``, ``"1h30m"`` or a number."""
    if isinstance(value, bool):  # bool is an int subclass; "true" is never a duration
        raise ValueError(f"invalid duration {_show(value)}: {_DURATION_HELP}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(_NUMBER, text):
            seconds = float(text)
        elif _DURATION_FULL.fullmatch(text):
            total = sum(
                (Decimal(num) * _DURATION_UNITS[unit] for num, unit in _DURATION_TERM.findall(text)),
                Decimal(0),
            )
            seconds = float(total)
        else:
            raise ValueError(f"invalid duration {_show(value)}: {_DURATION_HELP}")
    else:
        raise ValueError(f"invalid duration {_show(value)}: {_DURATION_HELP}")
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {_show(value)}: must be a finite number")
    if seconds < 0:
        raise ValueError(f"invalid duration {_show(value)}: must not be negative")
    return seconds


def parse_size(value: str | int | float) -> int:
    """Bytes from ``"16MiB"``, ``"5MB"`` (5*10**6), ``"64k"`` (64 KiB) or a whole number."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {_show(value)}: {_SIZE_HELP}")
    if isinstance(value, float):
        if not value.is_integer():  # also rejects nan and inf
            raise ValueError(f"invalid size {_show(value)}: not a whole number of bytes")
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {_show(value)}: must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"invalid size {_show(value)}: {_SIZE_HELP}")
    match = _SIZE_RE.fullmatch(value.strip())
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {_show(value)}: {_SIZE_HELP}")
    number, unit = Decimal(match.group(1)), _SIZE_UNITS[match.group(2).lower()]
    if unit == 1 and number != number.to_integral_value():
        raise ValueError(f"invalid size {_show(value)}: not a whole number of bytes")
    # "1.1MiB" is not a whole byte count; round down rather than refuse.
    return int(number * unit)


def format_size(n: int) -> str:
    """``16777216`` → ``"16.0 MiB"``; below 1 KiB → ``"512 B"``."""
    sign, size = ("-", -n) if n < 0 else ("", n)
    for factor, name in _BINARY_NAMES:
        if size >= factor:
            return f"{sign}{size / factor:.1f} {name}"
    return f"{sign}{size} B"


def format_duration(seconds: float) -> str:
    """``90`` → ``"1m30s"``, ``0.5`` → ``"500ms"``, ``86400`` → ``"1d"``; parse_duration reads it back."""
    if not math.isfinite(seconds):
        return str(seconds)
    sign = "-" if seconds < 0 else ""
    millis = round(abs(seconds) * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{sign}{millis}ms"
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        whole, frac = divmod(millis, 1000)
        parts.append(f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "s" if frac else f"{whole}s")
    return sign + "".join(parts)



def rough_duration(seconds: float) -> str:
    """An age or a wait as a person reads it, in ``format_duration``'s words: whole seconds
    under a minute (``"40s"``), whole minutes under two hours (``"12m"``, ``"1h30m"``), else
    whole hours (``"5h"``, ``"1d2h"``). Negative is read as zero (a clock that stepped back)."""
    seconds = max(0.0, seconds) if math.isfinite(seconds) else 0.0
    if seconds < 60:
        return format_duration(round(seconds))
    if seconds < 7200:
        return format_duration(round(seconds / 60) * 60)
    return format_duration(round(seconds / 3600) * 3600)

_RATE = re.compile(rf"\s*({_NUMBER})\s*/\s*({_NUMBER})?\s*(ms|s|sec|second|m|min|minute|h|hour)\s*")
_RATE_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0,
               "minute": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE_HELP = "use <count>/<unit> with a unit s, min or h (e.g. 5/s, 1/min, 12/min)"


def parse_rate(text: str) -> tuple[float, float]:
    """A request rate "5/s", "1/min", "12/min", "30/10s" as (count, per_seconds)."""
    m = _RATE.fullmatch(str(text))
    if m is None:
        raise ValueError(f"bad rate {text!r}: {_RATE_HELP}")
    count = float(m.group(1))
    per = float(m.group(2) or 1) * _RATE_UNITS[m.group(3)]
    if count <= 0 or per <= 0:
        raise ValueError(f"bad rate {text!r}: count and period must be positive")
    return count, per


def format_rate(count: float, per_seconds: float) -> str:
    """The inverse of ``parse_rate`` for messages ("5/s", "1/min")."""
    n = f"{count:g}"
    for unit, seconds in (("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if per_seconds == seconds:
            return f"{n}/{unit}"
    return f"{n}/{per_seconds:g}s"
