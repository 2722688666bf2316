"""Shared fixtures."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Iterator

import pytest

# Helper modules whose asserts are the tests' own: pytest explains their failures too.
pytest.register_assert_rewrite("cli_helpers", "desktop_contract")

PAGES = Path(__file__).parent / "pages"


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
