"""The bundled demo web app, driven the way scenarios drive it: real headless Chromium, the real
demo server on loopback, and mouse and keyboard input at the pixel centres published in
demo_app/coords.json. Assertions read window.demoState and the visible text."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from cua.errors import EnvError
from cua.testing.demo_server import DemoServer, default_demo_root, serve_demo

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEMO_ROOT = default_demo_root()
COORDS: dict[str, Any] = json.loads((DEMO_ROOT / "coords.json").read_text())
VIEWPORT = {"width": 1024, "height": 768}
PAGE_PATHS = [
    "index.html",
    "login.html",
    "dashboard.html",
    "form.html",
    "todo.html",
    "list.html",
    "board.html",
    "menu.html",
    "links.html",
    "newtab.html",
    "chain.html?step=2",
]


def _load_measure_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_measure_coords", DEMO_ROOT / "measure_coords.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


MEASURE = _load_measure_module()


def at(page_key: str, control: str, shifted: bool = False) -> tuple[int, int]:
    entry = COORDS["pages"][page_key]["controls"][control]
    x, y = entry["at_shifted"] if shifted else entry["at"]
    return x, y


def page_url(server: DemoServer, path: str, shifted: bool) -> str:
    if shifted:
        path += ("&" if "?" in path else "?") + "shift=1"
    return server.url(path)


async def demo_state(page: Page) -> dict[str, Any]:
    return await page.evaluate("() => window.demoState")


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with serve_demo() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    args = MEASURE.CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=MEASURE.CHROMIUM, args=args)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, server: DemoServer) -> AsyncIterator[Page]:
    """A fresh context per test; fails the test on any script error or request leaving the server."""
    context = await browser.new_context(viewport=VIEWPORT)
    problems: list[str] = []

    def check_request(request: Any) -> None:
        if not (request.url.startswith(server.base_url) or request.url.startswith("data:")):
            problems.append(f"request to {request.url}")

    context.on("request", check_request)
    context.on("weberror", lambda error: problems.append(f"script error: {error.error}"))
    opened = await context.new_page()
    yield opened
    await context.close()
    assert problems == []


# --- the server -------------------------------------------------------------------------------


async def test_server_serves_the_app_with_content_types(server: DemoServer) -> None:
    expected = {
        "": "text/html; charset=utf-8",
        "login.html": "text/html; charset=utf-8",
        "common.css": "text/css; charset=utf-8",
        "common.js": "text/javascript; charset=utf-8",
        "coords.json": "application/json",
    }
    for path, content_type in expected.items():
        with urllib.request.urlopen(server.url(path)) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == content_type
            assert response.headers["Cache-Control"] == "no-store"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(server.url("nope.html"))
    assert missing.value.code == 404
    assert server.base_url == f"http://127.0.0.1:{server.port}"


async def test_server_takes_an_explicit_root_and_releases_its_port(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>mine</p>")
    with serve_demo(root=tmp_path) as mine:
        with urllib.request.urlopen(mine.url("/")) as response:
            assert response.read() == b"<p>mine</p>"
        port = mine.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_server_explains_a_missing_app_folder(tmp_path: Path) -> None:
    with pytest.raises(EnvError, match="has no index.html"):
        serve_demo(root=tmp_path / "nowhere")


# --- the layout contract ----------------------------------------------------------------------


async def test_coords_json_and_readme_table_match_the_live_layout(page: Page, server: DemoServer) -> None:
    measured = await MEASURE.measure(server.base_url, page)
    hint = "layout changed: run .venv/bin/python demo_app/measure_coords.py"
    assert measured == COORDS, hint
    readme = (DEMO_ROOT / "README.md").read_text()
    assert MEASURE.TABLE_START in readme
    assert MEASURE.with_table(readme, measured) == readme, hint


@pytest.mark.parametrize("shifted", [False, True])
async def test_every_page_fits_the_viewport_and_names_its_controls(
    page: Page, server: DemoServer, shifted: bool
) -> None:
    await page.goto(server.url("index.html"))
    await page.evaluate("sessionStorage.setItem('cua-demo-user', 'demo')")
    for path in PAGE_PATHS:
        await page.goto(page_url(server, path, shifted))
        state = await demo_state(page)
        assert state["shifted"] is shifted, path
        height = await page.evaluate("document.documentElement.scrollHeight")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1024 and height <= 768, f"{path} scrolls: {width}x{height}"
        unnamed = await page.evaluate(
            """() => [...document.querySelectorAll('a, button, input, select')]
                .filter(el => el.offsetParent !== null || el.getClientRects().length > 0)
                .filter(el => !(el.getAttribute('aria-label') || (el.labels && el.labels.length)
                                || el.textContent.trim()))
                .map(el => el.outerHTML)"""
        )
        assert unnamed == [], f"{path}: controls without an accessible name"


# --- login ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shifted", [False, True])
async def test_login_rejects_then_accepts(page: Page, server: DemoServer, shifted: bool) -> None:
    await page.goto(page_url(server, "login.html", shifted))
    await page.mouse.click(*at("login", "username", shifted))
    await page.keyboard.type("demo")
    await page.mouse.click(*at("login", "password", shifted))
    await page.keyboard.type("wrong")
    await page.mouse.click(*at("login", "sign_in", shifted))
    state = await demo_state(page)
    assert state["error"] == "Invalid username or password"
    assert state["attempts"] == 1 and state["signedIn"] is False
    assert await page.inner_text("#login-error") == "Invalid username or password"

    await page.mouse.click(*at("login", "password", shifted))
    await page.keyboard.press("Control+A")
    await page.keyboard.type("s3cret")
    await page.keyboard.press("Enter")
    await page.wait_for_function("() => window.demoState && window.demoState.page === 'dashboard'")
    state = await demo_state(page)
    assert state["user"] == "demo" and state["shifted"] is shifted
    assert await page.inner_text("#welcome") == "Welcome, demo"


async def test_dashboard_without_a_session_says_so(page: Page, server: DemoServer) -> None:
    await page.goto(server.url("dashboard.html"))
    assert (await demo_state(page))["user"] is None
    assert await page.inner_text("#welcome") == "You are not signed in."


# --- form -------------------------------------------------------------------------------------


async def test_form_shows_errors_next_to_fields_then_sends(page: Page, server: DemoServer) -> None:
    await page.goto(server.url("form.html"))
    await page.mouse.click(*at("form", "submit"))
    state = await demo_state(page)
    assert set(state["errors"]) == {"name", "email", "age", "agree"}
    assert state["submitted"] is None
    assert await page.inner_text("#agree-error") == "You must agree to the terms"

    await page.mouse.click(*at("form", "name"))
    await page.keyboard.type("Ada")
    await page.mouse.click(*at("form", "email"))
    await page.keyboard.type("ada@invalid")
    await page.mouse.click(*at("form", "age"))
    await page.keyboard.type("150")
    await page.mouse.click(*at("form", "submit"))
    state = await demo_state(page)
    assert set(state["errors"]) == {"email", "age", "agree"}
    assert await page.inner_text("#name-error") == ""
    assert await page.inner_text("#age-error") == "Age must be a number from 18 to 120"

    await page.mouse.click(*at("form", "email"))
    await page.keyboard.type(".org")
    await page.mouse.click(*at("form", "age"))
    await page.keyboard.press("Control+A")
    await page.keyboard.type("36")
    await page.mouse.click(*at("form", "topic_support"))
    await page.mouse.click(*at("form", "agree"))
    assert (await demo_state(page))["values"] == {
        "name": "Ada",
        "email": "ada@invalid.org",
        "age": "36",
        "topic": "support",
        "agree": True,
    }
    await page.mouse.click(*at("form", "submit"))
    state = await demo_state(page)
    assert state["errors"] == {} and state["attempts"] == 3
    assert state["submitted"] == {
        "name": "Ada",
        "email": "ada@invalid.org",
        "age": 36,
        "topic": "support",
        "agree": True,
    }
    assert await page.inner_text("#thanks") == "Thanks, Ada! Your message was sent."
    assert await page.inner_text('[data-testid="summary-topic"]') == "Support"


async def test_form_works_when_shifted(page: Page, server: DemoServer) -> None:
    await page.goto(page_url(server, "form.html", shifted=True))
    for field, text in (("name", "Lin"), ("email", "lin@example.com"), ("age", "18")):
        await page.mouse.click(*at("form", field, shifted=True))
        await page.keyboard.type(text)
    await page.mouse.click(*at("form", "topic_feedback", shifted=True))
    await page.mouse.click(*at("form", "agree", shifted=True))
    await page.mouse.click(*at("form", "submit", shifted=True))
    state = await demo_state(page)
    assert state["submitted"] == {
        "name": "Lin",
        "email": "lin@example.com",
        "age": 18,
        "topic": "feedback",
        "agree": True,
    }


# --- to-do ------------------------------------------------------------------------------------


async def test_todo_add_tick_and_delete(page: Page, server: DemoServer) -> None:
    await page.goto(server.url("todo.html"))
    assert await page.inner_text("#todo-count") == "2 items left"
    await page.mouse.click(*at("todo", "new_todo"))
    await page.keyboard.type("Water plants")
    await page.keyboard.press("Enter")
    await page.keyboard.type("Pay rent")
    await page.mouse.click(*at("todo", "add"))
    await page.mouse.click(*at("todo", "add"))  # an empty input adds nothing
    state = await demo_state(page)
    texts = [item["text"] for item in state["items"]]
    assert texts == ["Buy milk", "Call the bank", "Water plants", "Pay rent"]
    assert state["left"] == 4

    await page.mouse.click(*at("todo", "first_checkbox"))
    state = await demo_state(page)
    assert state["items"][0] == {"id": 1, "text": "Buy milk", "done": True}
    assert state["left"] == 3
    assert await page.inner_text("#todo-count") == "3 items left"
    decoration = await page.eval_on_selector("#todo-1 .text", "el => getComputedStyle(el).textDecorationLine")
    assert decoration == "line-through"

    await page.mouse.click(*at("todo", "second_delete"))
    state = await demo_state(page)
    assert [item["text"] for item in state["items"]] == ["Buy milk", "Water plants", "Pay rent"]
    assert state["left"] == 2


# --- long list --------------------------------------------------------------------------------


@pytest.mark.parametrize("shifted", [False, True])
async def test_list_scrolls_the_pane_to_row_150(page: Page, server: DemoServer, shifted: bool) -> None:
    geometry = COORDS["pages"]["list"]["geometry"]
    pane = COORDS["pages"]["list"]["controls"]["pane"]
    pane_x, pane_y = at("list", "pane", shifted)
    pane_left = pane_x - pane["size"][0] // 2
    pane_top = pane_y - pane["size"][1] // 2
    await page.goto(page_url(server, "list.html", shifted))

    await page.mouse.move(pane_x, pane_y)
    target = geometry["row_150_offset_top"] - 150
    await page.mouse.wheel(0, target)
    await page.wait_for_function(f"() => window.demoState.scrollTop === {target}")
    assert await page.evaluate("window.scrollY") == 0

    scroll_top = (await demo_state(page))["scrollTop"]
    select_x = pane_left + geometry["select_x_from_pane_left"]
    row_top = pane_top + geometry["pane_border"] + geometry["row_150_offset_top"] - scroll_top
    select_y = row_top + geometry["row_height"] // 2
    await page.mouse.click(select_x, select_y)
    assert (await demo_state(page))["selectedRow"] == 150
    assert await page.inner_text("#list-status") == "Selected row 150"


async def test_list_wheel_outside_the_pane_scrolls_nothing(page: Page, server: DemoServer) -> None:
    await page.goto(server.url("list.html"))
    await page.mouse.move(800, 400)
    await page.mouse.wheel(0, 600)
    await page.mouse.move(*at("list", "pane"))
    await page.mouse.wheel(0, 64)
    await page.wait_for_function("() => window.demoState.scrollTop === 64")
    assert await page.evaluate("window.scrollY") == 0


# --- board ------------------------------------------------------------------------------------


async def drag(page: Page, start: tuple[int, int], end: tuple[int, int]) -> None:
    await page.mouse.move(*start)
    await page.mouse.down()
    await page.mouse.move(*end, steps=8)
    await page.mouse.up()


@pytest.mark.parametrize("shifted", [False, True])
async def test_board_drag_moves_a_card(page: Page, server: DemoServer, shifted: bool) -> None:
    await page.goto(page_url(server, "board.html", shifted))
    await drag(page, at("board", "card_write_spec", shifted), at("board", "column_done", shifted))
    state = await demo_state(page)
    assert state["columns"] == {
        "todo": ["Design mockups", "Fix login bug"],
        "doing": ["Review PR"],
        "done": ["Set up CI", "Write spec"],
    }
    assert state["lastMove"] == {"card": "Write spec", "from": "todo", "to": "done"}
    assert state["moves"] == 1 and state["dragging"] is None
    assert await page.inner_text("#count-done") == "2"
    assert await page.inner_text("#count-todo") == "2"

    await drag(page, at("board", "card_review_pr", shifted), at("board", "column_todo", shifted))
    assert (await demo_state(page))["columns"]["todo"] == ["Design mockups", "Fix login bug", "Review PR"]


async def test_board_ignores_clicks_and_drops_outside_columns(page: Page, server: DemoServer) -> None:
    await page.goto(server.url("board.html"))
    before = (await demo_state(page))["columns"]
    await page.mouse.click(*at("board", "card_review_pr"))
    await drag(page, at("board", "card_review_pr"), (512, 700))
    await drag(page, at("board", "card_review_pr"), at("board", "column_doing"))
    state = await demo_state(page)
    assert state["columns"] == before and state["moves"] == 0
    transform = await page.eval_on_selector("#card-review-pr", "el => el.style.transform")
    assert transform == ""


# --- context menu -----------------------------------------------------------------------------


@pytest.mark.parametrize("shifted", [False, True])
async def test_menu_delete_removes_the_file(page: Page, server: DemoServer, shifted: bool) -> None:
    await page.goto(page_url(server, "menu.html", shifted))
    report = at("menu", "file_report", shifted)
    await page.mouse.click(*report, button="right")
    state = await demo_state(page)
    assert state["menu"] == {"open": True, "file": "report.pdf", "x": report[0], "y": report[1]}
    await page.mouse.click(*at("menu", "menu_delete", shifted))
    state = await demo_state(page)
    assert state["files"] == ["notes.txt", "photo.png", "budget.xlsx"]
    assert state["menu"]["open"] is False
    assert state["lastAction"] == {"action": "delete", "file": "report.pdf"}
    assert await page.inner_text("#menu-status") == "Deleted report.pdf"


async def test_menu_closes_on_escape_and_renames(page: Page, server: DemoServer) -> None:
    await page.goto(server.url("menu.html"))
    await page.mouse.click(*at("menu", "file_report"), button="right")
    await page.keyboard.press("Escape")
    assert (await demo_state(page))["menu"]["open"] is False
    assert await page.is_hidden("#context-menu")

    await page.mouse.click(*at("menu", "file_report"), button="right")
    await page.mouse.click(*at("menu", "menu_rename"))
    assert (await demo_state(page))["renaming"] == "report.pdf"
    await page.keyboard.type("summary.pdf")
    await page.keyboard.press("Enter")
    state = await demo_state(page)
    assert state["files"][0] == "summary.pdf" and state["renaming"] is None
    assert await page.inner_text("#menu-status") == "Renamed report.pdf to summary.pdf"

    await page.mouse.click(*at("menu", "file_notes"), button="right")
    notes = at("menu", "file_notes")
    report = at("menu", "file_report")
    properties = at("menu", "menu_properties")
    # The menu opens at the pointer, so its items keep their offset from the click point.
    await page.mouse.click(properties[0] - report[0] + notes[0], properties[1] - report[1] + notes[1])
    assert (await demo_state(page))["properties"] == "notes.txt"
    assert await page.inner_text("#prop-type") == "Plain text"


# --- links, new tab, shortcut, history --------------------------------------------------------


@pytest.mark.parametrize("shifted", [False, True])
async def test_links_palette_opens_on_ctrl_k_and_closes_on_escape(
    page: Page, server: DemoServer, shifted: bool
) -> None:
    await page.goto(page_url(server, "links.html", shifted))
    await page.keyboard.press("Control+K")
    assert (await demo_state(page))["paletteOpen"] is True
    assert await page.is_visible("text=Command palette")
    await page.keyboard.press("Escape")
    state = await demo_state(page)
    assert state["paletteOpen"] is False and state["paletteOpenCount"] == 1

    await page.keyboard.press("Control+K")
    await page.mouse.click(*at("links", "command_say_hello", shifted))
    state = await demo_state(page)
    assert state["lastCommand"] == "say-hello" and state["paletteOpen"] is False
    await page.keyboard.press("Control+K")
    await page.keyboard.type("board")
    await page.keyboard.press("Enter")
    await page.wait_for_function("() => window.demoState && window.demoState.page === 'board'")
    assert (await demo_state(page))["shifted"] is shifted


@pytest.mark.parametrize("shifted", [False, True])
async def test_links_new_tab_reports_back(page: Page, server: DemoServer, shifted: bool) -> None:
    await page.goto(page_url(server, "links.html", shifted))
    async with page.context.expect_page() as opened:
        await page.mouse.click(*at("links", "open_new_tab", shifted))
    tab = await opened.value
    await tab.wait_for_load_state()
    assert tab.url == page_url(server, "newtab.html", shifted)
    assert await tab.inner_text("#newtab-message") == "You are in the new tab"
    await tab.mouse.click(*at("newtab", "confirm", shifted))
    assert (await demo_state(tab))["result"] == "confirmed"
    await page.wait_for_function("() => window.demoState.newTabResult === 'confirmed'")


async def test_links_chain_goes_back_and_forward(page: Page, server: DemoServer) -> None:
    await page.goto(server.url("links.html"))
    await page.mouse.click(*at("links", "start_chain"))
    await page.wait_for_function("() => window.demoState && window.demoState.step === 1")
    await page.mouse.click(*at("chain", "next"))
    await page.wait_for_function("() => window.demoState && window.demoState.step === 2")
    await page.mouse.click(*at("chain", "back"))
    await page.wait_for_function("() => window.demoState && window.demoState.step === 1")
    await page.go_forward()
    assert (await demo_state(page))["step"] == 2
    await page.go_back()
    await page.go_back()
    assert (await demo_state(page))["page"] == "links"
