"""The actions beyond OpenAI's nine (triple click, mouse and keys held, zoom, the pointer's position,
the wheel notch, navigation) in each environment, against what a real page saw.

One page, tests/pages_desktop/vocabulary.html, is shown by headless Chromium at device scale 2
(the browser environment), by a kiosk Chromium on our own Xvfb at 1x (``ubuntu``) and by a kiosk
Chromium at scale 2 in a 2048x1536 "VM" behind the real computer server (``vm``); the model sees
1024x768 in all three, so the page's CSS pixels are model pixels. The page POSTs what it receives
to the test's HTTP server. Each environment is started once and the checks run against it in turn.
"""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmserver  # noqa: E402
from desktop_contract import MODEL, events, page  # noqa: E402,F401 (the page's fixtures)
from vmserver import last  # noqa: E402

from cua.actions import Size, parse_action  # noqa: E402
from cua.environments.base import ActionOutput, zoom_png  # noqa: E402
from cua.environments.browser import BrowserEnvironment  # noqa: E402
from cua.environments.browser_launch import find_chromium  # noqa: E402
from cua.environments.remote import RemoteEnvironment  # noqa: E402
from cua.environments.xvfb import XDisplayEnvironment  # noqa: E402
from cua.errors import ActionNotSupported, EnvironmentError_, ModelOutputError  # noqa: E402

module_loop = pytest.mark.asyncio(loop_scope="module")

# Model (= CSS) places on the page: the paragraph, the blue pad, the scrolling pane, the magenta box.
PARA, PAD, PANE = (120, 32), (100, 150), (500, 200)
PAD_BLUE, BOX_MAGENTA, WHITE = (0x20, 0x50, 0xC0), (0xC0, 0x20, 0xC0), (0xFF, 0xFF, 0xFF)
PARAGRAPH = "Three clicks select this whole paragraph of text."
VM_SCREEN = Size(2048, 1536)
# Screen pixels per model pixel in each environment (the browser's device scale, the VM's 2x).
SCALE = {"browser": 2, "ubuntu": 1, "vm": 2}
POINTER_AT_START: dict[str, tuple[int, int]] = {}  # cursor_position() once started, by environment


def vocabulary_url(server: vmserver.PageServer) -> str:
    return server.url.rsplit("/", 1)[0] + "/vocabulary.html"


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["browser", "ubuntu", "vm"])
async def env(request, page, tmp_path_factory) -> Any:
    """Each environment in turn (one alive at a time), showing the page, painted."""
    url = vocabulary_url(page)
    if request.param == "browser":
        if find_chromium() is None:  # pragma: no cover - the dev setup installs it
            pytest.skip("no Chromium installed (make setup)")
        async with BrowserEnvironment(display=MODEL, device_scale_factor=2, start_url=url,
                                      block_domains=["blocked.test"]) as browser:
            POINTER_AT_START["browser"] = await browser.cursor_position()
            yield browser
        return
    if request.param == "ubuntu":
        launch = vmserver.kiosk_launch_command(url, MODEL.width, MODEL.height,
                                               str(tmp_path_factory.mktemp("kiosk")))
        async with XDisplayEnvironment(MODEL, launch=launch) as desktop:
            await page.await_for(lambda ev: last(ev, "ready"), timeout=30, what="the page on X")
            await vmserver.wait_painted(desktop, PAD, PAD_BLUE)
            yield desktop
        return
    vmserver.ensure_vm_server()
    runner = vmserver.VMRunner(url, VM_SCREEN.width, VM_SCREEN.height, scale=2)
    try:
        await page.await_for(lambda ev: last(ev, "ready"), timeout=30, what="the page in the VM")
        # Chromium at device scale 2 scrolls 240 screen pixels a notch (see the README).
        async with RemoteEnvironment(runner.vm.url, kind="ubuntu", display=MODEL, wheel_step=240) as remote:
            await vmserver.wait_painted(remote, PAD, PAD_BLUE)
            yield remote
    finally:
        runner.stop()


def only(*names: str) -> pytest.MarkDecorator:
    """Run a test against some of the environments only."""
    return pytest.mark.parametrize("env", names, indirect=True)


def name_of(env: Any) -> str:
    return "browser" if env.kind == "browser" else "vm" if isinstance(env, RemoteEnvironment) else "ubuntu"


async def of(events: vmserver.PageServer, type_: str, count: int, what: str) -> list[dict[str, Any]]:
    """The first ``count`` events of ``type_`` the page reported, once it has reported them."""
    return await events.await_for(
        lambda ev: len(e := [x for x in ev if x["type"] == type_]) >= count and e[:count], what=what)


# --- the mouse ----------------------------------------------------------------------------------


