"""XDisplayEnvironment against a real Xvfb and a kiosk Chromium showing tests/pages_desktop.

The page POSTs every input it receives to the test's own HTTP server, so each assertion is about
what the application really saw, polled with a deadline.
"""

from __future__ import annotations

import io
import os
import sys
import json
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmserver  # noqa: E402
from vmserver import last  # noqa: E402

from cua.actions import Size  # noqa: E402
from cua.environments.keys_x11 import chord_keysyms, x_keysym  # noqa: E402
from cua.actions import wheel_clicks  # noqa: E402
from cua.environments.xvfb import XDisplayEnvironment  # noqa: E402
from cua.errors import EnvironmentError_, ModelOutputError  # noqa: E402

MODEL = Size(1024, 768)
PAD, FIELD, PANE = (100, 100), (100, 220), (500, 120)
module_loop = pytest.mark.asyncio(loop_scope="module")


def kiosk(page: vmserver.PageServer, screen: Size, profile: Path, scale: int = 1) -> str:
    return vmserver.kiosk_launch_command(page.url, screen.width, screen.height, str(profile), scale)


def processes_on(x_display: str) -> list[int]:
    """Every live process whose environment points at ``x_display`` (catches escaped children)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"DISPLAY={x_display}".encode() in env and vmserver.pid_alive(int(entry)):
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def page():
    server = vmserver.PageServer()
    yield server
    server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desktop(page, tmp_path_factory):
    env = XDisplayEnvironment(MODEL, launch=kiosk(page, MODEL, tmp_path_factory.mktemp("kiosk")))
    async with env:
        await page.await_for(lambda ev: last(ev, "ready"), timeout=30, what="the page to load")
        await vmserver.wait_painted(env, PAD)
        yield env


@pytest.fixture
def events(page):
    page.clear()
    return page


# --- the real display -------------------------------------------------------------------------


@module_loop
async def test_screenshot_is_a_png_of_the_display(desktop):
    image = Image.open(io.BytesIO(await desktop.screenshot()))
    assert image.format == "PNG" and image.size == (1024, 768)
    assert vmserver.near(image.convert("RGB").getpixel(PAD), vmserver.PAD_BLUE)


@module_loop
async def test_left_right_middle_and_side_buttons(desktop, events):
    for button in ("left", "right", "wheel", "back", "forward"):
        await desktop.click(*PAD, button=button)
    downs = events.wait_for(
        lambda ev: (d := [e for e in ev if e["type"] == "mousedown"]) and len(d) == 5 and d,
        what="five mousedowns")
    assert [d["button"] for d in downs] == [0, 2, 1, 3, 4]  # DOM numbering
    assert all((d["x"], d["y"]) == PAD for d in downs)
    assert events.events("contextmenu"), "right click opened the (suppressed) context menu"


@module_loop
async def test_double_click(desktop, events):
    await desktop.double_click(150, 120)
    dbl = events.wait_for(lambda ev: last(ev, "dblclick"), what="dblclick")
    assert (dbl["x"], dbl["y"]) == (150, 120)


@module_loop
async def test_modifiers_held_on_click_and_released_after(desktop, events):
    await desktop.click(*PAD, keys=["SHIFT"])
    await desktop.click(*PAD, keys=["CTRL", "alt"])
    await desktop.click(*PAD)
    clicks = events.wait_for(lambda ev: len(c := [e for e in ev if e["type"] == "click"]) == 3 and c,
                             what="three clicks")
    assert [(c["shift"], c["ctrl"], c["alt"]) for c in clicks] == [
        (True, False, False), (False, True, True), (False, False, False)]


@module_loop
async def test_type_unicode_and_chords(desktop, events):
    await desktop.click(*FIELD)
    await desktop.keypress(["CTRL", "A"])
    await desktop.type("hello wörld")
    events.wait_for(lambda ev: (i := last(ev, "input")) and i["value"] == "hello wörld",
                    what="typed text")
    await desktop.keypress(["ctrl", "a"])  # select all, then replace
    await desktop.type("é世界")
    events.wait_for(lambda ev: (i := last(ev, "input")) and i["value"] == "é世界", what="replaced text")
    await desktop.keypress(["BACKSPACE"])
    await desktop.keypress(["/"])
    await desktop.keypress(["."])
    events.wait_for(lambda ev: (i := last(ev, "input")) and i["value"] == "é世/.", what="keys")
    select_all = [e for e in events.events("keydown") if e["key"] == "a" and e["ctrl"]]
    assert select_all and not select_all[0]["shift"], "Ctrl+A is a chord of Control and a"


@module_loop
async def test_unknown_key_is_a_model_error(desktop):
    with pytest.raises(ModelOutputError, match="NOPE"):
        await desktop.keypress(["NOPE"])


@module_loop
async def test_scroll_moves_the_inner_pane_not_the_page(desktop, events):
    await desktop.scroll(*PANE, scroll_x=0, scroll_y=300)
    down = events.wait_for(lambda ev: (s := last(ev, "scroll")) and s["top"] >= 250 and s,
                           what="pane scrolled down")
    assert down["windowY"] == 0
    await desktop.scroll(*PANE, scroll_x=200, scroll_y=0)
    events.wait_for(lambda ev: (s := last(ev, "scroll")) and s["left"] >= 150, what="pane scrolled right")
    await desktop.scroll(*PANE, scroll_x=0, scroll_y=-5000)
    events.wait_for(lambda ev: (s := last(ev, "scroll")) and s["top"] == 0, what="pane back at top")


@module_loop
async def test_drag_passes_through_every_point(desktop, events):
    path = [(100, 350), (200, 400), (300, 380), (400, 450)]
    await desktop.drag(path, keys=["shift"])
    drag = events.wait_for(lambda ev: last(ev, "drag"), what="drag")
    points = [tuple(p) for p in drag["points"]]
    assert points[0] == path[0] and points[-1] == path[-1]
    for x, y in path[1:-1]:
        assert any(abs(px - x) <= 1 and abs(py - y) <= 1 for px, py in points), (x, y, points)
    assert drag["shift"]


@module_loop
async def test_move_and_settle(desktop):
    await desktop.move(600, 600)
    await desktop.settle()
    assert desktop.kind == "ubuntu"


# --- other set-ups ------------------------------------------------------------------------------


@module_loop
async def test_twice_the_model_size_scales_coordinates_and_screenshots(page, tmp_path):
    page.clear()
    env = XDisplayEnvironment(MODEL, screen=Size(2048, 1536), kind="linux",
                              launch=kiosk(page, Size(2048, 1536), tmp_path, scale=2))
    async with env:
        await page.await_for(lambda ev: (r := last(ev, "ready")) and r["dpr"] == 2, timeout=30,
                             what="the 2x page")
        assert env.transform.sx == 2.0
        await vmserver.wait_painted(env, PAD)  # in the model-size screenshot, scaled down
        await env.click(*PAD)
        click = await page.await_for(lambda ev: last(ev, "click"), what="click at 2x")
        assert abs(click["x"] - PAD[0]) <= 1 and abs(click["y"] - PAD[1]) <= 1
        image = Image.open(io.BytesIO(await env.screenshot()))
        assert image.size == (1024, 768)


@module_loop
async def test_attach_to_an_existing_display_and_leave_it_running(page, tmp_path):
    xvfb = vmserver.Xvfb(800, 600)
    try:
        page.clear()
        env = XDisplayEnvironment(Size(800, 600), x_display=xvfb.display,
                                  launch=kiosk(page, Size(800, 600), tmp_path))
        async with env:
            await page.await_for(lambda ev: last(ev, "ready"), timeout=30, what="page on :N")
            assert env.x_display == xvfb.display
            await vmserver.wait_painted(env, PAD)
            await env.click(*PAD)
            await page.await_for(lambda ev: last(ev, "click"), what="click on the attached display")
            launched = env.pids
        assert vmserver.pid_alive(xvfb.proc.pid), "an attached display is not ours to stop"
        assert not any(vmserver.group_pids(pgid) for pgid in launched)
        assert processes_on(xvfb.display) == []
    finally:
        xvfb.stop()


@module_loop
async def test_stop_leaves_no_xvfb_or_chromium_behind(page, tmp_path):
    env = XDisplayEnvironment(MODEL, launch=kiosk(page, MODEL, tmp_path))
    await env.start()
    x_display, groups = env.x_display, env.pids
    started = [pid for pgid in groups for pid in vmserver.group_pids(pgid)]
    assert len(groups) == 2 and len(started) >= 3  # Xvfb, chromium and its helpers
    on_display = processes_on(x_display)
    t0 = time.monotonic()
    await env.stop()
    await env.stop()  # twice is fine
    assert time.monotonic() - t0 < 10
    assert [pid for pid in started + on_display if vmserver.pid_alive(pid)] == []


_INTERRUPTED_RUN = """
import asyncio, json, sys
from cua.actions import Size
from cua.environments.xvfb import XDisplayEnvironment

