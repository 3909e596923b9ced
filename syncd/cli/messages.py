"""Words for the user: journal lines, and remote trouble as one plain line with a hint.

Pure: no I/O. Used by the CLI (``sync``, ``log``, ``search``, ``ask``) and ``doctor``.
"""

from __future__ import annotations

import time

from syncd.errors import AuthError, ForbiddenError, PaymentRequiredError, TransportError, UnavailableError
from syncd.models import JournalEntry

DOCTOR_HINT = "`syncd doctor` checks the whole setup"


def middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by removing its middle (paths keep both ends)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    return f"{text[:head]}…{text[len(text) - (width - 1 - head):]}"


def transport_reason(message: str) -> str:
    """What went wrong on the wire, in words (not httpx's class names)."""
    text = message.lower()
    if "http 5" in text:
        return "answers " + text[text.index("http 5"):][:8].upper().strip()
    if "refused" in text:
        return "connection refused"
    if "timeout" in text or "timed out" in text:
        return "timed out"
    if "name or service not known" in text or "nodename" in text or "getaddrinfo" in text:
        return "unknown host name"
    if "not sent" in text and "unreachable" in text:
        return "unreachable"
    if "remoteprotocolerror" in text or "disconnected" in text or "reset" in text:
        return "connection dropped"
    return "no answer"


def remote_trouble(exc: BaseException, base_url: str, key_source: str) -> str | None:
    """One line saying what failed and what to check, for a remote that cannot be
    reached or refuses the key; None for any other error."""
    if isinstance(exc, TransportError):
        return (f"cannot reach the remote at {base_url} ({transport_reason(str(exc))}); check that the service "
                f"is up and remote.base_url is right ({DOCTOR_HINT})")
    if isinstance(exc, AuthError):
        return (f"the remote at {base_url} rejected the API key from {key_source}; check the key "
                f"({DOCTOR_HINT})")
    if isinstance(exc, ForbiddenError):
        return (f"the remote at {base_url} refused this request with the API key from {key_source} "
                f"({exc.message}); is it another account's key? ({DOCTOR_HINT})")
    if isinstance(exc, PaymentRequiredError):
        return f"the remote at {base_url} says the account is out of credits ({exc.message})"
    if isinstance(exc, UnavailableError):
        return f"the remote at {base_url} is unavailable right now (HTTP {exc.status}); try again later"
    return None


def outage_line(reason: str, since: float, base_url: str) -> str:
    """The one line per pass for a remote that does not answer (``sync``)."""
    when = time.strftime("%H:%M:%S", time.localtime(since))
    return (f"remote unreachable since {when}: {base_url} ({transport_reason(reason)}); nothing was "
            f"confirmed, so no remote deletions this pass; the next sync retries. Check that the "
            f"service is up and remote.base_url is right ({DOCTOR_HINT})")


def journal_line(entry: JournalEntry, target: str | None = None, *, with_time: bool = True) -> str:
    """One journal entry as ``syncd log`` and ``syncd sync`` print it."""
    outcome, _, why = entry.outcome.partition(": ")  # "failed: HTTP 500 ..." → "failed", the reason after
    shown = target or entry.target
    details = "; ".join(d for d in (why, entry.detail) if d and d != shown)
    detail = f"  ({details})" if details else ""
    when = time.strftime("%Y-%m-%d %H:%M:%S  ", time.localtime(entry.time)) if with_time else ""
    return f"{when}{entry.action:<22} {outcome:<8} {shown}{detail}"
