"""Serve the bundled demo web app (package data ``cua.demo_app``, ``demo_app/`` in the repository)
on loopback.

``make demo``, the tests and users' own experiments all need the same thing: the demo pages on a
local port, with no network and no log noise. A stdlib threading server is enough for that.

    with serve_demo() as server:
        print(server.url("login.html"))

or from a shell: ``python -m cua.testing.demo_server --port 8000``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from cua.bundled import demo_app_folder
from cua.errors import EnvError

__all__ = ["DemoServer", "default_demo_root", "serve_demo"]

# Chosen here rather than from the OS mime database, whose contents differ between machines.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}


def default_demo_root() -> Path:
    """The bundled demo app: where ``cua.demo_app`` is installed (``demo_app/`` of a checkout)."""
    return demo_app_folder()


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {"": "application/octet-stream", **_CONTENT_TYPES}

    def end_headers(self) -> None:
        # Scenario runs must see the files as they are on disk, never a cached copy.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class DemoServer:
    """A running demo server. Stop it with :meth:`stop` or by leaving a ``with`` block."""

    def __init__(self, root: Path, host: str, port: int) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.root = root
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port: int = self._httpd.server_address[1]
        # A short poll interval makes stop() take milliseconds instead of half a second.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"cua-demo-server:{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str = "") -> str:
        """The absolute URL of a page, e.g. ``url("form.html?shift=1")``."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def stop(self) -> None:
        """Stop serving and release the port. Calling it twice is harmless."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"DemoServer({self.base_url!r}, root={str(self.root)!r})"


def serve_demo(port: int = 0, host: str = "127.0.0.1", root: str | Path | None = None) -> DemoServer:
    """Start serving the demo app in a background thread and return at once.

    ``port=0`` picks a free port; read it back from ``.port`` or ``.base_url``. ``root`` serves
    another folder instead of the bundled demo app.
    """
    folder = Path(root) if root is not None else default_demo_root()
    if not (folder / "index.html").is_file():
        if root is not None:
            raise EnvError(
                f"Nothing to serve: {folder} has no index.html. Point root at the folder of the pages."
            )
        raise EnvError(
            f"The demo app was not found at {folder}: this cua was installed without its package "
            "data. Reinstall it (pip install cua, or pip install -e . in a checkout) or pass root= "
            "a folder that holds index.html."
        )
    try:
        return DemoServer(folder.resolve(), host, port)
    except OSError as err:
        raise EnvError(
            f"Could not serve the demo app on {host}:{port} ({err.strerror or err}). "
            "Pick another port, or port 0 for any free one."
        ) from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cua.testing.demo_server", description="Serve the cua demo web app."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port, 0 for any free one (default 8000)")
    parser.add_argument("--root", default=None, help="serve this folder instead of the bundled app")
    args = parser.parse_args(argv)
    try:
        server = serve_demo(port=args.port, host=args.host, root=args.root)
    except EnvError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(f"Serving the cua demo app at {server.base_url}/  (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
