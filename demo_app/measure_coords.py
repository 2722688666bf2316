"""Measure the pixel centres of the demo app's controls and write coords.json.

Scenario authors click by coordinates, so the numbers must come from the real layout in the real
browser, not from reading the CSS. Run after any layout change:

    .venv/bin/python demo_app/measure_coords.py

It rewrites coords.json and the table in README.md. tests/test_demo_app.py re-measures and fails
when either is out of date.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

HERE = Path(__file__).resolve().parent
COORDS_FILE = HERE / "coords.json"
README_FILE = HERE / "README.md"
TABLE_START = "<!-- coords table: written by measure_coords.py -->"
TABLE_END = "<!-- end of coords table -->"
VIEWPORT = {"width": 1024, "height": 768}
SHIFT = {"query": "shift=1", "dx": 40, "dy": 60}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class State:
    """Controls that only exist after an action, e.g. the items of an open context menu."""

    when: str
    controls: dict[str, str]


@dataclass(frozen=True)
class PageSpec:
    path: str
    controls: dict[str, str]
    states: list[State] = field(default_factory=list)
    signed_in: bool = False


NAV = {
    f"nav_{name}": f'[data-testid="nav-{name}"]'
    for name in ("index", "login", "form", "todo", "list", "board", "menu", "links")
}

PAGES: dict[str, PageSpec] = {
    "nav": PageSpec("index.html", NAV),
    "index": PageSpec(
        "index.html",
        {
            f"link_{name}": f"#link-{name}"
            for name in ("login", "form", "todo", "list", "board", "menu", "links")
        },
    ),
    "login": PageSpec(
        "login.html",
        {"username": "#username", "password": "#password", "sign_in": "#sign-in", "error": "#login-error"},
    ),
    "dashboard": PageSpec("dashboard.html", {"welcome": "#welcome", "sign_out": "#sign-out"}, signed_in=True),
    "form": PageSpec(
        "form.html",
        {
            "name": "#name",
            "email": "#email",
            "age": "#age",
            "topic_general": '#topic option[value="general"]',
            "topic_support": '#topic option[value="support"]',
            "topic_sales": '#topic option[value="sales"]',
            "topic_feedback": '#topic option[value="feedback"]',
            "agree": "#agree",
            "submit": "#submit",
        },
    ),
    "todo": PageSpec(
        "todo.html",
        {
            "new_todo": "#new-todo",
            "add": "#add-todo",
            "first_checkbox": '[data-testid="todo-check-1"]',
            "first_delete": '[data-testid="todo-delete-1"]',
            "second_checkbox": '[data-testid="todo-check-2"]',
            "second_delete": '[data-testid="todo-delete-2"]',
            "count": "#todo-count",
        },
    ),
    "list": PageSpec("list.html", {"pane": "#list-pane", "status": "#list-status"}),
    "board": PageSpec(
        "board.html",
        {
            "card_write_spec": "#card-write-spec",
            "card_design_mockups": "#card-design-mockups",
            "card_fix_login_bug": "#card-fix-login-bug",
            "card_review_pr": "#card-review-pr",
            "card_set_up_ci": "#card-set-up-ci",
            "column_todo": "#column-todo",
            "column_doing": "#column-doing",
            "column_done": "#column-done",
        },
    ),
    "menu": PageSpec(
        "menu.html",
        {
            "file_report": "#file-report",
            "file_notes": "#file-notes",
            "file_photo": "#file-photo",
            "file_budget": "#file-budget",
        },
        states=[
            State(
                "right-click at file_report",
                {
                    "menu_rename": "#menu-rename",
                    "menu_delete": "#menu-delete",
                    "menu_properties": "#menu-properties",
                },
            )
        ],
    ),
    "links": PageSpec(
        "links.html",
        {"open_new_tab": "#open-new-tab", "start_chain": "#start-chain"},
        states=[
            State(
                "press Control+K",
                {
                    "palette_input": "#palette-input",
                    "command_say_hello": "#command-say-hello",
                    "command_open_form": "#command-open-form",
                    "command_open_board": "#command-open-board",
                },
            )
        ],
    ),
    "newtab": PageSpec("newtab.html", {"confirm": "#confirm"}),
    "chain": PageSpec("chain.html?step=1", {"back": "#chain-back", "next": "#chain-next"}),
}


async def _box(page: Page, selector: str) -> dict[str, int]:
    box = await page.locator(selector).bounding_box()
    if box is None:
        raise RuntimeError(f"{selector} is not visible on {page.url}")
    return {
        "x": round(box["x"] + box["width"] / 2),
        "y": round(box["y"] + box["height"] / 2),
        "width": round(box["width"]),
        "height": round(box["height"]),
    }


async def _enter_state(page: Page, state: State, found: dict[str, dict[str, int]]) -> None:
    if state.when == "right-click at file_report":
        point = found["file_report"]
        await page.mouse.click(point["x"], point["y"], button="right")
    elif state.when == "press Control+K":
        await page.keyboard.press("Control+K")
    else:
        raise ValueError(f"no action for state {state.when!r}")


async def _measure_page(
    page: Page, base_url: str, spec: PageSpec, shifted: bool
) -> dict[str, dict[str, Any]]:
    path = spec.path
    if shifted:
        path += ("&" if "?" in path else "?") + SHIFT["query"]
    if spec.signed_in:
        await page.goto(f"{base_url}/index.html")
        await page.evaluate("sessionStorage.setItem('cua-demo-user', 'demo')")
    await page.goto(f"{base_url}/{path}")
    found = {name: await _box(page, selector) for name, selector in spec.controls.items()}
    for state in spec.states:
        await _enter_state(page, state, found)
        for name, selector in state.controls.items():
            found[name] = {**await _box(page, selector), "when": state.when}
    return found


async def measure(base_url: str, page: Page) -> dict[str, Any]:
    """The whole coords.json document, measured on ``page`` (a 1024x768 viewport)."""
    pages: dict[str, Any] = {}
    for key, spec in PAGES.items():
        plain = await _measure_page(page, base_url, spec, shifted=False)
        moved = await _measure_page(page, base_url, spec, shifted=True)
        controls = {}
        for name, box in plain.items():
            selector = spec.controls.get(name) or next(
                s.controls[name] for s in spec.states if name in s.controls
            )
            entry: dict[str, Any] = {"selector": selector}
            if "when" in box:
                entry["when"] = box["when"]
            entry["size"] = [box["width"], box["height"]]
            entry["at"] = [box["x"], box["y"]]
            entry["at_shifted"] = [moved[name]["x"], moved[name]["y"]]
            controls[name] = entry
        pages[key] = {"path": "/" + spec.path, "controls": controls}
    pages["list"]["geometry"] = await _list_geometry(page, base_url)
    return {
        "viewport": [VIEWPORT["width"], VIEWPORT["height"]],
        "shift": SHIFT,
        "generated_by": "demo_app/measure_coords.py",
        "pages": pages,
    }


async def _list_geometry(page: Page, base_url: str) -> dict[str, int]:
    """Where row 150's Select button ends up for a given scrollTop: its centre is at
    x = pane left + select_x_from_pane_left and
    y = pane top + pane_border + row_150_offset_top - scrollTop + row_height / 2."""
    await page.goto(f"{base_url}/list.html")
    return await page.evaluate(
        """() => {
            const pane = document.getElementById('list-pane');
            const row = document.getElementById('row-150');
            const select = document.getElementById('select-row-150').getBoundingClientRect();
            const paneBox = pane.getBoundingClientRect();
            return {
                row_height: row.offsetHeight,
                row_count: document.querySelectorAll('#rows li').length,
                pane_client_height: pane.clientHeight,
                row_150_offset_top: row.offsetTop,
                max_scroll_top: pane.scrollHeight - pane.clientHeight,
                pane_border: pane.clientTop,
                select_x_from_pane_left: Math.round(select.left + select.width / 2 - paneBox.left),
            };
        }"""
    )


def render(document: dict[str, Any]) -> str:
    """coords.json text: one control per line so diffs stay readable."""
    lines = ["{"]
    lines.append(f'  "viewport": {json.dumps(document["viewport"])},')
    lines.append(f'  "shift": {json.dumps(document["shift"])},')
    lines.append(f'  "generated_by": {json.dumps(document["generated_by"])},')
    lines.append('  "pages": {')
    page_items = list(document["pages"].items())
    for index, (key, page) in enumerate(page_items):
        lines.append(f"    {json.dumps(key)}: {{")
        lines.append(f'      "path": {json.dumps(page["path"])},')
        if "geometry" in page:
            lines.append(f'      "geometry": {json.dumps(page["geometry"])},')
        lines.append('      "controls": {')
        controls = list(page["controls"].items())
        for c_index, (name, entry) in enumerate(controls):
            comma = "," if c_index < len(controls) - 1 else ""
            lines.append(f"        {json.dumps(name)}: {json.dumps(entry)}{comma}")
        lines.append("      }")
        lines.append("    }" + ("," if index < len(page_items) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def coords_table(document: dict[str, Any]) -> str:
    """The Markdown table of control centres that README.md carries between its markers."""
    rows = ["| page | control | centre | with ?shift=1 | size | only after |", "|---|---|---|---|---|---|"]
    for key, page in document["pages"].items():
        for name, entry in page["controls"].items():
            x, y = entry["at"]
            sx, sy = entry["at_shifted"]
            w, h = entry["size"]
            rows.append(f"| {key} | `{name}` | {x}, {y} | {sx}, {sy} | {w}×{h} | {entry.get('when', '')} |")
    return "\n".join([TABLE_START, *rows, TABLE_END])


def with_table(readme: str, document: dict[str, Any]) -> str:
    """``readme`` with the text between the table markers replaced by a fresh table."""
    head, _, rest = readme.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    return head + coords_table(document) + tail


async def _main() -> None:
    sys.path.insert(0, str(HERE.parent))  # the repository root, for cua
    from cua.testing.demo_server import serve_demo

    args = CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with serve_demo(root=HERE) as server:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
            page = await browser.new_page(viewport=VIEWPORT)
            document = await measure(server.base_url, page)
            await browser.close()
    COORDS_FILE.write_text(render(document))
    README_FILE.write_text(with_table(README_FILE.read_text(), document))
    print(f"wrote {COORDS_FILE} and the table in {README_FILE}")


if __name__ == "__main__":
    asyncio.run(_main())
