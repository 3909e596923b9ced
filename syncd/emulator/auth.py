"""API keys → users. Keys are held only as SHA-256 digests; each key is its own user unless
it is named in ``accounts`` (memories.ai: several keys of one account share its limits)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping


def user_id_for_key(key: str) -> str:
    """The stable user id of an API key: a UUID built from the key's SHA-256."""
    digest = hashlib.sha256(b"mikshi-emulator-user:" + key.encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _digest(key: str) -> bytes:
    return hashlib.sha256(b"mikshi-emulator-key:" + key.encode()).digest()


class KeyRing:
    """Answers "which user is this key?" without keeping the keys themselves."""

    def __init__(self, keys: list[str], accounts: Mapping[str, str] | None = None) -> None:
        self._users = {_digest(k): user_id_for_key(k) for k in keys}
        for key, account in (accounts or {}).items():
            self._users[_digest(key)] = account

    def user_for(self, key: str) -> str | None:
        probe = _digest(key)
        found = None
        for digest, user in self._users.items():
            if hmac.compare_digest(digest, probe):  # constant time, like a real auth service
                found = user
        return found

    def user_ids(self) -> list[str]:
        return sorted(set(self._users.values()))
