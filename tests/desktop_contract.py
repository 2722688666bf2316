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
from PIL import Image

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


# The checks with nothing to set per environment, each ``check(env, events)``: a test module runs
# them all in one test parametrized with this, reported as ``test_desktop_contract[double_click]``
# and so on. The checks that differ per environment have a test of their own in each module.
every_plain_check = pytest.mark.parametrize(
    "check", [double_click, modifiers_held_on_click_and_released_after, unknown_key_is_a_model_error,
              scroll_moves_the_inner_pane_not_the_page, drag_passes_through_every_point],
    ids=lambda check: check.__name__)
