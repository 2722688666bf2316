"""RemoteEnvironment against the real cua computer server (0.1.25, from .venv-vm).

The "VM" is Xvfb at 2048x1536 with a kiosk Chromium at device scale 2 and the computer server, all
on loopback; the model sees 1024x768. So the page's CSS pixels are model pixels, and every click
the page reports at the model coordinates proves the 2x mapping. The page POSTs what it receives
to the test's own HTTP server.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import desktop_contract as contract  # noqa: E402
import vmserver  # noqa: E402
from desktop_contract import MODEL, PAD, events, page  # noqa: E402,F401 (the page's fixtures)
from vmserver import last  # noqa: E402

from cua.actions import ScreenTransform, Size  # noqa: E402
from cua.environments.remote import RemoteEnvironment  # noqa: E402
from cua.errors import ConfigError, EnvironmentError_, ModelOutputError  # noqa: E402

VM_SCREEN = Size(2048, 1536)
module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="session")
def vm_python():
    """The computer server's venv; installed by scripts/install-vm-server when missing."""
    return vmserver.ensure_vm_server()


@pytest.fixture(scope="module")
def vm(vm_python, page):
    runner = vmserver.VMRunner(page.url, VM_SCREEN.width, VM_SCREEN.height, scale=2)
    try:
        page.wait_for(lambda ev: last(ev, "ready"), timeout=30, what="the page in the VM")
        yield runner.vm
    finally:
        runner.stop()
    assert not any(vmserver.pid_alive(pid) for pid in runner.vm.pids)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote(vm):
    async with RemoteEnvironment(vm.url, kind="ubuntu", display=MODEL) as env:
        await vmserver.wait_painted(env, PAD)
        yield env


# --- against the real server ------------------------------------------------------------------


@module_loop
async def test_reads_the_vm_screen_size_and_scales_screenshots_down(remote):
    assert remote.transform.screen == VM_SCREEN and remote.transform.sx == 2.0
    assert remote.os_type == "linux"
    await contract.screenshot_is_a_model_size_png(remote)


@module_loop
async def test_clicks_land_at_model_coordinates(remote, events):
    # Three buttons, not five: pyautogui has no side buttons, so through the server back and
    # forward are browser shortcuts (Alt+Left / Alt+Right), not mouse buttons (see remote.py).
    await contract.buttons_land_at_the_pad(remote, events, {"left": 0, "right": 2, "wheel": 1})


@module_loop
async def test_type_and_chords(remote, events):
    # ASCII only: the server's own keyboard library binds non-ASCII characters to spare keycodes
    # in a way Chromium can read stale, so such text is not reliable through it (upstream).
    await contract.type_and_chords(remote, events, typed="hello world", replacement="abc", keys=["/"],
                                   final="ab/")


@module_loop
@contract.every_plain_check
async def test_desktop_contract(remote, events, check):
    await check(remote, events)


@module_loop
async def test_execute_typed_actions_and_move(remote, events):
    from cua.actions import parse_action

    await remote.execute(parse_action({"type": "move", "x": 600, "y": 600}))
    await remote.execute(parse_action({"type": "click", "x": 100, "y": 100, "button": "left"}))
    events.wait_for(lambda ev: last(ev, "click"), what="click through execute()")


@module_loop
async def test_the_screenshot_after_settle_is_the_settled_frame(remote, events, monkeypatch):
    sent = []
    command = remote.command

    async def counting(name, **params):
        sent.append(name)
        return await command(name, **params)

    monkeypatch.setattr(remote, "command", counting)
    await remote.click(*PAD)
    sent.clear()
    await remote.settle()
    grabs = sent.count("screenshot")
    assert grabs >= 2  # two that agree
    assert vmserver.near(vmserver.colour_at(await remote.screenshot(), PAD), vmserver.PAD_BLUE)
    assert sent.count("screenshot") == grabs, "no grab of its own after settle()"
    await remote.move(600, 600)
    sent.clear()
    await remote.screenshot()
    assert sent == ["screenshot"], "an action since settle() means a fresh grab"
    events.wait_for(lambda ev: last(ev, "click"), what="the click")


