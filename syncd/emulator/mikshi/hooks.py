"""Mikshi's side of the shared HTTP plumbing: ``X-API-Key``, FastAPI-style JSON errors, S3-style
XML errors on the object store."""

from __future__ import annotations

from syncd.emulator.auth import KeyRing
from syncd.emulator.errors import S3Error, detail, message
from syncd.emulator.faults import Decision
from syncd.emulator.routing import S3
from syncd.emulator.server import xml_response
from syncd.emulator.wire import Request, Response, api_error_response, json_response


class MikshiHooks:
    """Mikshi: ``X-API-Key``, FastAPI-style JSON errors, S3-style XML on the object store."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def user_of(self, req: Request) -> str | None:
        key = req.header("X-API-Key")
        return self.keys.user_for(key) if key else None

    def authenticate(self, req: Request) -> str:
        key = req.header("X-API-Key")
        if not key:
            raise message(401, "Missing API key. Send it in the X-API-Key header.")
        user_id = self.keys.user_for(key)
        if user_id is None:
            raise message(401, "Invalid API key.")
        return user_id

    def no_route(self, kind: str, other_method: bool, req: Request) -> Response:
        if kind == S3:
            if other_method:
                return xml_response(S3Error(405, "MethodNotAllowed", "The specified method is "
                                             "not allowed against this resource."))
            return xml_response(S3Error(404, "NoSuchBucket", "The specified bucket does not "
                                         "exist"))
        if other_method:
            return api_error_response(detail(405, "Method Not Allowed"))
        return api_error_response(detail(404, "Not Found"))

    def fault_response(self, kind: str, decision: Decision, req: Request) -> Response:
        retry = {"Retry-After": decision.retry_after} if decision.retry_after else {}
        if kind == S3:
            # S3 never answers 429: throttling is 503 SlowDown, without a Retry-After (the
            # client backs off on its own).
            if decision.kind in ("rate_limit", "error_503"):
                return xml_response(S3Error(503, "SlowDown", "Please reduce your request "
                                             "rate."))
            return xml_response(S3Error(500, "InternalError", "We encountered an internal "
                                         "error. Please try again."))
        if decision.kind == "rate_limit":
            return json_response(429, {"detail": "Rate limit exceeded. Retry later."}, retry)
        if decision.kind == "error_503":
            return json_response(503, {"detail": "Service Unavailable"})
        return json_response(500, {"detail": "Internal Server Error"})

    def internal_error(self, kind: str, req: Request) -> Response:
        if kind == S3:
            return xml_response(S3Error(500, "InternalError", "We encountered an internal "
                                         "error. Please try again."))
        return json_response(500, {"detail": "Internal Server Error"})
