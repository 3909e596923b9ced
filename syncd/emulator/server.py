"""HTTP plumbing on the stdlib ``ThreadingHTTPServer``: keep-alive HTTP/1.1, exact control of
sockets (dropped connections, Content-Length checks, chunked/streamed bodies).

Per request: route → faults (not for ``/_admin/``) → auth (API routes) → handler → response,
then one request-log entry. What differs between emulated services (how a key is sent, how
faults, unknown paths and crashes are worded) comes from a ``ServerHooks`` object: each
backend package has its own (``mikshi/hooks.py``, ``memories/hooks.py``). Bodies a handler
left unread are drained when small, otherwise the connection is closed after the answer (``Connection: close``), as real servers do.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from syncd.emulator.errors import ApiError, ClientGone, S3Error
from syncd.emulator.faults import Decision, FaultInjector
from syncd.emulator.requestlog import LogEntry, RequestLog
from syncd.emulator.routing import ADMIN, API, Router
from syncd.emulator.wire import BodyReader, Request, Response, api_error_response, json_response

log = logging.getLogger("syncd.emulator")
access_log = logging.getLogger("syncd.emulator.access")

#: An unread body up to this size is read and discarded to keep the connection alive.
DRAIN_LIMIT = 16 * 1024 * 1024
#: Socket timeout while a request is being read or answered.
BODY_TIMEOUT = 60.0
_QUERY = re.compile(r"\?[^\s'\"]*")


def _scrub(text: str) -> str:
    """Remove query strings (URL signatures) from text bound for logs."""
    return _QUERY.sub("?…", text)


def xml_response(err: S3Error) -> Response:
    return Response(err.status, err.xml(), {"Content-Type": "application/xml", **err.headers})


class ServerContext(Protocol):
    """What the plumbing needs from a backend's handler context."""

    faults: FaultInjector
    requests: RequestLog
    stopping: threading.Event

    def now(self) -> float: ...


class ServerHooks(Protocol):
    """The per-service parts of request handling."""

    def user_of(self, req: Request) -> str | None:
        """The account a request's key belongs to, or None (for the request log only)."""

    def authenticate(self, req: Request) -> str:
        """The caller's account id, or raise ``ApiError`` the way the service refuses."""

    def fault_response(self, kind: str, decision: Decision, req: Request) -> Response:
        """The answer to an injected fault (rate limit, 500/503) on this route kind."""

    def no_route(self, kind: str, other_method: bool, req: Request) -> Response:
        """The answer for an unknown path (or a known path with another method)."""

    def internal_error(self, kind: str, req: Request) -> Response:
        """The answer when a handler crashed."""


