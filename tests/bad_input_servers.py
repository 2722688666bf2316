"""Tiny loopback HTTP servers that answer whatever a test tells them to: a computer-server whose
``/cmd`` answers are the test's bytes, and a model endpoint whose ``/responses`` body is.
Shared by tests/test_bad_input.py and tests/test_bad_input_props.py."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    body: bytes
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a bad answer is what these tests are about


class CannedServer:
    """Answers ``GET /status`` as a computer-server would and every other request with
    ``answer`` (settable while it runs). ``with CannedServer(...) as server: server.url``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, answer: Answer) -> None:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("x-request-id", "req_bad_input_1")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                outer.requests.append(("GET", self.path, b""))
                if self.path == "/status":
                    body = json.dumps({"status": "ok", "os_type": "linux"}).encode()
                    self._reply(Answer(body))
                else:
                    self._reply(outer.answer)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                outer.requests.append(("POST", self.path, self.rfile.read(length)))
                self._reply(outer.answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "CannedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def data_line(payload: bytes) -> Answer:
    """A computer-server answer: one ``data:`` line, as its streaming response sends it."""
    return Answer(b"data: " + payload + b"\n\n", content_type="text/event-stream")
