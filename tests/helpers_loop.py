"""Helpers of the end-to-end loop and CLI tests: a page site that remembers who asked for what,
and a browser environment that reads the page's own account of itself before it closes."""

from __future__ import annotations

import base64
import functools
import os
import http.server
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cua.environments.browser import BrowserEnvironment
from cua.runs.reader import read_run

PAGES = Path(__file__).parent / "pages"
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
API_KEY = "sk-e2e-7f3a9c1d5b2e8f4a6c0d9e1b"  # distinctive, so a leak is easy to grep for


@dataclass(frozen=True)
class Hit:
    host: str  # the Host header's name, without the port
    path: str


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _hit(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.hits.append(Hit(host, self.path))  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._hit()
        if self.path.split("?")[0] == "/pixel.png":
            self._send(200, "image/png", PIXEL_PNG)
        else:
            super().do_GET()

    def do_POST(self) -> None:
        """``POST /report``: a page's JSON account of itself, kept in ``Site.reports``."""
        self._hit()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/report":
            self._send(404, "text/plain", b"not found")
            return
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.reports.append(json.loads(body))  # type: ignore[attr-defined]
        self._send(204, "text/plain", b"")

    def _send(self, status: int, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Site:
    """tests/pages on loopback, reachable as 127.0.0.1 and as localhost: two hostnames, one server.

    ``hits`` lists every GET the server answered, with the hostname the browser used, so a test
    can prove a blocked request never left the browser.
    """

    def __init__(self) -> None:
        handler = functools.partial(_SiteHandler, directory=str(PAGES))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.hits = []  # type: ignore[attr-defined]
        self._server.reports = []  # type: ignore[attr-defined]
        self._server.lock = threading.Lock()  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="loop-site", daemon=True)
        self._thread.start()

    def url(self, path: str = "loop.html", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path}"

    @property
    def hits(self) -> list[Hit]:
        with self._server.lock:  # type: ignore[attr-defined]
            return list(self._server.hits)  # type: ignore[attr-defined]

    def reports(self, token: str) -> list[dict[str, Any]]:
        """What pages opened with ``?report=token`` posted, oldest first."""
        with self._server.lock:  # type: ignore[attr-defined]
            return [r for r in self._server.reports if r.get("token") == token]  # type: ignore[attr-defined]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ProbedBrowser(BrowserEnvironment):
    """A browser environment that reads ``window.state``, ``window.log`` and the URL of the
    page through Playwright just before it stops: the page's own account, after the run."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.final: dict[str, Any] | None = None

    async def stop(self) -> None:
        if self._tabs.pages and self.final is None:
            try:
                self.final = await self.page.evaluate(
                    "() => ({state: window.state || null, log: window.log || [], url: location.href})"
                )
            except Exception as exc:  # the page is gone: the test's assertions will say so
                self.final = {"error": repr(exc)}
        await super().stop()

    @property
    def state(self) -> dict[str, Any]:
        assert self.final and self.final.get("state") is not None, f"no page state read: {self.final}"
        return self.final["state"]

    @property
    def log(self) -> list[dict[str, Any]]:
        assert self.final is not None
        return self.final.get("log") or []


def run_folder(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """run.json and the steps of steps.jsonl of a finished run."""
    return read_run(run_dir)


def grep_folder(folder: Path, needle: str) -> list[str]:
    """Files under ``folder`` whose bytes contain ``needle``."""
    data = needle.encode()
    return [str(p) for p in folder.rglob("*") if p.is_file() and data in p.read_bytes()]


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``predicate`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def input_bytes(request: dict[str, Any]) -> int:
    """Size of a request body's ``input`` as JSON: what a stateless run resends every turn."""
    return len(json.dumps(request.get("input")))


# --- processes ----------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children, grandchildren, …)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                parents[int(entry)] = stat[1]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running, not just a zombie waiting to be reaped."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")