class App:
    """Dispatches parsed HTTP requests to route handlers."""

    def __init__(self, ctx: ServerContext, router: Router, base_url: str,
                 hooks: ServerHooks) -> None:
        self.ctx = ctx
        self.router = router
        self.base_url = base_url
        self.hooks = hooks

    def handle(self, h: _Handler) -> None:
        started = time.monotonic()
        split = urlsplit(h.path)
        path = unquote(split.path)
        kind = self.router.kind_of(path)
        try:
            body = self._body_reader(h)
        except ValueError:
            h.close_connection = True
            self._send(h, None, json_response(400, {"detail": "Invalid Content-Length"}))
            return
        host = h.headers.get("Host")
        req = Request(h.command, path, parse_qs(split.query, keep_blank_values=True), h.headers,
                      body, f"http://{host}" if host else self.base_url)
        route, params, other_method = self.router.match(h.command, path)
        if route is not None:
            kind = route.kind
            req.params = params
        user_id = self.hooks.user_of(req) if kind == API else None
        decision = Decision(None, 0.0, None)
        resp: Response | None = None
        try:
            if kind != ADMIN:
                decision = self.ctx.faults.decide(path)
                if decision.latency_s > 0:
                    self.ctx.stopping.wait(decision.latency_s)
                if decision.kind == "drop":
                    # Read everything, then vanish: the client can't know if we acted (we didn't).
                    body.drain()
                    h.close_connection = True
                    self._record(req, kind, None, user_id, decision, started, None)
                    return
                if decision.kind is not None:
                    resp = self.hooks.fault_response(kind, decision, req)
            if resp is None:
                if route is None:
                    resp = self.hooks.no_route(kind, other_method, req)
                else:
                    if kind == API:
                        req.user_id = self.hooks.authenticate(req)
                    resp = route.handler(self.ctx, req)
        except ApiError as err:
            resp = api_error_response(err)
        except S3Error as err:
            resp = xml_response(err)
        except ClientGone:
            h.close_connection = True
            self._record(req, kind, None, user_id, decision, started, None)
            return
        except Exception:
            log.exception("unhandled error in %s %s", h.command, path)
            resp = self.hooks.internal_error(kind, req)
        self._send(h, req, resp)
        self._record(req, kind, resp, user_id, decision, started, resp.headers.get("Retry-After"))

    # -- pieces ----------------------------------------------------------------------------

    @staticmethod
    def _body_reader(h: _Handler) -> BodyReader:
        te = (h.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return BodyReader(h.rfile, None, True)
        cl = h.headers.get("Content-Length")
        if cl is None:
            return BodyReader(h.rfile, None, False)
        length = int(cl.strip())
        if length < 0:
            raise ValueError("negative Content-Length")
        return BodyReader(h.rfile, length, False)

    def _send(self, h: _Handler, req: Request | None, resp: Response) -> None:
        close = False
        try:
            if req is not None:
                left = req.body.remaining()
                if left is None or left > DRAIN_LIMIT:
                    close = True
                elif left:
                    req.body.drain()
        except ClientGone:
            h.close_connection = True
            return
        except OSError:
            h.close_connection = True
            return
        head_only = req is not None and req.method == "HEAD"
        stream = resp.stream
        try:
            h.send_response(resp.status)
            for name, value in resp.headers.items():
                h.send_header(name, value)
            if close:
                h.send_header("Connection", "close")
            if stream is None:
                h.send_header("Content-Length", str(len(resp.body)))
                h.end_headers()
                if resp.body and not head_only:
                    h.wfile.write(resp.body)
            elif resp.length is not None:
                h.send_header("Content-Length", str(resp.length))
                h.end_headers()
                if not head_only:
                    for chunk in stream:
                        h.wfile.write(chunk)
            else:
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                if not head_only:
                    for chunk in stream:
                        if chunk:
                            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            h.close_connection = True
        finally:
            closer = getattr(stream, "close", None)
            if closer is not None:
                closer()

    def _record(self, req: Request, kind: str, resp: Response | None, user_id: str | None,
                decision: Decision, started: float, retry_after: str | None) -> None:
        status = resp.status if resp is not None else None
        elapsed_ms = round((time.monotonic() - started) * 1000, 2)
        access_log.info("%s %s -> %s user=%s fault=%s %.1fms", req.method, req.path,
                        status if status is not None else "dropped", user_id, decision.kind,
                        elapsed_ms)
        if kind == ADMIN:
            return
        # ``time`` is when the request arrived, not when it was answered: a thread delayed
        # after answering must not make a client's wait before its next request look short.
        arrived = self.ctx.now() - elapsed_ms / 1000
        self.ctx.requests.add(LogEntry(
            seq=self.ctx.requests.next_seq(), time=arrived, method=req.method,
            path=req.path, status=status, user_id=user_id, retry_after=retry_after,
            fault=decision.kind, bytes_in=req.body.bytes_read, duration_ms=elapsed_ms,
            code=resp.code if resp is not None else None))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK
        # would add ~40 ms to every small response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        # Idle keep-alive connections are closed after keepalive_seconds, like uvicorn.
        self.connection.settimeout(self.server.keepalive)
        super().handle_one_request()

    def _dispatch(self) -> None:
        self.connection.settimeout(BODY_TIMEOUT)
        self.server.app.handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Access logging happens in ``App`` (without query strings)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("http: %s", _scrub(format % args))


class HttpServer(ThreadingHTTPServer):
    """Tracks connections and their threads so ``close()`` can end and join them all."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    block_on_close = False

    def __init__(self, address: tuple[str, int], keepalive: float) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.keepalive = keepalive
        self.app: App  # set by the owner once the port is known
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name="emulator-conn", daemon=True)
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - a broken connection must not kill the server
            log.debug("connection error", exc_info=True)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error", exc_info=True)

    def close_connections(self, timeout: float = 5.0) -> None:
        """Shut every open connection down and join its thread."""
        with self._lock:
            items = list(self._connections.items())
        for sock, _ in items:
            with contextlib.suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in items:
            thread.join(max(0.0, deadline - time.monotonic()))


def serve_in_background(server: HttpServer) -> threading.Thread:
    """Start ``server.serve_forever`` on a daemon thread; the socket is already listening."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="emulator-accept", daemon=True)
    thread.start()
    return thread


def stop_serving(server: HttpServer, thread: threading.Thread | None) -> None:
    """Stop accepting, close every connection and join the threads."""
    server.shutdown()
    server.server_close()
    server.close_connections()
    if thread is not None:
        thread.join(5.0)


def base_url_for(host: str, port: int) -> str:
    """The loopback URL a client uses to reach a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
