"""The desktop contract both desktop environments keep, as plain async checks.

tests/test_remote_env.py (RemoteEnvironment against the real cua computer server) and
tests/test_xvfb_env.py (XDisplayEnvironment on its own Xvfb) drive the same page,
tests/pages_desktop/index.html, at the model's 1024x768, and assert what the page reports through
``vmserver.PageServer``. Each check takes the environment and that server (the ``events`` fixture);
what differs between the two environments is a parameter, named by the test that passes it.
"""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import pytest
from PIL import Image, ImageChops

import vmserver
from vmserver import last

from cua.actions import Size
from cua.errors import ModelOutputError

MODEL = Size(1024, 768)
# Model coordinates of the page's targets: a blue pad to click, a text field, a scrollable pane.
PAD, FIELD, PANE = (100, 100), (100, 220), (500, 120)


@pytest.fixture(scope="module")
def page():
    server = vmserver.PageServer()
    yield server
    server.close()


@pytest.fixture
def events(page):
    page.clear()
    return page


async def screenshot_is_a_model_size_png(env: Any) -> None:
    image = Image.open(io.BytesIO(await env.screenshot()))
    assert image.format == "PNG" and image.size == (MODEL.width, MODEL.height)
    assert vmserver.near(image.convert("RGB").getpixel(PAD), vmserver.PAD_BLUE)


async def buttons_land_at_the_pad(env: Any, events: vmserver.PageServer, buttons: Mapping[str, int]) -> None:
    """Click the pad with each of ``buttons`` (cua's name → the DOM's button number), in order."""
    for button in buttons:
        await env.click(*PAD, button=button)
    downs = events.wait_for(
        lambda ev: (d := [e for e in ev if e["type"] == "mousedown"]) and len(d) == len(buttons) and d,
        what=f"{len(buttons)} mousedowns")
    assert [d["button"] for d in downs] == list(buttons.values())  # DOM numbering
    assert all((d["x"], d["y"]) == PAD for d in downs), downs


async def double_click(env: Any, events: vmserver.PageServer) -> None:
    await env.double_click(150, 120)
    dbl = events.wait_for(lambda ev: last(ev, "dblclick"), what="dblclick")
    assert (dbl["x"], dbl["y"]) == (150, 120)


async def modifiers_held_on_click_and_released_after(env: Any, events: vmserver.PageServer) -> None:
    await env.click(*PAD, keys=["SHIFT"])
    await env.click(*PAD, keys=["CTRL", "alt"])
    await env.click(*PAD)
    clicks = events.wait_for(lambda ev: len(c := [e for e in ev if e["type"] == "click"]) == 3 and c,
                             what="three clicks")
    assert [(c["shift"], c["ctrl"], c["alt"]) for c in clicks] == [
        (True, False, False), (False, True, True), (False, False, False)]


async def type_and_chords(env: Any, events: vmserver.PageServer, *, typed: str, replacement: str,
                          keys: Sequence[str], final: str) -> None:
    """Type ``typed`` into the field, select all and type ``replacement`` over it, then press
    Backspace and each of ``keys`` alone: the field then holds ``final``."""
    await env.click(*FIELD)
    await env.keypress(["CTRL", "A"])
    await env.type(typed)
    events.wait_for(lambda ev: (i := last(ev, "input")) and i["value"] == typed, what="typed text")
    await env.keypress(["ctrl", "a"])  # select all, then replace
    await env.type(replacement)
    events.wait_for(lambda ev: (i := last(ev, "input")) and i["value"] == replacement, what="replaced text")
    await env.keypress(["BACKSPACE"])
    for key in keys:
        await env.keypress([key])
    events.wait_for(lambda ev: (i := last(ev, "input")) and i["value"] == final, what="keys")
    select_all = [e for e in events.events("keydown") if e["key"] == "a" and e["ctrl"]]
    assert select_all and not select_all[0]["shift"], "Ctrl+A is a chord of Control and a"


async def unknown_key_is_a_model_error(env: Any, events: vmserver.PageServer) -> None:
    with pytest.raises(ModelOutputError, match="NOPE"):
        await env.keypress(["NOPE"])


async def scroll_moves_the_inner_pane_not_the_page(env: Any, events: vmserver.PageServer) -> None:
    await env.scroll(*PANE, scroll_x=0, scroll_y=300)
    down = events.wait_for(lambda ev: (s := last(ev, "scroll")) and s["top"] >= 250 and s,
                           what="pane scrolled down")
    assert down["windowY"] == 0
    await env.scroll(*PANE, scroll_x=200, scroll_y=0)
    events.wait_for(lambda ev: (s := last(ev, "scroll")) and s["left"] >= 150, what="pane scrolled right")
    await env.scroll(*PANE, scroll_x=0, scroll_y=-5000)
    events.wait_for(lambda ev: (s := last(ev, "scroll")) and s["top"] == 0, what="pane back at top")