@module_loop
async def test_triple_click_selects_the_paragraph_with_keys_held(env, events):
    await env.triple_click(*PARA)
    selected = await events.await_for(lambda ev: (s := last(ev, "selection")) and s["text"] == PARAGRAPH and s,
                               what="the paragraph selected")
    assert selected["text"] == PARAGRAPH
    events.clear()
    await env.triple_click(*PAD, keys=["shift"])
    downs = await of(events, "mousedown", 3, "three mousedowns")
    assert [(d["detail"], d["shift"], (d["x"], d["y"])) for d in downs] == [(n, True, PAD) for n in (1, 2, 3)]
    await env.click(*PAD)
    assert not (await of(events, "mousedown", 4, "a plain click after it"))[3]["shift"], "shift was released"


@module_loop
async def test_mouse_down_move_up_and_where_the_pointer_is(env, events):
    await env.click(900, 700)  # no selection left to drag (Chromium would drag it, eating the mouseup)
    await events.await_for(lambda ev: {(e["type"], e.get("x")) for e in ev} >= {("mousedown", 900), ("mouseup", 900)},
                           what="the clearing click")
    events.clear()
    await env.mouse_down(*PAD)
    await env.move(260, 220)
    assert await env.cursor_position() == (260, 220)
    await env.mouse_up(None, None)
    down, = await of(events, "mousedown", 1, "the button going down")
    up, = await of(events, "mouseup", 1, "the button coming up where the pointer went")
    assert (down["button"], down["buttons"], down["x"], down["y"]) == (0, 1, *PAD)
    assert (up["button"], up["buttons"], up["x"], up["y"]) == (0, 0, 260, 220)
    # Right button, held and released where the pointer is; through execute() as a model sends it.
    await env.execute(parse_action({"type": "mouse_down", "button": "right"}))
    await env.execute(parse_action({"type": "mouse_up", "button": "right"}))
    downs, ups = await of(events, "mousedown", 2, "right down"), await of(events, "mouseup", 2, "right up")
    assert (downs[1]["button"], downs[1]["x"], downs[1]["y"]) == (2, 260, 220)
    assert (ups[1]["button"], ups[1]["x"], ups[1]["y"]) == (2, 260, 220)


@module_loop
async def test_side_buttons_held_where_the_environment_has_them(env, events):
    if name_of(env) != "ubuntu":
        reason = {"browser": "Playwright has left, right and middle", "vm": "the computer server has no side buttons"}
        with pytest.raises(ActionNotSupported) as caught:
            await env.mouse_down(*PAD, button="back")
        assert str(caught.value) == f"the {env.kind} environment cannot hold down the back mouse button ({reason[name_of(env)]})"
        return
    await env.mouse_down(*PAD, button="back")
    await env.mouse_up(None, None, button="back")
    down, = await of(events, "mousedown", 1, "the back button down")
    up, = await of(events, "mouseup", 1, "the back button up")
    assert (down["button"], up["button"]) == (3, 3)


@module_loop
async def test_cursor_position_answers_the_last_point_in_model_space(env):
    for point in ((321, 234), (0, 0), (1023, 767)):
        await env.move(*point)
        assert await env.execute(parse_action({"type": "cursor_position"})) == ActionOutput(point=point)


# --- keys ----------------------------------------------------------------------------------------


@module_loop
async def test_keys_held_down_stay_down_and_come_up_in_reverse_order(env, events):
    await env.key_down(["shift"])
    await env.click(*PAD)
    await env.key_up(["SHIFT"])
    await env.click(*PAD)
    clicks = await of(events, "mousedown", 2, "two clicks")
    assert [c["shift"] for c in clicks] == [True, False]
    events.clear()
    await env.key_down(["shift", "ctrl"])
    await env.key_up(["shift", "ctrl"])
    ups = await of(events, "keyup", 2, "two keys up")
    assert [u["key"] for u in ups] == ["Control", "Shift"]


@module_loop
async def test_hold_key_holds_for_its_duration(env, events):
    await env.execute(parse_action({"type": "hold_key", "keys": ["shift"], "ms": 600}))
    down, = await of(events, "keydown", 1, "shift down")
    up, = await of(events, "keyup", 1, "shift up")
    assert down["key"] == up["key"] == "Shift"
    assert 560 <= up["t"] - down["t"] <= 1000, up["t"] - down["t"]


@module_loop
async def test_a_cancelled_hold_key_still_releases(env, events):
    holding = asyncio.ensure_future(env.hold_key(["shift"], 10_000))
    await of(events, "keydown", 1, "shift down")
    holding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holding
    up, = await of(events, "keyup", 1, "shift released on cancel")
    assert up["key"] == "Shift"


@module_loop
async def test_unknown_keys_to_hold_are_model_errors_before_anything_goes_down(env, events):
    with pytest.raises(ModelOutputError, match="NOPE"):
        await env.key_down(["shift", "NOPE"])
    await env.click(*PAD)
    assert not (await of(events, "mousedown", 1, "a click"))[0]["shift"]


# --- the screen ----------------------------------------------------------------------------------


