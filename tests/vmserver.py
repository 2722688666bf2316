"""Test helpers for the desktop environments: the test page server and a local "VM".

``PageServer`` serves tests/pages_desktop on 127.0.0.1 and records what the page POSTs to
``/event``, so a test asserts what the page received. ``LocalVM`` is the real cua computer server
(from .venv-vm, see scripts/install-vm-server) driving a kiosk Chromium on its own Xvfb: the same
thing a user runs inside a Linux VM.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PAGES = Path(__file__).resolve().parent / "pages_desktop"
VM_VENV = REPO / ".venv-vm"
INSTALL_SCRIPT = REPO / "scripts" / "install-vm-server"


# --- the test page and what it reports --------------------------------------------------------


class PageServer:
    """A stdlib HTTP server thread: GET serves the test pages, POST /event records page events."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(PAGES), **kwargs)

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length") or 0)
                event = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server._events.append(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/index.html"

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            events = sorted(self._events, key=lambda e: e.get("seq", 0))
        return [e for e in events if type_ is None or e.get("type") == type_]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float = 10.0,
                 what: str = "page state") -> Any:
        """Poll the recorded events until ``predicate(events)`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self.events())
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; page reported: {self.events()[-15:]}")
            time.sleep(0.05)

    async def await_for(self, predicate: Callable[[list[dict[str, Any]]], Any], timeout: float = 10.0,
                        what: str = "page state") -> Any:
        import asyncio

        return await asyncio.to_thread(self.wait_for, predicate, timeout, what)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def last(events: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    matching = [e for e in events if e.get("type") == type_]
    return matching[-1] if matching else None


# --- the screen -----------------------------------------------------------------------------------


PAD_BLUE = (0x20, 0x50, 0xC0)  # the test page's pad (tests/pages_desktop/index.html)


def colour_at(png: bytes, point: tuple[int, int]) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(png)).convert("RGB").getpixel(point)


def near(rgb: tuple[int, int, int], colour: tuple[int, int, int], tolerance: int = 8) -> bool:
    return max(abs(a - b) for a, b in zip(rgb, colour)) < tolerance


async def wait_painted(env: Any, point: tuple[int, int], colour: tuple[int, int, int] = PAD_BLUE,
                       timeout: float = 20.0) -> None:
    """Until ``env``'s screenshots show ``colour`` at ``point`` in two grabs in a row that agree.

    The page's "ready" event is its load; a kiosk paints, and starts taking input, after it.
    """
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        png = await env.screenshot()
        rgb = colour_at(png, point)
        if near(rgb, colour):
            pixels = Image.open(io.BytesIO(png)).tobytes()
            if pixels == previous:
                return
            previous = pixels
        assert time.monotonic() < deadline, f"{colour} never settled at {point}; last {rgb}"


# --- processes ------------------------------------------------------------------------------------


def chromium_command(url: str, width: int, height: int, user_data_dir: str, scale: int = 1) -> list[str]:
    """A kiosk Chromium filling a ``width``x``height`` screen; ``scale`` 2 keeps CSS pixels at half."""
    return [
        "/usr/bin/chromium", "--kiosk", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--password-store=basic", "--disable-smooth-scrolling", f"--force-device-scale-factor={scale}",
        f"--user-data-dir={user_data_dir}", "--window-position=0,0",
        f"--window-size={width // scale},{height // scale}", url,
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_pids(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def stop_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Stop a child started with ``start_new_session=True`` and everything in its group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None and not group_pids(proc.pid):
                return
            time.sleep(0.05)


class Xvfb:
    """An Xvfb of our own on a free display number (chosen by Xvfb via -displayfd)."""

    def __init__(self, width: int, height: int, timeout: float = 10.0) -> None:
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        data, deadline = b"", time.monotonic() + timeout
        try:
            while not data.endswith(b"\n"):
                try:
                    chunk = os.read(read_fd, 64)
                except BlockingIOError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        self.stop()
                        raise RuntimeError("Xvfb did not start") from None
                    time.sleep(0.02)
                    continue
                if not chunk:
                    self.stop()
                    raise RuntimeError("Xvfb exited before opening a display")
                data += chunk
        finally:
            os.close(read_fd)
        self.display = f":{data.decode().strip()}"

    def stop(self) -> None:
        stop_group(self.proc)


def ensure_vm_server() -> Path:
    """Install the computer server into .venv-vm (quick when already done); its python."""
    subprocess.run([str(INSTALL_SCRIPT)], check=True, timeout=600)
    return VM_VENV / "bin" / "python"


@dataclass
class LocalVM:
    """Xvfb + kiosk Chromium on the test page + the real computer server, on loopback."""

    url: str
    screen: tuple[int, int]
    x_display: str
    pids: list[int]


class VMRunner:
    """Starts a LocalVM; ``stop()`` ends everything it started, in reverse order."""

    def __init__(self, page_url: str, width: int, height: int, scale: int = 1,
                 timeout: float = 40.0) -> None:
        python = ensure_vm_server()
        self._procs: list[subprocess.Popen] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="cua-vm-")
        self._browser_args = (width, height, scale)
        self._browsers = 0
        self.log_path = Path(self._tmp.name) / "server.log"
        try:
            self._xvfb = Xvfb(width, height)
            env = {**os.environ, "DISPLAY": self._xvfb.display, "XDG_SESSION_TYPE": "x11"}
            env.pop("CONTAINER_NAME", None)  # when set, the server demands cloud auth
            self._env = env
            chromium = subprocess.Popen(
                chromium_command(page_url, width, height, str(Path(self._tmp.name) / "profile"), scale),
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
            self._procs.append(chromium)
            port = free_port()
            with open(self.log_path, "wb") as log:
                server = subprocess.Popen(
                    [str(python), "-m", "computer_server", "--host", "127.0.0.1", "--port", str(port),
                     "--log-level", "warning"],
                    env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, cwd=self._tmp.name,
                )
            self._procs.append(server)
            url = f"http://127.0.0.1:{port}"
            self._wait_status(url, server, timeout)
            self.vm = LocalVM(url=url, screen=(width, height), x_display=self._xvfb.display,
                              pids=[self._xvfb.proc.pid, chromium.pid, server.pid])
        except BaseException:
            self.stop()
            raise

    def _wait_status(self, url: str, server: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"computer server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/status", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        log = self.log_path.read_text()[-2000:]
        raise RuntimeError(f"computer server not up within {timeout:g} s: {log}")

    def stop(self) -> None:
        for proc in reversed(self._procs):
            stop_group(proc)
        self._procs.clear()
        if getattr(self, "_xvfb", None) is not None:
            self._xvfb.stop()
        self._tmp.cleanup()

    def restart_browser(self, page_url: str) -> None:
        """Replace the VM's kiosk Chromium with a fresh one (new profile) showing ``page_url``."""
        old = self._procs[0]
        stop_group(old)
        self._browsers += 1
        width, height, scale = self._browser_args
        profile = str(Path(self._tmp.name) / f"profile-{self._browsers}")
        self._procs[0] = subprocess.Popen(
            chromium_command(page_url, width, height, profile, scale), env=self._env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.vm.pids = [self._procs[0].pid if pid == old.pid else pid for pid in self.vm.pids]


def kiosk_launch_command(page_url: str, width: int, height: int, user_data_dir: str, scale: int = 1) -> str:
    """The kiosk Chromium as one shell command, for ``XDisplayEnvironment(launch=...)``."""
    return shlex.join(chromium_command(page_url, width, height, user_data_dir, scale))


class Kiosk:
    """A kiosk Chromium on an existing X display that a test restarts on another URL at will."""

    def __init__(self, x_display: str, width: int, height: int, scale: int = 1) -> None:
        self.x_display, self._size, self._scale = x_display, (width, height), scale
        self._tmp = tempfile.TemporaryDirectory(prefix="cua-kiosk-")
        self._starts = 0
        self.proc: subprocess.Popen | None = None

    def open(self, page_url: str) -> None:
        """Stop the running browser, if any, and start a fresh one (new profile) on ``page_url``."""
        self.stop()
        self._starts += 1
        profile = str(Path(self._tmp.name) / f"profile-{self._starts}")
        self.proc = subprocess.Popen(
            chromium_command(page_url, *self._size, profile, self._scale),
            env={**os.environ, "DISPLAY": self.x_display}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()
