"""sd_notify: tell systemd that syncd is ready, what it is doing, and that it is alive.

The protocol is one datagram of ``KEY=value`` lines sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace).
Without the variable every call is a no-op, so the daemon behaves the same
outside systemd. Written by hand: it is ten lines, not worth a dependency.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger("syncd.service.notify")


@dataclass(frozen=True)
class Notifier:
    address: str | None  # None: not started by systemd with Type=notify
    watchdog_usec: int | None = None  # WatchdogSec= as systemd passes it, for us only

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        # WATCHDOG_PID names the process the watchdog is meant for; a child must not ping.
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings: half the deadline, as sd_watchdog_enabled(3) advises."""
        return None if not self.address or not self.watchdog_usec else self.watchdog_usec / 2e6

    def send(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=value`` each) in one datagram; False if not sent."""
        if not self.address:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall("\n".join(fields).encode())
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={_one_line(status)}", f"MAINPID={os.getpid()}")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def reloading(self) -> bool:
        # MONOTONIC_USEC is required by Type=notify-reload and harmless otherwise.
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")


def _one_line(text: str) -> str:
    return " ".join(text.split())
