"""A tiny regex router. ``kind`` decides auth, faults and error format per route."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.emulator.wire import Request, Response

#: A route handler: (the backend's context, request) -> response. The context type is the
#: backend's own (``Context`` for Mikshi, ``MemoriesContext`` for memories.ai).
Handler = Callable[[Any, "Request"], "Response"]

API = "api"      # API key required, faults apply, JSON errors
S3 = "s3"        # pre-signed URL, faults apply, XML errors
ADMIN = "admin"  # no auth, never faulted, not in the request log


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    kind: str = API
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, path_matched_other_method)."""
        other = False
        for route in self.routes:
            m = route.regex.fullmatch(path)
            if m is None:
                continue
            if route.method == method:
                return route, m.groupdict(), False
            other = True
        return None, {}, other

    @staticmethod
    def kind_of(path: str) -> str:
        if path.startswith("/_admin/") or path == "/_admin":
            return ADMIN
        if path.startswith("/s3/"):
            return S3
        return API
