"""The memories.ai answer shapes.

v1 (``/serve/api/v1``): ``{"code": "0000", "msg", "data", "success", "failed"}``; errors carry
a business code in the body and are sent with HTTP 200 (the doc: "HTTP status often 200" —
always 200 here, the stricter reading: a client must look at the body).
v2 (``/serve/api/v2``): integer codes equal to the HTTP status, sent with that status.
Unknown paths and crashes answer the way a Spring Boot service does (the live enum error
text on list_videos shows a Jackson/Spring stack): ``{"timestamp", "status", "error", "path"}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncd.emulator.errors import ApiError
from syncd.emulator.wire import Response, json_response

V1 = "/serve/api/v1"
V2 = "/serve/api/v2"

OK = "0000"
BAD_PARAM = "0001"
BAD_PARAM_VALUE = "0003"
AUTH = "0401"
NO_CREDITS = "0402"
DISABLED = "0403"
DUPLICATE = "0409"
RATE_LIMITED = "0429"
DENIED = "9009"

RATE_LIMIT_MSG = "Request has exceeded the limit."
CREDITS_MSG = "Insufficient balance. Please recharge and try again."


def is_v2(path: str) -> bool:
    return path.startswith(V2 + "/")


def v1_ok(data: Any) -> Response:
    resp = json_response(200, {"code": OK, "msg": "success", "data": data, "success": True,
                               "failed": False})
    resp.code = OK
    return resp


def v1_error(code: str, msg: str) -> ApiError:
    return ApiError(200, {"code": code, "msg": msg, "data": None, "success": False,
                          "failed": True})


def v2_ok(data: Any, message: str = "success") -> Response:
    resp = json_response(200, {"code": 200, "message": message, "data": data})
    resp.code = "200"
    return resp


def v2_error(status: int, msg: str) -> ApiError:
    """The download page's error shape (``code``, ``msg``, ``success: false``, ``failed: true``)."""
    return ApiError(status, {"code": status, "msg": msg, "data": None, "success": False,
                             "failed": True})


def error_for(path: str, v1_code: str, v2_status: int, msg: str) -> ApiError:
    """One refusal worded for whichever host the path belongs to."""
    return v2_error(v2_status, msg) if is_v2(path) else v1_error(v1_code, msg)


def spring_error(status: int, error: str, path: str) -> Response:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    return json_response(status, {"timestamp": stamp, "status": status, "error": error,
                                  "path": path})
