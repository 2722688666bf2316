"""Capturing a person's input in a headed Chromium: the page script, the address bar, the tabs.

``recorder.js`` runs in every frame of every tab before the page's own scripts and reports each
input through one binding; this module turns those reports into gestures (frame coordinates into
the top page's, which are the screenshot's), watches each tab's navigation history for what the
person typed in the address bar or did with Back and Forward (CDP's transition types say which
navigations came from the browser's own controls), and notices when the last window closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..actions import Back, Click, Drag, Forward, Keypress, Navigate, Point, Scroll, Type, normalize_key
from ..environments.browser_scripts import DESCRIBE_JS
from ..errors import ModelOutputError
from .gestures import Gesture, Mark, Push, chord, thin_path, written_key

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Frame, Page

    from ..environments.browser import BrowserEnvironment

log = logging.getLogger(__name__)

BINDING = "__cuaRecord"
# The browser's own shortcuts: to the address bar (what is typed there is recorded as the
# navigation it makes), and Back and Forward (recorded as the navigation, not as keys).
BROWSER_KEYS = ({"CTRL", "l"}, {"ALT", "d"}, {"F6"}, {"ALT", "ARROWLEFT"}, {"ALT", "ARROWRIGHT"})
# Navigations the person started with the browser's own controls (CDP NavigationEntry.transitionType).
FROM_ADDRESS_BAR = {"typed", "generated", "auto_bookmark", "keyword", "keyword_generated"}
# Wheel events this far apart in time (s) or place (px) are separate scrolls.
WHEEL_GAP_S, WHEEL_NEAR = 0.6, 40


def page_script(secret_selectors: Iterable[str], toolbar: bool = True) -> str:
    """The init script: describe.js and recorder.js in a function of their own, so none of their
    names can clash with the page's."""
    config = json.dumps({"secretSelectors": list(secret_selectors), "toolbar": toolbar})
    recorder = (Path(__file__).with_name("recorder.js")).read_text(encoding="utf-8")
    return f"(() => {{ const CONFIG = {config};\n{DESCRIBE_JS}\n{recorder}\n}})();"


