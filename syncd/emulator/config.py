"""Settings both emulators share: ``Faults``, the misbehaviour that can be changed at runtime."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any


#: The server errors a fault can be.
ERROR_STATUSES = (500, 503)


def _check_share(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass
class Faults:
    """Injected misbehaviour. Applies to API and object-store requests, never to ``/_admin/``.

    ``drop_share``, ``rate_limit_share`` and ``error_share`` partition one random draw per
    request, so their sum must not exceed 1. Injected errors cycle through
    ``error_statuses`` (500 and 503 by default; ``[503]`` when every request, also a
    non-repeatable POST, must survive them). ``path_glob`` (an extension) limits all faults
    to request paths matching an ``fnmatch`` pattern, e.g. ``"/s3/*"``.
    """

    rate_limit_share: float = 0.0
    retry_after: float = 1.0  # sent rounded up to whole seconds, as HTTP requires
    error_share: float = 0.0
    latency_ms: float = 0.0
    drop_share: float = 0.0
    stream_error_share: float = 0.0
    path_glob: str | None = None
    error_statuses: tuple[int, ...] = ERROR_STATUSES

    def __post_init__(self) -> None:
        self.error_statuses = tuple(self.error_statuses)
        if not self.error_statuses or not set(self.error_statuses) <= set(ERROR_STATUSES):
            raise ValueError("error_statuses must be some of 500, 503")
        for name in ("rate_limit_share", "error_share", "drop_share", "stream_error_share"):
            _check_share(name, float(getattr(self, name)))
        if self.rate_limit_share + self.error_share + self.drop_share > 1.0 + 1e-9:
            raise ValueError("rate_limit_share + error_share + drop_share must not exceed 1")
        if self.retry_after < 0 or self.latency_ms < 0:
            raise ValueError("retry_after and latency_ms must not be negative")

    def to_dict(self) -> dict[str, Any]:
        """As JSON has it (the statuses as a list)."""
        return {**asdict(self), "error_statuses": list(self.error_statuses)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """Build from JSON; unknown keys and wrong types raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        clean: dict[str, Any] = {}
        for key, value in data.items():
            if key == "path_glob":
                if value is not None and not isinstance(value, str):
                    raise ValueError("path_glob must be a string or null")
                clean[key] = value
            elif key == "error_statuses":
                if not isinstance(value, list) or any(
                        isinstance(v, bool) or not isinstance(v, int) for v in value):
                    raise ValueError("error_statuses must be a list of HTTP statuses")
                clean[key] = tuple(value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number")
            else:
                clean[key] = float(value)
        return cls(**clean)
