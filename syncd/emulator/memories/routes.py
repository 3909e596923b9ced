"""Route helper: every API route belongs to a rate-limit group checked after auth."""

from __future__ import annotations

from collections.abc import Callable

from syncd.emulator.memories import envelope
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.routing import API, Route
from syncd.emulator.wire import Request, Response

MemoriesHandler = Callable[[MemoriesContext, Request], Response]


def api_route(method: str, path: str, group: str, handler: MemoriesHandler) -> Route:
    def limited(ctx: MemoriesContext, req: Request) -> Response:
        assert req.user_id is not None
        if not ctx.limiter.admit(req.user_id, group, ctx.now()):
            raise envelope.error_for(req.path, envelope.RATE_LIMITED, 429,
                                     envelope.RATE_LIMIT_MSG)
        return handler(ctx, req)

    limited.__name__ = handler.__name__
    return Route(method, path, limited, API)
