"""The HTTP server under every stand-in: threaded, keep-alive, quiet, on loopback.

Each stand-in hands it one ``handle(handler, method)`` callable; the server keeps the open
connections so a stand-in can drop idle keep-alive ones when it stops, and ``reset_connection``
is how a stand-in injects a connection reset.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
