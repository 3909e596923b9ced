"""Exceptions handlers raise; the server turns them into responses.

``ApiError`` renders JSON (``detail`` like FastAPI's default handler, ``message`` like the
dev API's custom handler); ``S3Error`` renders S3's XML error document.
"""

from __future__ import annotations

import uuid
from typing import Any
from xml.sax.saxutils import escape


class ApiError(Exception):
    """A JSON error answer. ``body`` is sent as is."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def detail(status: int, text: str) -> ApiError:
    """FastAPI ``HTTPException`` style: ``{"detail": text}``."""
    return ApiError(status, {"detail": text})


def message(status: int, text: str) -> ApiError:
    """Dev-API custom handler style: ``{"message": text}``."""
    return ApiError(status, {"message": text})


def validation(errors: list[dict[str, Any]]) -> ApiError:
    """FastAPI's 422 shape: ``{"detail": [{"type", "loc", "msg", "input"}, ...]}``."""
    return ApiError(422, {"detail": errors})


def field_error(loc: list[str | int], msg: str, type_: str, input_: Any = None,
                ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type_, "loc": loc, "msg": msg, "input": input_}
    if ctx:
        err["ctx"] = ctx
    return err


class S3Error(Exception):
    """An S3-style XML error answer."""

    def __init__(self, status: int, code: str, text: str, headers: dict[str, str] | None = None,
                 resource: str | None = None):
        super().__init__(f"{status} {code}: {text}")
        self.status = status
        self.code = code
        self.text = text
        self.headers = headers or {}
        self.resource = resource

    def xml(self) -> bytes:
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
            f"<Code>{escape(self.code)}</Code>",
            f"<Message>{escape(self.text)}</Message>",
        ]
        if self.resource:
            parts.append(f"<Resource>{escape(self.resource)}</Resource>")
        parts.append(f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>")
        return "".join(parts).encode()


def boto_detail(code: str, operation: str, text: str) -> str:
    """How a FastAPI service re-raising a botocore ``ClientError`` words the detail.

    Clients can branch on the code inside the parentheses.
    """
    return f"An error occurred ({code}) when calling the {operation} operation: {text}"


class ClientGone(Exception):
    """The client closed the connection before sending its whole request."""