@module_loop
async def test_zoom_is_the_region_at_the_screens_own_resolution(env):
    # Half white, half the magenta box (which starts at x=600).
    output = await env.execute(parse_action({"type": "zoom", "x0": 500, "y0": 400, "x1": 700, "y1": 500}))
    image = Image.open(io.BytesIO(output.image))
    scale = SCALE[name_of(env)]
    assert image.format == "PNG" and image.size == (200 * scale, 100 * scale)
    rgb = image.convert("RGB")
    assert vmserver.near(rgb.getpixel((50 * scale, 50 * scale)), WHITE)
    assert vmserver.near(rgb.getpixel((150 * scale, 50 * scale)), BOX_MAGENTA)
    edge = next(x for x in range(image.width) if vmserver.near(rgb.getpixel((x, 50 * scale)), BOX_MAGENTA))
    assert abs(edge - 100 * scale) <= 1, edge


def test_zoom_of_a_screen_smaller_than_the_model_is_scaled_up_keeping_its_shape():
    screen = Image.new("RGB", (512, 384), WHITE)
    screen.paste(BOX_MAGENTA, (300, 200, 400, 250))  # model (600, 400)–(800, 500) at half size
    image = Image.open(io.BytesIO(zoom_png(screen, MODEL, 500, 400, 700, 500)))
    assert image.size == (200, 100)
    assert vmserver.near(image.getpixel((50, 50)), WHITE)
    assert vmserver.near(image.getpixel((150, 50)), BOX_MAGENTA)


@module_loop
async def test_one_wheel_notch_scrolls_what_wheel_notch_px_says(env, events):
    notch = env.wheel_notch_px()
    assert notch == {"browser": 100, "ubuntu": 120, "vm": 120}[name_of(env)]
    await env.scroll(*PANE, scroll_x=0, scroll_y=round(notch))
    scrolled = await events.await_for(lambda ev: last(ev, "scroll"), what="the pane scrolled")
    assert scrolled["top"] == notch  # CSS pixels are model pixels here
    events.clear()
    await env.scroll(*PANE, scroll_x=0, scroll_y=-5000)
    await events.await_for(lambda ev: (s := last(ev, "scroll")) and s["top"] == 0, what="the pane back at the top")


# --- navigation ----------------------------------------------------------------------------------


@module_loop
@only("ubuntu", "vm")
async def test_desktops_say_precisely_that_they_cannot_navigate(env):
    for raw, what in (({"type": "navigate", "url": "https://example.com"}, "open a URL"),
                      ({"type": "back"}, "go back"), ({"type": "forward"}, "go forward")):
        with pytest.raises(ActionNotSupported) as caught:
            await env.execute(parse_action(raw))
        assert str(caught.value) == f"the ubuntu environment cannot {what} (only the browser environment can)"


@module_loop
@only("browser")
async def test_navigate_back_and_forward_in_the_browser(env, page):
    base = page.url.rsplit("/", 1)[0]
    start = vocabulary_url(page)
    with pytest.raises(ActionNotSupported, match="^the browser environment cannot go forward: this tab has no later page"):
        await env.forward()
    await env.execute(parse_action({"type": "navigate", "url": f"{base}/screen.html"}))
    assert await env.page.evaluate("location.href") == f"{base}/screen.html"
    await env.execute(parse_action({"type": "back"}))
    assert await env.page.evaluate("[location.href, document.readyState]") == [start, "complete"]
    await env.execute(parse_action({"type": "forward"}))
    assert await env.page.evaluate("[location.href, document.readyState]") == [f"{base}/screen.html", "complete"]
    with pytest.raises(EnvironmentError_, match="navigate refused file:///etc/passwd: the file: scheme"):
        await env.navigate("file:///etc/passwd")
    await env.navigate(start)


@module_loop
@only("browser")
async def test_navigate_keeps_to_the_domain_policy_and_the_pointer_starts_at_the_corner(env):
    assert POINTER_AT_START["browser"] == (0, 0)  # where Playwright's mouse starts
    with pytest.raises(EnvironmentError_, match=r"^http://blocked\.test/ is blocked by the domain policy"):
        await env.navigate("http://blocked.test/")
    with pytest.raises(EnvironmentError_, match=r"^http://blocked\.test/ is blocked by the domain policy"):
        await env.goto("http://blocked.test/")  # the same words as the goto function's


# --- what a run leaves held ------------------------------------------------------------------------


@module_loop
@only("ubuntu", "vm")  # the browser closes with its run: nothing outlives it
async def test_stop_releases_what_was_left_held(env, events):
    """A run that ends with a button and a key down leaves neither held on the desktop."""
    if isinstance(env, RemoteEnvironment):
        other: Any = RemoteEnvironment(env.vm_url, kind="ubuntu", display=MODEL)
    else:
        other = XDisplayEnvironment(MODEL, x_display=env.x_display)
    async with other:
        await other.mouse_down(*PAD)
        await other.key_down(["shift"])
        await of(events, "keydown", 1, "shift down")
    up, = await of(events, "mouseup", 1, "the button released by stop()")
    assert (up["button"], up["buttons"]) == (0, 0)
    assert (await of(events, "keyup", 1, "shift released by stop()"))[0]["key"] == "Shift"
