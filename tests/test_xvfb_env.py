"""XDisplayEnvironment against a real Xvfb and a kiosk Chromium showing tests/pages_desktop.

The page POSTs every input it receives to the test's own HTTP server, so each assertion is about
what the application really saw, polled with a deadline.
"""

from __future__ import annotations

import asyncio
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
import cli_helpers  # noqa: E402
import desktop_contract as contract  # noqa: E402
import vmserver  # noqa: E402
from desktop_contract import MODEL, PAD, events, page  # noqa: E402,F401 (the page's fixtures)
from vmserver import last  # noqa: E402

from cua.actions import Size  # noqa: E402
from cua.environments.keys_x11 import chord_keysyms, x_keysym  # noqa: E402
from cua.actions import wheel_steps  # noqa: E402
from cua.environments.xvfb import XDisplayEnvironment  # noqa: E402
from cua.errors import EnvironmentError_, ModelOutputError  # noqa: E402
from cua.testing.standin import StandIn, Turn, png_size  # noqa: E402

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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desktop(page, tmp_path_factory):
    env = XDisplayEnvironment(MODEL, launch=kiosk(page, MODEL, tmp_path_factory.mktemp("kiosk")))
    async with env:
        await page.await_for(lambda ev: last(ev, "ready"), timeout=30, what="the page to load")
        await vmserver.wait_painted(env, PAD)
        yield env


# --- the real display -------------------------------------------------------------------------


@module_loop
async def test_screenshot_is_a_png_of_the_display(desktop):
    await contract.screenshot_is_a_model_size_png(desktop)


@module_loop
async def test_left_right_middle_and_side_buttons(desktop, events):
    # All five: X has the side buttons (8 and 9) that the computer server lacks.
    await contract.buttons_land_at_the_pad(
        desktop, events, {"left": 0, "right": 2, "wheel": 1, "back": 3, "forward": 4})
    assert events.events("contextmenu"), "right click opened the (suppressed) context menu"


@module_loop
async def test_type_unicode_and_chords(desktop, events):
    # Unicode text: unlike through the computer server (see test_remote_env.py), non-ASCII
    # characters type reliably on this display.
    await contract.type_and_chords(desktop, events, typed="hello wörld", replacement="é世界",
                                   keys=["/", "."], final="é世/.")


@module_loop
@contract.every_plain_check
async def test_desktop_contract(desktop, events, check):
    await check(desktop, events)


@module_loop
async def test_move_and_settle(desktop):
    await desktop.move(600, 600)
    await desktop.settle()
    assert desktop.kind == "ubuntu"


# --- wheel steps and screens of another shape (tests/pages_desktop/screen.html) -------------------

SQUARE, DISC = (384, 128), (171, 128)  # the centres of the square and the disc in FITTED model space


async def painted_screen_page(env: XDisplayEnvironment, page: vmserver.PageServer, width: int) -> None:
    await page.await_for(lambda ev: (r := last(ev, "ready")) and abs(r["width"] - width) <= 2, timeout=30,
                         what="the screen page")
    wide = env.transform.screen == contract.WIDE  # else at 1x: model pixels are CSS pixels
    await vmserver.wait_painted(env, contract.SQUARE_PAINTED if wide else (787, 300), contract.SQUARE_GREEN)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def wide(page, tmp_path_factory):
    """A 1920x1080 Xvfb showing the screen page, under the model's 1024x768."""
    page.clear()
    launch = vmserver.kiosk_launch_command(contract.screen_page_url(page), contract.WIDE.width, contract.WIDE.height,
                                           str(tmp_path_factory.mktemp("wide")))
    async with XDisplayEnvironment(MODEL, screen=contract.WIDE, launch=launch) as env:
        await painted_screen_page(env, page, contract.WIDE.width)
        yield env


@module_loop
async def test_a_wide_screen_is_fitted_not_squashed(wide, events):
    assert wide.transform.screen == contract.WIDE
    await contract.wide_screen_is_fitted_not_squashed(wide, events)


@module_loop
async def test_scrolls_land_where_asked_on_a_wide_screen(wide, events):
    await contract.scroll_lands_where_asked(wide, events, css_per_model=1920 / 1024)


@module_loop
async def test_scrolls_land_where_asked(page, tmp_path):
    # The case: Chromium on X scrolls 120 px a notch, and 800 px used to become 960.
    # 400, not 300: at 120 px a notch, 300 px is 2.5 notches, 20 % off either way (see README).
    page.clear()
    launch = vmserver.kiosk_launch_command(contract.screen_page_url(page), MODEL.width, MODEL.height,
                                           str(tmp_path))
    async with XDisplayEnvironment(MODEL, launch=launch) as env:
        await painted_screen_page(env, page, MODEL.width)
        await contract.scroll_lands_where_asked(env, page, css_per_model=1, asked=(800, 400, 1500))


def _cua_on_display(x_display: str, page: vmserver.PageServer, out: Path, *extra: str,
                    turns: list[Turn]) -> tuple[cli_helpers.Finished, StandIn]:
    server = StandIn(turns, api_key="sk-test")
    with server:
        proc = cli_helpers.start_cua(
            ["run", "--task", "click the square and scroll", "--env", "ubuntu", "--x-display", x_display,
             "--display", "1024x768", "--model", "computer-use-preview", "--base-url", server.base_url,
             "--json", "--out", str(out), *extra],
            cli_helpers.clean_env(OPENAI_API_KEY="sk-test"), out)
        done = cli_helpers.finish(proc)
    assert "Traceback" not in done.stderr, done.stderr
    return done, server


