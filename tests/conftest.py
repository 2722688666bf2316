"""Shared fixtures."""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

# Helper modules whose asserts are the tests' own: pytest explains their failures too.
pytest.register_assert_rewrite("cli_helpers", "desktop_contract")

PAGES = Path(__file__).parent / "pages"

# Every process the suite starts inherits this mark (cua keeps such plain variables for its
# children), so whatever is still running once the session is over can be found and named.
SESSION_MARK = "CUA_TEST_SESSION"
LEFTOVER_GRACE_S = 15


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)


def _marked_processes(mark: bytes) -> dict[int, str]:
    found = {}
    ours = {os.getpid(), os.getppid()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        try:
            if mark not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                continue
            found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
        except (OSError, ValueError):
            continue
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """The suite leaves nothing running: after every worker stopped, no process of this session
    may be left (a browser, its driver, an X server, a VM server). One that is fails the run."""
    yield
    if hasattr(session.config, "workerinput") or SESSION_MARK not in os.environ:
        return
    mark = f"{SESSION_MARK}={os.environ[SESSION_MARK]}".encode()
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while (left := _marked_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"  {pid}: {cmd}" for pid, cmd in sorted(left.items())]
        message = "processes the tests started are still running:\n" + "\n".join(lines)
        if reporter:
            reporter.write_line("")
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class _PagesHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # tests reload pages and must see fresh ones
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def pages_server() -> Iterator[str]:
    """tests/pages over real HTTP on 127.0.0.1; the base URL, without a trailing slash."""
    handler = functools.partial(_PagesHandler, directory=str(PAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="pages-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
