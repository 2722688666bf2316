"""The HTTP server under every stand-in (threaded, keep-alive, quiet, on loopback) and what every
stand-in does with it: ``VendorStandIn`` starts and stops it, records each request, queues and
plays injected faults, and sends JSON, errors and SSE streams. A vendor's stand-in adds its
routes, its rules and its error shape.

The server keeps the open connections so a stand-in can drop idle keep-alive ones when it
stops; ``reset_connection`` is how a stand-in injects a connection reset.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handle: Callable[["LoopbackHandler", str], None]) -> None:
        self.handle = handle
        self.connections: set[socket.socket] = set()
        super().__init__(address, LoopbackHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client hanging up (or being reset) is ordinary, not worth a traceback
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Close every open connection: idle keep-alive ones would outlive the server."""
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LoopbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm meets the
        # client's delayed ACK and every keep-alive answer waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # tests read the stand-in's records instead of stderr noise

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's names
        self.server.handle(self, "POST")

    def do_GET(self) -> None:  # noqa: N802
        self.server.handle(self, "GET")

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.handle(self, "DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self.server.handle(self, "PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self.server.handle(self, "PATCH")


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with a TCP reset, no HTTP answer (or no end of the answer)."""
    handler.close_connection = True
    try:
        handler.wfile.flush()
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
    except OSError:
        pass


@dataclass
class RequestRecord:
    """One HTTP request a stand-in received (secret headers redacted)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    request_id: str | None = None  # None where the vendor sends none (Gemini)
    status: int | None = None  # None: no answer was sent (a reset, or the client hung up)
    fault: str | None = None
    rule: str | None = None  # the rejection rule, when the request was rejected


@dataclass(frozen=True)
class Rejection:
    """A request a stand-in refused, by rule; ``param`` and ``code`` where the vendor's error has them."""

    rule: str
    status: int
    message: str
    record: RequestRecord
    param: str | None = None
    code: str | None = None


@dataclass
class Fault:
    kind: str
    remaining: int
    opts: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        """The extra answer headers the test asked for (the ``headers`` option)."""
        return {str(k): str(v) for k, v in (self.opts.get("headers") or {}).items()}


class VendorStandIn:
    """The lifecycle, records and faults every stand-in shares; a (sync or async) context manager.

    A subclass names its ``rejected_type`` (raised by its rules), its ``script_error_type`` and
    ``fault_kinds``, answers a request in ``route`` and words its errors in ``error_body``.
    """

    thread_name: ClassVar[str] = "cua-standin"
    fault_kinds: ClassVar[tuple[str, ...]] = ()
    fault_options: ClassVar[Mapping[str, frozenset[str]]] = {}  # options a fault kind takes
    any_fault_options: ClassVar[frozenset[str]] = frozenset({"headers"})  # options every kind takes
    status_faults: ClassVar[Mapping[str, str]] = {}  # fault kind → the rule whose error it answers
    secret_headers: ClassVar[frozenset[str]] = frozenset()
    request_id_bytes: ClassVar[int | None] = 16  # None: the vendor sends no request id
    internal_error_rule: ClassVar[str] = "script_error"
    no_retry_headers: ClassVar[Mapping[str, str]] = {"x-should-retry": "false"}
    json_content_type: ClassVar[str] = "application/json"
    stream_headers: ClassVar[Mapping[str, str]] = {"content-type": "text/event-stream; charset=utf-8",
                                                   "cache-control": "no-cache"}
    rejected_type: ClassVar[type[Exception]]
    script_error_type: ClassVar[type[Exception]]

    def __init__(self, *, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.records: list[RequestRecord] = []  # every HTTP request, with metadata
        self.rejections: list[Rejection] = []
        self.script_errors: list[BaseException] = []
        self.memory: dict[str, Any] = {}  # shared scratch space for callable turns
        self.turn_index = 0  # scripted turns answered so far
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._stopping = threading.Event()
        self._httpd: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = LoopbackServer((self.host, self.port), self._handle)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.thread_name}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def check(self) -> None:
        """Raise the first script error (a callable that raised, a malformed turn), if any."""
        if self.script_errors:
            raise self.script_errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        self.__exit__(exc_type, *rest)

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``, without any version prefix."""
        if self._httpd is None:
            raise RuntimeError("the stand-in server is not started")
        return f"http://{self.host}:{self.port}"

    # -- faults -----------------------------------------------------------------------------------

    def inject(self, kind: str, *, times: int = 1, **opts: Any) -> None:
        """Make the next ``times`` requests of the API fail with ``kind`` (see ``fault_kinds``)."""
        if kind not in self.fault_kinds:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(self.fault_kinds)}")
        if times < 1:
            raise ValueError(f"times must be 1 or more, got {times}")
        unknown = set(opts) - self.any_fault_options - self.fault_options.get(kind, frozenset())
        if unknown:
            raise ValueError(f"fault {kind!r} takes no option(s) {', '.join(sorted(unknown))}")
        with self._lock:
            self._faults.append(Fault(kind, times, opts))

    def take_fault(self, record: RequestRecord) -> Fault | None:
        """The fault this request meets, if one is queued; it is noted on ``record``."""
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
        record.fault = fault.kind
        return fault

    def play_error_or_reset(self, handler: LoopbackHandler, record: RequestRecord, fault: Fault) -> bool:
        """Answer ``fault`` with its error (``status_faults``) or a connection reset; false when
        it is a kind the vendor's stand-in plays itself."""
        if fault.kind in self.status_faults:
            self.send_error(handler, record, self.rejected_type(self.status_faults[fault.kind]), fault.headers)
        elif fault.kind == "reset":
            reset_connection(handler)
        else:
            return False
        return True

    # -- one request ------------------------------------------------------------------------------

    def route(self, handler: LoopbackHandler, record: RequestRecord, raw: bytes) -> None:
        """Answer one request; raise ``rejected_type`` to refuse it."""
        raise NotImplementedError

    def error_body(self, rejected: Any, record: RequestRecord) -> Any:
        """The vendor's JSON error for a refused request."""
        raise NotImplementedError

    def answer_headers(self, record: RequestRecord) -> dict[str, str]:
        """Headers the vendor puts on every answer (its request id, …)."""
        return {}

    def rejection(self, rejected: Any, record: RequestRecord) -> Rejection:
        return Rejection(rejected.rule, rejected.reason.status, rejected.message, record)

    def _handle(self, handler: LoopbackHandler, method: str) -> None:
        raw = read_body(handler)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        headers = {k.lower(): ("<redacted>" if k.lower() in self.secret_headers else v)
                   for k, v in handler.headers.items()}
        request_id = "req_" + secrets.token_hex(self.request_id_bytes) if self.request_id_bytes else None
        record = RequestRecord(method, urlsplit(handler.path).path, headers, body, request_id)
        with self._lock:
            self.records.append(record)
        try:
            self.route(handler, record, raw)
        except self.rejected_type as rejected:
            self.send_error(handler, record, rejected)
        except self.script_error_type as exc:
            with self._lock:
                self.script_errors.append(exc)
            self.send_error(handler, record, self.rejected_type("script_error", error=str(exc)),
                            self.no_retry_headers)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        except Exception as exc:  # a bug of the stand-in: surface it to the test, loudly
            with self._lock:
                self.script_errors.append(exc)
            self.send_error(handler, record, self.rejected_type(self.internal_error_rule, error=repr(exc)),
                            self.no_retry_headers)

    # -- answers ----------------------------------------------------------------------------------

    def send_json(self, handler: LoopbackHandler, record: RequestRecord, status: int, payload: Any,
                  extra: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._send_head(handler, record, status, extra, len(data))
        handler.wfile.write(data)
        handler.wfile.flush()

    def send_cut_json(self, handler: LoopbackHandler, record: RequestRecord, payload: Any,
                      extra: Mapping[str, str] | None = None) -> None:
        """A 200 whose JSON body breaks off halfway with a connection reset."""
        data = json.dumps(payload).encode()
        self._send_head(handler, record, 200, extra, len(data))
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        reset_connection(handler)

    def send_error(self, handler: LoopbackHandler, record: RequestRecord, rejected: Any,
                   extra: Mapping[str, str] | None = None) -> None:
        record.rule = rejected.rule
        if record.fault is None:  # injected faults are not rejections of the request
            with self._lock:
                self.rejections.append(self.rejection(rejected, record))
        self.send_json(handler, record, rejected.reason.status, self.error_body(rejected, record), extra)

    def send_stream(self, handler: LoopbackHandler, record: RequestRecord, frames: Iterable[str],
                    *, cut: bool = False) -> None:
        """A 200 event stream, one chunk a frame; ``cut`` resets the connection instead of ending it."""
        record.status = 200
        handler.send_response(200)
        for name, value in {**self.answer_headers(record), **self.stream_headers}.items():
            handler.send_header(name, value)
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        for frame in frames:
            chunk = frame.encode()
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            handler.wfile.flush()
        if cut:
            reset_connection(handler)
            return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    def _send_head(self, handler: LoopbackHandler, record: RequestRecord, status: int,
                   extra: Mapping[str, str] | None, length: int) -> None:
        record.status = status
        handler.send_response(status)
        for name, value in {**self.answer_headers(record), **(extra or {})}.items():
            handler.send_header(name, value)
        handler.send_header("content-type", self.json_content_type)
        handler.send_header("content-length", str(length))
        handler.end_headers()


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body, sent with a content-length or chunked."""
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        data = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("content-length") or 0)
    return handler.rfile.read(length) if length else b""
