"""Pre-signed object-store URLs: SigV4-looking query strings with an HMAC of our own.

The signature covers the method, the object path and every other query parameter, so a
changed part number, expiry or date invalidates it. The API key is never part of a URL.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from syncd.emulator.errors import S3Error

_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_ACCESS_KEY = "EMULATORACCESSKEY"


def _canonical(method: str, path: str, params: Mapping[str, str]) -> bytes:
    pairs = sorted((k, v) for k, v in params.items() if k != "X-Amz-Signature")
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    return f"{method}\n{path}\n{query}".encode()


class Signer:
    def __init__(self, secret: bytes, now: Callable[[], float], ttl_seconds: int) -> None:
        self._secret = secret
        self._now = now
        self.ttl_seconds = ttl_seconds

    def _sig(self, method: str, path: str, params: Mapping[str, str]) -> str:
        return hmac.new(self._secret, _canonical(method, path, params), hashlib.sha256).hexdigest()

    def sign(self, method: str, path: str, extra: Mapping[str, str] | None = None) -> str:
        """The query string making ``method path`` valid for ``ttl_seconds`` from now.

        ``path`` is the decoded path; the caller percent-encodes it into the URL.
        """
        stamp = datetime.fromtimestamp(self._now(), UTC)
        params = dict(extra or {})
        params.update({
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{_ACCESS_KEY}/{stamp:%Y%m%d}/us-east-1/s3/aws4_request",
            "X-Amz-Date": stamp.strftime(_DATE_FORMAT),
            "X-Amz-Expires": str(self.ttl_seconds),
            "X-Amz-SignedHeaders": "host",
        })
        params["X-Amz-Signature"] = self._sig(method, path, params)
        return urlencode(params, quote_via=quote)

    def verify(self, method: str, path: str, query: Mapping[str, list[str]]) -> dict[str, str]:
        """The signed parameters, or 403 AccessDenied when tampered with or expired."""
        params = {k: v[-1] for k, v in query.items() if v}
        given = params.get("X-Amz-Signature", "")
        if not given or not hmac.compare_digest(given, self._sig(method, path, params)):
            raise S3Error(403, "AccessDenied", "The request signature we calculated does not "
                          "match the signature you provided.")
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], _DATE_FORMAT).replace(
                tzinfo=UTC).timestamp()
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            raise S3Error(403, "AccessDenied", "Query-string authentication requires "
                          "X-Amz-Date and X-Amz-Expires.") from None
        if self._now() > signed_at + expires:
            raise S3Error(403, "AccessDenied", "Request has expired")
        return params