class BrowserCapture:
    """Feeds ``push`` with the gestures and check marks of the person using ``env``'s browser."""

    def __init__(self, env: "BrowserEnvironment", push: Push) -> None:
        self.env = env
        self.push = push
        self.closed = asyncio.Event()  # the last window closed (or the browser went away)
        self.stop_asked = asyncio.Event()  # the toolbar's stop control, or Alt+Shift+S
        self._wheel: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def binding(self) -> dict[str, Any]:
        return {BINDING: self._on_report}

    # -- what the page reports -------------------------------------------------------------------
    async def _on_report(self, source: dict[str, Any], report: Any) -> None:
        try:
            await self._report(source, report)
        except Exception:  # a strange report from a page must not end the recording
            log.debug("could not use a report of the page: %r", report, exc_info=True)

    async def _report(self, source: dict[str, Any], report: Any) -> None:
        if not isinstance(report, dict):
            return
        kind = report.get("kind")
        if kind == "stop":
            self.stop_asked.set()
            return
        if kind != "wheel":
            self._flush_wheel()
        dx, dy = await self._frame_offset(source.get("frame"))
        to_model = self.env.transform.to_model

        def point(x: Any, y: Any) -> tuple[int, int]:
            return to_model(float(x) + dx, float(y) + dy)

        element = report.get("element")
        if isinstance(element, dict) and isinstance(element.get("box"), dict):
            box = element["box"]
            left, top = point(box.get("x", 0), box.get("y", 0))
            width, height = to_model(float(box.get("width", 0)), float(box.get("height", 0)))
            element = {**element, "box": {"x": left, "y": top, "width": width, "height": height}}
        mods = [m for m in report.get("mods") or [] if m in ("CTRL", "ALT", "SHIFT", "META")]
        if kind == "click":
            x, y = point(report["x"], report["y"])
            button = report.get("button") if report.get("button") in ("left", "right", "wheel", "back", "forward") else "left"
            self.push(Gesture(Click(x=x, y=y, button=button, keys=mods or None), element=element,
                              count=int(report.get("count") or 1)))
        elif kind == "drag":
            path = [point(x, y) for x, y in report.get("path") or []]
            if len(path) >= 2:
                self.push(Gesture(Drag(path=[Point(x=x, y=y) for x, y in thin_path(path)], keys=mods or None),
                                  element=element))
        elif kind == "wheel":
            self._add_wheel(*point(report["x"], report["y"]), float(report.get("dx") or 0),
                            float(report.get("dy") or 0), mods)
        elif kind == "text":
            text = str(report.get("text") or "")
            if text:
                self.push(Gesture(Type(text=text), secret=report.get("secret") or None))
        elif kind == "key":
            self._key(str(report.get("key") or ""), mods, report.get("secret") or None)
        elif kind == "check":
            await self._check(report, point)

    def _key(self, key: str, mods: list[str], secret: str | None) -> None:
        try:
            name = written_key(normalize_key(key, where="a recorded key"))
        except ModelOutputError:
            name = None
        if name is None:  # a key cua cannot press again (media keys, dead keys): not recorded
            log.info("not recorded: the key %r", key)
            return
        if len(name) == 1 and mods == ["SHIFT"]:  # Shift+letter arrives as text; Shift+Tab is a chord
            mods = []
        keys = chord(mods, name)
        if set(keys) in BROWSER_KEYS:
            return
        self.push(Gesture(Keypress(keys=keys), secret=secret))

    def _add_wheel(self, x: int, y: int, dx: float, dy: float, mods: list[str]) -> None:
        loop = asyncio.get_running_loop()
        wheel = self._wheel
        if wheel and (loop.time() - wheel["t"] > WHEEL_GAP_S or abs(wheel["x"] - x) > WHEEL_NEAR
                      or abs(wheel["y"] - y) > WHEEL_NEAR or wheel["mods"] != mods):
            self._flush_wheel()
            wheel = None
        if wheel is None:
            wheel = self._wheel = {"x": x, "y": y, "dx": 0.0, "dy": 0.0, "mods": mods, "t": loop.time()}
            wheel["timer"] = loop.call_later(WHEEL_GAP_S, self._flush_wheel)
        wheel["dx"] += dx
        wheel["dy"] += dy
        wheel["t"] = loop.time()
        wheel["timer"].cancel()
        wheel["timer"] = loop.call_later(WHEEL_GAP_S, self._flush_wheel)

    def _flush_wheel(self) -> None:
        wheel, self._wheel = self._wheel, None
        if not wheel:
            return
        wheel["timer"].cancel()
        sx, sy = round(wheel["dx"]), round(wheel["dy"])
        if sx or sy:
            self.push(Gesture(Scroll(x=wheel["x"], y=wheel["y"], scroll_x=sx, scroll_y=sy,
                                     keys=wheel["mods"] or None)))

    async def _check(self, report: dict[str, Any], point: Any) -> None:
        what = report.get("check")
        if what == "text" and report.get("text"):
            self.push(Mark({"text_visible": str(report["text"])}))
        elif what == "element" and isinstance(report.get("element"), dict):
            element = report["element"]
            selector = f'[data-testid="{element["testid"]}"]' if element.get("testid") else element.get("selector")
            if not selector:
                return
            check: dict[str, Any] = {"selector": selector}
            text = str(element.get("text") or "")
            if text and len(text) <= 60:
                check["has_text"] = text
            self.push(Mark({"selector": check}))
        elif what == "region" and isinstance(report.get("box"), dict):
            box = report["box"]
            x, y = point(box["x"], box["y"])
            width, height = self.env.transform.to_model(float(box["width"]), float(box["height"]))
            self.push(Mark({"screenshot": {"region": {"x": x, "y": y, "width": width, "height": height}}}))

    async def _frame_offset(self, frame: "Frame | None") -> tuple[float, float]:
        """Where ``frame``'s viewport is in the top page's (CSS pixels)."""
        dx = dy = 0.0
        while frame is not None and frame.parent_frame is not None:
            try:
                owner = await frame.frame_element()
                left, top = await owner.evaluate(
                    "(e) => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);"
                    " return [r.left + e.clientLeft + parseFloat(s.paddingLeft),"
                    " r.top + e.clientTop + parseFloat(s.paddingTop)]; }")
            except Exception:  # the frame went away meanwhile
                break
            dx, dy = dx + left, dy + top
            frame = frame.parent_frame
        return dx, dy

    # -- the browser's own controls --------------------------------------------------------------
    async def watch(self) -> None:
        """Follow every tab, now and later: its navigations, its closing."""
        context: BrowserContext | None = self.env.context
        assert context is not None, "start the environment first"
        context.on("page", self._watch_page)
        for page in self.env.open_pages:
            self._watch_page(page)
        browser = context.browser
        if browser is not None:
            browser.on("disconnected", lambda _: self.closed.set())

    def _watch_page(self, page: "Page") -> None:
        # One task per tab reads its navigations in the order they came: a history read after a
        # later navigation (a busy machine) would otherwise hide the earlier one.
        navigations: asyncio.Queue[None] = asyncio.Queue()
        self._spawn(self._follow_history(page, navigations))
        page.on("framenavigated", lambda frame: frame == page.main_frame and navigations.put_nowait(None))
        page.on("close", lambda _: self._spawn(self._page_closed()))

    async def _page_closed(self) -> None:
        await asyncio.sleep(0.2)  # a tab closing as another opens is not the end
        if not self.env.open_pages:
            self.closed.set()

    async def _follow_history(self, page: "Page", navigations: "asyncio.Queue[None]") -> None:
        session: Any = None

        async def read() -> tuple[int, int, dict[str, Any]] | None:
            nonlocal session
            for _ in range(2):  # a navigation may detach the session: then open another
                try:
                    if session is None:
                        session = await page.context.new_cdp_session(page)
                    return await self._history_of(session)
                except Exception:  # the page closed, or the browser is not Chromium
                    session = None
            return None

        before = await read()
        while not page.is_closed():
            await navigations.get()
            now = await read()
            if now is None:
                continue
            if before is not None:
                self._navigated(before, now)
            before = now

    def _navigated(self, before: tuple[int, int, dict[str, Any]], now: tuple[int, int, dict[str, Any]]) -> None:
        """What the person did with the browser's controls, from the tab's history before and after."""
        (count_before, index_before, _), (count, index, current) = before, now
        if count == count_before and index == index_before - 1:
            self.push(Gesture(Back()))
        elif count == count_before and index == index_before + 1:
            self.push(Gesture(Forward()))
        elif current.get("transitionType") in FROM_ADDRESS_BAR and (count, index) != (count_before, index_before):
            if current.get("url"):
                self.push(Gesture(Navigate(url=str(current["url"]))))

    async def _history_of(self, session: Any) -> tuple[int, int, dict[str, Any]]:
        history = await session.send("Page.getNavigationHistory")
        entries = history.get("entries") or []
        index = int(history.get("currentIndex", len(entries) - 1))
        current = entries[index] if 0 <= index < len(entries) else {}
        return len(entries), index, current

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def hide_toolbar(self, hidden: bool) -> None:
        """Take the toolbar out of (and back into) the page around each screenshot kept."""
        for page in self.env.open_pages[-1:]:
            try:
                await page.evaluate("(h) => window.__cuaRecorderHide && window.__cuaRecorderHide(h)", hidden)
            except Exception:  # navigating: the new document's toolbar is not drawn yet
                pass

    async def tell(self, text: str) -> None:
        """Show ``text`` on the toolbar (e.g. that a check was added)."""
        for page in self.env.open_pages[-1:]:
            try:
                await page.evaluate("(t) => window.__cuaRecorderChecked && window.__cuaRecorderChecked(t)", text)
            except Exception:
                pass

    async def close(self) -> None:
        self._flush_wheel()
        for task in list(self._tasks):
            task.cancel()