@module_loop
async def test_one_to_one_display_on_the_same_vm(vm, events):
    async with RemoteEnvironment(vm.url, display=VM_SCREEN) as env:
        assert env.transform.sx == 1.0
        await env.click(2 * PAD[0], 2 * PAD[1])
        click = events.wait_for(lambda ev: last(ev, "click"), what="click at 1x")
        assert (click["x"], click["y"]) == PAD


@module_loop
async def test_after_stop_commands_fail_cleanly(vm):
    env = RemoteEnvironment(vm.url, display=MODEL)
    await env.start()
    await env.stop()
    await env.stop()
    with pytest.raises(EnvironmentError_, match="not started"):
        await env.screenshot()


# --- a VM with a 1920x1080 screen at scale 1, showing tests/pages_desktop/screen.html --------------


@pytest.fixture(scope="module")
def wide_vm(vm_python, page):
    page.clear()
    runner = vmserver.VMRunner(contract.screen_page_url(page), contract.WIDE.width, contract.WIDE.height)
    try:
        page.wait_for(lambda ev: last(ev, "ready"), timeout=30, what="the screen page in the VM")
        yield runner.vm
    finally:
        runner.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def wide(wide_vm):
    async with RemoteEnvironment(wide_vm.url, kind="linux", display=MODEL) as env:
        await vmserver.wait_painted(env, contract.SQUARE_PAINTED, contract.SQUARE_GREEN)
        yield env


@module_loop
async def test_a_wide_vm_screen_is_fitted_not_squashed(wide, events):
    assert wide.transform.screen == contract.WIDE
    await contract.wide_screen_is_fitted_not_squashed(wide, events)


@module_loop
async def test_scrolls_land_where_asked_on_the_vm(wide, events):
    # The server's scroll on Linux is pynput's: one wheel notch (X button 4/5) per unit.
    await contract.scroll_lands_where_asked(wide, events, css_per_model=1920 / 1024)


@module_loop
async def test_a_wheel_step_changes_how_many_notches_the_vm_gets(wide_vm, events):
    async with RemoteEnvironment(wide_vm.url, kind="linux", display=MODEL, wheel_step=240) as env:
        # 800 model px are 1500 screen px: 6 steps of 240, each one Chromium notch of 120 px.
        assert await contract.scrolled_by(env, events, 800) == 6 * 120


# --- without a server, or with one that refuses -------------------------------------------------


async def test_unreachable_vm_fails_fast_with_exit_code_4():
    url = f"http://127.0.0.1:{vmserver.free_port()}"
    env = RemoteEnvironment(url, retries=3, backoff=0.1)
    t0 = time.monotonic()
    with pytest.raises(EnvironmentError_) as err:
        await env.start()
    assert time.monotonic() - t0 < 5
    assert url in str(err.value) and "3 attempts" in str(err.value)
    assert err.value.exit_code == 4


def test_bad_url_or_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="http://"):
        RemoteEnvironment("127.0.0.1:8000")
    with pytest.raises(ConfigError, match="kind"):
        RemoteEnvironment("http://127.0.0.1:8000", kind="browser")