async def drag_passes_through_every_point(env: Any, events: vmserver.PageServer) -> None:
    path = [(100, 350), (200, 400), (300, 380), (400, 450)]
    await env.drag(path, keys=["shift"])
    drag = events.wait_for(lambda ev: last(ev, "drag"), what="drag")
    points = [tuple(p) for p in drag["points"]]
    assert points[0] == path[0] and points[-1] == path[-1]
    for x, y in path[1:-1]:
        assert any(abs(px - x) <= 1 and abs(py - y) <= 1 for px, py in points), (x, y, points)
    assert drag["shift"]


# --- tests/pages_desktop/screen.html: a page that scrolls itself, a disc and a square --------------

WIDE = Size(1920, 1080)  # a screen of another shape than MODEL: the model sees FITTED
FITTED = Size(1024, 576)
DISC_RED, SQUARE_GREEN = (0xD0, 0x20, 0x20), (0x20, 0xA0, 0x40)
SQUARE_CSS_CENTRE = (720, 240)  # #square: 240 CSS px from (600, 120)
# A model point of WIDE inside the square and off its label, fitted or squashed into MODEL.
SQUARE_PAINTED = (420, 160)


def screen_page_url(page: vmserver.PageServer) -> str:
    return page.url.rsplit("/", 1)[0] + "/screen.html"


def _box(image: Image.Image, colour: tuple[int, int, int]) -> tuple[int, int, int, int, int]:
    """Bounding box (left, top, width, height) of ``colour`` in ``image``, and its pixel count."""
    rgb = image.convert("RGB")
    r, g, b = ImageChops.difference(rgb, Image.new("RGB", rgb.size, colour)).split()
    mask = ImageChops.lighter(ImageChops.lighter(r, g), b).point(lambda v: 255 if v < 24 else 0)
    box = mask.getbbox()
    assert box, f"no {colour} on the screen"
    left, top, right, bottom = box
    return left, top, right - left, bottom - top, mask.histogram()[255]


async def wide_screen_is_fitted_not_squashed(env: Any, events: vmserver.PageServer) -> None:
    """A WIDE screen under MODEL: the model sees FITTED, the disc is round, the square square,
    and a click at the square's centre in the screenshot lands at its centre on the page."""
    assert env.display == FITTED
    image = Image.open(io.BytesIO(await env.screenshot()))
    assert image.size == (FITTED.width, FITTED.height)
    for colour in (DISC_RED, SQUARE_GREEN):
        _, _, width, height, _ = _box(image, colour)
        assert abs(width - height) <= 2, f"{colour}: {width}x{height} on the screenshot, squashed"
        assert 124 <= width <= 132  # 240 CSS px at 1024/1920
    *_, disc_pixels = _box(image, DISC_RED)
    *_, square_pixels = _box(image, SQUARE_GREEN)
    assert 0.72 < disc_pixels / square_pixels < 0.85  # a disc: π/4 of its square
    left, top, width, height, _ = _box(image, SQUARE_GREEN)
    await env.click(left + width // 2, top + height // 2)
    click = await events.await_for(lambda ev: last(ev, "click"), what="the click on the square")
    assert click["target"] == "square"
    assert abs(click["x"] - SQUARE_CSS_CENTRE[0]) <= 3 and abs(click["y"] - SQUARE_CSS_CENTRE[1]) <= 3


async def scrolled_by(env: Any, events: vmserver.PageServer, pixels: int) -> int:
    """Scroll the page from its top by ``pixels`` model pixels; the page's window.scrollY after it,
    and the page back at its top."""
    events.clear()
    await env.scroll(400, 300, scroll_x=0, scroll_y=pixels)
    landed = (await events.await_for(lambda ev: last(ev, "scrolled"), what=f"a scroll of {pixels}"))["y"]
    events.clear()
    await env.scroll(400, 300, scroll_x=0, scroll_y=-4 * pixels)
    await events.await_for(lambda ev: (s := last(ev, "scrolled")) and s["y"] == 0, what="back at the top")
    return landed


async def scroll_lands_where_asked(env: Any, events: vmserver.PageServer, *, css_per_model: float,
                                   asked: Sequence[int] = (800, 300)) -> None:
    """Each scroll of ``asked`` model pixels moves the page by that much ±15 %."""
    for pixels in asked:
        moved = await scrolled_by(env, events, pixels) / css_per_model
        assert abs(moved - pixels) <= 0.15 * pixels, f"asked {pixels} px, the page moved {moved:.0f}"


# The checks with nothing to set per environment, each ``check(env, events)``: a test module runs
# them all in one test parametrized with this, reported as ``test_desktop_contract[double_click]``
# and so on. The checks that differ per environment have a test of their own in each module.
every_plain_check = pytest.mark.parametrize(
    "check", [double_click, modifiers_held_on_click_and_released_after, unknown_key_is_a_model_error,
              scroll_moves_the_inner_pane_not_the_page, drag_passes_through_every_point],
    ids=lambda check: check.__name__)