@module_loop
async def test_cua_run_on_a_wide_display_declares_the_fitted_size_and_takes_a_wheel_step(page, tmp_path):
    """``cua run`` on a 1920x1080 display under --display 1024x768, with --wheel-step 240: the model
    is told 1024x576 and sees it, its click lands, and 800 px are 6 notches (the default 120 would
    send 13); ``cua replay --wheel-step`` does the same again."""
    xvfb = vmserver.Xvfb(contract.WIDE.width, contract.WIDE.height)
    kiosk = vmserver.Kiosk(xvfb.display, contract.WIDE.width, contract.WIDE.height)
    try:
        watcher = XDisplayEnvironment(MODEL, x_display=xvfb.display)
        async with watcher:
            page.clear()
            kiosk.open(contract.screen_page_url(page))
            await painted_screen_page(watcher, page, contract.WIDE.width)
            page.clear()
            turns = [Turn.call({"type": "click", "x": SQUARE[0], "y": SQUARE[1], "button": "left"}),
                     Turn.call({"type": "scroll", "x": DISC[0], "y": DISC[1], "scroll_x": 0, "scroll_y": 800}),
                     Turn.message("done")]
            done, server = await asyncio.to_thread(
                _cua_on_display, xvfb.display, page, tmp_path, "--wheel-step", "240", turns=turns)
            assert done.code == 0, done.stderr
            assert server.rejections == []
            assert server.requests[0]["tools"][0] == {"type": "computer_use_preview", "display_width": 1024,
                                                      "display_height": 576, "environment": "ubuntu"}
            assert {png_size(png) for png in server.screenshots} == {(1024, 576)}
            click = await page.await_for(lambda ev: last(ev, "click"), what="the model's click")
            assert click["target"] == "square"
            scrolled = await page.await_for(lambda ev: last(ev, "scrolled"), what="the model's scroll")
            assert scrolled["y"] == 6 * 120  # 800 model px = 1500 screen px = 6.25 steps of 240
            run_dir = Path(done.json()["run_dir"])
            meta = json.loads((run_dir / "run.json").read_text())
            assert (meta["display"], meta["settings"]["wheel_step"]) == ("1024x576", 240)
            assert {Image.open(shot).size for shot in (run_dir / "screens").glob("*.png")} == {(1024, 576)}

            page.clear()
            kiosk.open(contract.screen_page_url(page))
            await painted_screen_page(watcher, page, contract.WIDE.width)
            page.clear()
            proc = cli_helpers.start_cua(
                ["replay", str(run_dir), "--x-display", xvfb.display, "--wheel-step", "480", "--json",
                 "--out", str(tmp_path)], cli_helpers.clean_env(), tmp_path)
            replayed = await asyncio.to_thread(cli_helpers.finish, proc)
            assert replayed.code == 0, replayed.stderr
            assert (replayed.json()["status"], replayed.json()["healed"]) == ("completed", 0)
            assert (await page.await_for(lambda ev: last(ev, "click"), what="the replayed click"))["target"] == "square"
            scrolled = await page.await_for(lambda ev: last(ev, "scrolled"), what="the replayed scroll")
            assert scrolled["y"] == 3 * 120  # 1500 screen px = 3.1 steps of 480
    finally:
        kiosk.close()
        xvfb.stop()


def test_wheel_step_is_refused_where_it_means_nothing(tmp_path):
    env = cli_helpers.clean_env(OPENAI_API_KEY="sk-test")
    done = cli_helpers.finish(cli_helpers.start_cua(
        ["run", "--task", "x", "--wheel-step", "120", "--base-url", "http://127.0.0.1:9"], env, tmp_path))
    assert done.code == 2 and "--wheel-step is for a desktop" in done.stderr, done.stderr
    done = cli_helpers.finish(cli_helpers.start_cua(
        ["run", "--task", "x", "--env", "ubuntu", "--wheel-step", "0"], env, tmp_path))
    assert done.code == 2 and "--wheel-step" in done.stderr and "Traceback" not in done.stderr


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
import asyncio, faulthandler, json, signal, sys
faulthandler.register(signal.SIGUSR1)  # the test asks where a slow stop is stuck
# Ctrl-C as a terminal delivers it, even when pytest was started in the background (where the
# shell set SIGINT to ignored, and every child inherits that).
signal.signal(signal.SIGINT, signal.default_int_handler)
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
        try:
            child.wait(30)  # ~2 s
        except subprocess.TimeoutExpired:
            status = Path(f"/proc/{child.pid}/status").read_text()
            masks = "".join(line for line in status.splitlines(True) if line.startswith("Sig"))
            child.send_signal(signal.SIGUSR1)
            time.sleep(1)
            child.kill()
            pytest.fail(f"the interrupted run did not stop in 30 s; its signals:\n{masks}where it was:\n"
                        + child.communicate()[1])
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


def test_wheel_steps_round_to_the_nearest_notch():
    assert [wheel_steps(p, 120) for p in (0, 1, 59, 179, 180, 300, -300, 800, -40, 10_000)] == [
        0, 1, 1, 1, 2, 3, -3, 7, -1, 50]  # 10 000 px: capped at 6000 px worth
    assert [wheel_steps(p, 60) for p in (300, 800)] == [5, 13]