class _StubServer:
    """Only for what the real server cannot do here: cloud auth (it would call cua.ai), a
    failing command, a screen that changes on cue. Records the headers it sees; hands out
    ``frames`` (PNG bytes) in order to screenshot commands, the last one from then on."""

    def __init__(self, frames: list[bytes] | None = None) -> None:
        seen = self.headers = []
        frames = list(frames or [])

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                seen.append(dict(self.headers))
                self._reply(200, b'{"status": "ok", "os_type": "macos", "features": []}')

            def do_POST(self) -> None:  # noqa: N802
                seen.append(dict(self.headers))
                if self.headers.get("X-API-Key") != "sk-vm":
                    return self._reply(401, b'{"detail": "Authentication failed"}')
                command = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["command"]
                if command == "get_screen_size":
                    result = {"success": True, "size": {"width": 2880, "height": 1800}}
                elif command == "screenshot" and frames:
                    frame = frames.pop(0) if len(frames) > 1 else frames[0]
                    result = {"success": True, "image_data": base64.b64encode(frame).decode()}
                else:
                    result = {"success": False, "error": "accessibility permission missing"}
                self._reply(200, f"data: {json.dumps(result)}\n\n".encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_auth_headers_and_server_errors():
    stub = _StubServer()
    try:
        env = RemoteEnvironment(stub.url, kind="mac", display=Size(1440, 900), api_key="sk-vm",
                                vm_name="my-vm")
        async with env:
            assert env.transform.screen == Size(2880, 1800)
            assert all(h.get("X-API-Key") == "sk-vm" and h.get("X-Container-Name") == "my-vm"
                       for h in stub.headers)
            with pytest.raises(EnvironmentError_, match="left_click failed: accessibility permission"):
                await env.click(10, 10)
        with pytest.raises(EnvironmentError_, match="refused the credentials"):
            await RemoteEnvironment(stub.url, api_key="wrong").start()
    finally:
        stub.close()


def solid_png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2880, 1800), colour).save(out, format="PNG", compress_level=1)
    return out.getvalue()


async def test_settle_waits_until_two_grabs_agree():
    red, green, blue = solid_png((255, 0, 0)), solid_png((0, 255, 0)), solid_png((0, 0, 255))
    stub = _StubServer(frames=[red, green, blue, blue])  # a screen still changing for two grabs
    try:
        env = RemoteEnvironment(stub.url, kind="mac", display=Size(1440, 900), api_key="sk-vm",
                                settle_interval=0.01)
        async with env:
            await env.settle()
            assert vmserver.colour_at(await env.screenshot(), (10, 10)) == (0, 0, 255)
        stub.close()
        stub = _StubServer(frames=[solid_png((i, 0, 0)) for i in range(60)])  # never settles
        never = RemoteEnvironment(stub.url, kind="mac", api_key="sk-vm", settle_timeout=0.3,
                                  settle_interval=0.01)
        async with never:
            started = time.monotonic()
            await never.settle()  # gives up at its deadline instead of hanging
            assert 0.3 <= time.monotonic() - started < 2
    finally:
        stub.close()


def test_key_names_for_the_server():
    linux = RemoteEnvironment("http://127.0.0.1:1", kind="linux")
    mac = RemoteEnvironment("http://127.0.0.1:1", kind="mac")
    assert linux._chord(["CTRL", "A"]) == ["ctrl", "a"]
    assert linux._chord(["cmd", "shift", "/"]) == ["win", "shift", "/"]
    assert mac._chord(["cmd", "option", "ESC"]) == ["command", "alt", "esc"]
    assert [linux.key_name(k) for k in ("Enter", "Backspace", "PageUp", "ArrowLeft", "Space", "F5")] == [
        "enter", "backspace", "pageup", "left", "space", "f5"]
    with pytest.raises(ModelOutputError):
        linux.key_name("é")


def test_pixels_to_wheel_units(monkeypatch):
    """macOS cannot run here: check the units sent (pynput: notches on Linux, 10 px on macOS)."""
    sent = []

    async def record(command, **params):
        sent.append((command, params))
        return {"success": True}

    for kind, expected in (("linux", {"x": 2, "y": -3}), ("mac", {"x": 24, "y": -36})):  # 120 / 10 px
        env = RemoteEnvironment("http://127.0.0.1:1", kind=kind)
        env._transform = ScreenTransform(MODEL, MODEL)
        monkeypatch.setattr(env, "command", record)
        asyncio.run(env.scroll(10, 10, 240, 360))
        assert sent[-1] == ("scroll", expected)
