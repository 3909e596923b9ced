"""The admin API under ``/_admin/`` that every emulator serves, and the pieces its backends'
own admin routes are built from. No API key, never faulted, not recorded in the request log;
never exposes API keys or URL signatures.

    GET    /_admin/health
    GET    /_admin/requests?since=SEQ      request log
    POST   /_admin/requests/clear
    GET    /_admin/faults                  current Faults as JSON
    POST   /_admin/faults                  replace Faults (omitted fields take defaults)
    POST   /_admin/clock/advance           {"seconds": s}: move the emulator clock forward

Each backend adds its records (videos, users, ...) in its own ``admin.py``.
"""

from __future__ import annotations

import threading
from typing import Any, BinaryIO, Protocol

from syncd.emulator.config import Faults
from syncd.emulator.context import Clock
from syncd.emulator.errors import detail
from syncd.emulator.faults import FaultInjector
from syncd.emulator.requestlog import RequestLog
from syncd.emulator.routing import ADMIN, Route
from syncd.emulator.wire import FileStream, Request, Response, json_response


class AdminContext(Protocol):
    """What the service-neutral admin routes need (every emulator's context has it)."""

    faults: FaultInjector
    requests: RequestLog
    clock: Clock
    stopping: threading.Event


def bytes_response(fh: BinaryIO, size: int) -> Response:
    """A stored file streamed back whole (``GET /_admin/videos/{id}/bytes``)."""
    return Response(200, b"", {"Content-Type": "application/octet-stream"},
                    stream=FileStream(fh, 0, size), length=size)


def credits_value(body: dict[str, Any]) -> int | None:
    """``body["credits"]``: a non-negative integer or null (unlimited), else a 400."""
    credits = body.get("credits", "missing")
    if credits is not None and (isinstance(credits, bool) or not isinstance(credits, int)
                                or credits < 0):
        raise detail(400, "credits must be a non-negative integer or null")
    return credits


def h_health(ctx: AdminContext, req: Request) -> Response:
    return json_response(200, {"status": "ok"})


def h_requests(ctx: AdminContext, req: Request) -> Response:
    since_text = (req.query.get("since") or ["0"])[-1]
    try:
        since = int(since_text)
    except ValueError:
        raise detail(400, "since must be an integer") from None
    return json_response(200, ctx.requests.since(since))


def h_clear_requests(ctx: AdminContext, req: Request) -> Response:
    return json_response(200, {"cleared": ctx.requests.clear()})


def h_get_faults(ctx: AdminContext, req: Request) -> Response:
    return json_response(200, ctx.faults.faults.to_dict())


def h_set_faults(ctx: AdminContext, req: Request) -> Response:
    try:
        faults = Faults.from_dict(req.json_body())
    except (TypeError, ValueError) as exc:
        raise detail(400, str(exc)) from None
    ctx.faults.set(faults)
    return json_response(200, faults.to_dict())


def h_advance_clock(ctx: AdminContext, req: Request) -> Response:
    seconds = req.json_body().get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise detail(400, "seconds must be a non-negative number")
    return json_response(200, {"offset_seconds": ctx.clock.advance(float(seconds))})


#: Routes every emulator serves, whatever the service.
COMMON_ROUTES = [
    Route("GET", r"/_admin/health", h_health, ADMIN),
    Route("GET", r"/_admin/requests", h_requests, ADMIN),
    Route("POST", r"/_admin/requests/clear", h_clear_requests, ADMIN),
    Route("GET", r"/_admin/faults", h_get_faults, ADMIN),
    Route("POST", r"/_admin/faults", h_set_faults, ADMIN),
    Route("POST", r"/_admin/clock/advance", h_advance_clock, ADMIN),
]