async def main():
    async with XDisplayEnvironment(Size(640, 480), launch=sys.argv[1]) as env:
        print(json.dumps({"display": env.x_display, "groups": env.pids}), flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def test_ctrl_c_stops_everything(page, tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_RUN, kiosk(page, Size(640, 480), tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 30)  # start() has returned
        started = json.loads(child.stdout.readline() or "{}") if ready else {}
        assert started, child.stderr.read()
        pids = [pid for pgid in started["groups"] for pid in vmserver.group_pids(pgid)]
        pids += processes_on(started["display"])
        assert len(pids) >= 3
        child.send_signal(signal.SIGINT)
        child.wait(15)
        assert [pid for pid in pids if vmserver.pid_alive(pid)] == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@module_loop
async def test_failed_launch_cleans_up_and_says_why():
    env = XDisplayEnvironment(Size(320, 240), launch="echo no such app >&2; exit 3", launch_timeout=10)
    with pytest.raises(EnvironmentError_, match="status 3.*no such app"):
        await env.start()
    assert env.pids == [] and env.x_display is None


async def test_missing_programs_say_run_make_setup(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentError_, match="make setup") as err:
        await XDisplayEnvironment(MODEL).start()
    assert err.value.exit_code == 4


# --- tables ---------------------------------------------------------------------------------------


def test_keysym_table():
    assert [x_keysym(k) for k in ("Control", "Enter", "Backspace", "PageUp", "ArrowLeft", "Space",
                                   "Escape", "Meta", "Alt", "/", ".", "a", "Z", "7", "é", "世")] == [
        "Control_L", "Return", "BackSpace", "Page_Up", "Left", "space", "Escape", "Super_L",
        "Alt_L", "slash", "period", "a", "Z", "7", "U00E9", "U4E16"]
    assert chord_keysyms(["CTRL", "A"]) == ["Control_L", "a"]
    assert chord_keysyms(["A"]) == ["A"]
    assert chord_keysyms(["cmd", "shift", "+"]) == ["Super_L", "Shift_L", "plus"]
    with pytest.raises(ModelOutputError, match="HYPER"):
        chord_keysyms(["HYPER"])


def test_wheel_clicks():
    assert [wheel_clicks(p) for p in (0, 1, 49, 100, 300, -300, -40, 10_000)] == [
        0, 1, 1, 1, 3, -3, -1, 25]
