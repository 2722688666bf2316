"""Shared fixtures."""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import pytest_asyncio

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


# The longest files, longest first (seconds alone on the 2-core machine, 2026-12-01). `make test`
# hands files to the two workers in this order (`--no-loadscope-reorder`: xdist would order them
# by their number of tests), so the long ones start first and the short ones fill in at the end,
# instead of one worker waiting for the other to finish a long file it took last.
LONGEST_FIRST = (
    "test_desktop_e2e.py", "test_replay.py", "test_record.py", "test_xvfb_env.py", "test_trust.py",
    "test_pytest_plugin.py", "test_package.py", "test_demo_app.py", "test_google_e2e.py",
    "test_loop_e2e.py", "test_bad_input_props.py", "test_record_desktop.py", "test_anthropic_e2e.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


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


@pytest_asyncio.fixture(scope="session", loop_scope="session", autouse=True)
async def one_browser_per_worker() -> AsyncIterator[None]:
    """The async tests of a worker share its event loop, and the runs they start share one
    Chromium of it, each in a fresh context (as the pytest plugin's scenarios do). A module on a
    loop of its own launches its own browsers."""
    from cua.environments.browser_pool import shared_browsers

    async with shared_browsers():
        yield


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
