"""Who may use the UI.

Without a password the UI answers only requests addressed to a loopback name (the
``Host`` header), so a web page elsewhere cannot reach it through DNS rebinding. With a
password (required for a non-loopback ``ui.listen``) every request must carry it, as
HTTP Basic (any user name) or ``Authorization: Bearer``; compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd.config import Secret, is_loopback


def host_name(host_header: str) -> str:
    host = host_header.strip()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def offered_password(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


class Gate:
    """ASGI middleware in front of every route (pages, media, static files)."""

    def __init__(self, app: ASGIApp, password: Secret) -> None:
        self.app = app
        self.password = password

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.password:
            offered = offered_password(headers.get("authorization", ""))
            expected = self.password.reveal().encode()
            if offered is None or not hmac.compare_digest(offered.encode(), expected):
                response = PlainTextResponse("password required\n", 401,
                                             headers={"WWW-Authenticate": 'Basic realm="syncd", charset="UTF-8"'})
                await response(scope, receive, send)
                return
        elif not is_loopback(host_name(headers.get("host", ""))):
            response = PlainTextResponse("this UI answers on 127.0.0.1 only (set a password to serve others)\n", 403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
