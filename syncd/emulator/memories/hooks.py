"""memories.ai's side of the shared HTTP plumbing: ``Authorization: <key>`` (no ``Bearer``),
business-code errors on v1, integer codes on v2, Spring-style answers to unknown paths."""

from __future__ import annotations

from syncd.emulator.faults import Decision
from syncd.emulator.memories import envelope
from syncd.emulator.memories.context import MemoriesContext
from syncd.emulator.wire import Request, Response, json_response


class MemoriesHooks:
    def __init__(self, ctx: MemoriesContext) -> None:
        self.ctx = ctx

    def user_of(self, req: Request) -> str | None:
        key = req.header("Authorization")
        return self.ctx.keys.user_for(key.strip()) if key else None

    def authenticate(self, req: Request) -> str:
        # "Bearer <key>" is not a key: it is refused like any other unknown value.
        account_id = self.user_of(req)
        if account_id is None:
            raise envelope.error_for(req.path, envelope.AUTH, 401,
                                     "Unauthorized: invalid or missing API key.")
        account = self.ctx.store.account(account_id)
        if account is not None and account.disabled:
            raise envelope.error_for(req.path, envelope.DISABLED, 403,
                                     "The account has been disabled.")
        return account_id

    def fault_response(self, kind: str, decision: Decision, req: Request) -> Response:
        if decision.kind == "rate_limit":
            headers = {"Retry-After": decision.retry_after} if decision.retry_after else {}
            if envelope.is_v2(req.path):
                resp = json_response(429, envelope.v2_error(429, envelope.RATE_LIMIT_MSG).body,
                                     headers)
                resp.code = "429"
                return resp
            resp = json_response(200, envelope.v1_error(envelope.RATE_LIMITED,
                                                        envelope.RATE_LIMIT_MSG).body, headers)
            resp.code = envelope.RATE_LIMITED
            return resp
        if decision.kind == "error_503":
            return envelope.spring_error(503, "Service Unavailable", req.path)
        return envelope.spring_error(500, "Internal Server Error", req.path)

    def no_route(self, kind: str, other_method: bool, req: Request) -> Response:
        if other_method:
            return envelope.spring_error(405, "Method Not Allowed", req.path)
        return envelope.spring_error(404, "Not Found", req.path)

    def internal_error(self, kind: str, req: Request) -> Response:
        return envelope.spring_error(500, "Internal Server Error", req.path)
