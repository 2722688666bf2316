"""Anchors in a browser page: a description of the element an action hit, recorded with the
action, and finding that element again when a replay heals a step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..actions import ScreenTransform
from .browser_scripts import ANCHOR_JS, DESCRIBE_ELEMENT_JS

if TYPE_CHECKING:
    from playwright.async_api import Page

log = logging.getLogger(__name__)


async def element_at(page: Page, point: tuple[float, float], transform: ScreenTransform) -> dict[str, Any] | None:
    """The element at the screen ``point``: tag, role, name, text, id, test id, selector, model-space box."""
    from playwright.async_api import Error as PlaywrightError

    try:
        found = await page.evaluate(ANCHOR_JS, list(point))
    except PlaywrightError:
        return None  # the page is navigating: there is nothing stable to describe
    if found:
        left, top = transform.to_model(found["box"]["x"], found["box"]["y"])
        width, height = transform.to_model(found["box"]["width"], found["box"]["height"])
        found["box"] = {"x": left, "y": top, "width": width, "height": height}
    return found


async def locate(page: Page, anchor: dict[str, Any], transform: ScreenTransform) -> tuple[int, int] | None:
    """Find a recorded element again and return the model-space centre of it, or None.

    Tried in order: the selector (only if it still finds the recorded element: tag, test id
    and name agree), the test id, the id, role and name, the text. Only visible elements of
    the recorded kind count (a heading that shares a button's text is not that button); among
    several the one nearest the recorded box wins. One scrolled out of view is scrolled into it.
    """
    from playwright.async_api import Error as PlaywrightError

    element = anchor.get("element", anchor)
    name, text, role = element.get("name"), element.get("text"), element.get("role")
    strategies = []
    if element.get("selector"):
        strategies.append(("selector", page.locator(element["selector"])))
    if element.get("testid"):
        strategies.append(("testid", page.get_by_test_id(element["testid"])))
    if element.get("id"):
        strategies.append(("id", page.locator(f"[id={_css_string(element['id'])}]")))
    if role and name:
        strategies.append(("role", page.get_by_role(role, name=name, exact=len(name) < 80)))
    if text:
        strategies.append(("text", page.get_by_text(text, exact=len(text) < 80)))
    for kind, locator in strategies:
        try:
            point = await _best_match(locator, element, transform, check_same=kind == "selector")
        except PlaywrightError as exc:
            log.debug("locate by %s failed: %s", kind, exc)
            continue
        if point is not None:
            return point
    return None


async def _best_match(
    locator: Any, element: dict[str, Any], transform: ScreenTransform, *, check_same: bool
) -> tuple[int, int] | None:
    recorded = element.get("box") or {}
    rx = recorded.get("x", 0) + recorded.get("width", 0) / 2
    ry = recorded.get("y", 0) + recorded.get("height", 0) / 2
    best: tuple[float, Any] | None = None
    for i in range(min(await locator.count(), 10)):
        candidate = locator.nth(i)
        if not await candidate.is_visible():
            continue
        now = await candidate.evaluate(DESCRIBE_ELEMENT_JS)
        if not _same_kind(element, now) or (check_same and not _agrees(element, now)):
            continue
        box = await candidate.bounding_box()
        if not box:
            continue
        cx, cy = transform.to_model(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        distance = (cx - rx) ** 2 + (cy - ry) ** 2
        if best is None or distance < best[0]:
            best = (distance, candidate)
    if best is None:
        return None
    target = best[1]
    await target.scroll_into_view_if_needed(timeout=2_000)
    box = await target.bounding_box()
    if not box:
        return None
    x, y = transform.to_model(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return (x, y) if transform.contains(x, y) else None


def _same_kind(recorded: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether ``now`` is the same kind of control as the recorded element (role when both have
    one, else tag): a heading that shares a button's text is not that button."""
    key = "role" if recorded.get("role") and now.get("role") else "tag"
    return not recorded.get(key) or now.get(key) == recorded[key]


def _agrees(recorded: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether ``now`` can be the recorded element: a structural selector may point at another one
    after the page changed, so its tag, test id and name must agree with what was recorded."""
    if recorded.get("tag") and recorded["tag"] != now.get("tag"):
        return False
    for key in ("testid", "name"):
        if recorded.get(key) and recorded[key] != now.get(key):
            return False
    return True


def _css_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ")
    return f'"{escaped}"'
