"""A Chromium browser driven through Playwright.

The model's coordinates are CSS pixels of the viewport (the viewport is the display); screenshots
come back at exactly the display size whatever the device scale factor. Actions and screenshots
follow the newest tab. Beside this module: opening the browser (browser_launch), sharing one
between runs (browser_pool), the domain policy on the network (browser_policy), settling after
actions (browser_settle), anchors of actions and finding them again (browser_anchors), and the
page JavaScript (browser_scripts and the .js files).
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, Mapping

from ..actions import ScreenTransform, Size
from ..errors import ActionNotSupported, EnvironmentError_, ModelOutputError, first_line
from .base import DEFAULT_WAIT_MS, Environment, zoom_png
from .browser_anchors import element_at, locate
from .browser_launch import ACTION_TIMEOUT_MS, BrowserOpening, open_browser
from .browser_policy import PolicyEnforcer
from .browser_pool import BrowserPool, current_pool
from .browser_settle import PageSettler
from .browser_tabs import Tabs
from .domain_policy import DomainPolicy, refused_scheme, with_scheme
from .keys_browser import chord_keys, is_text_only

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright, Request

log = logging.getLogger(__name__)

_BUTTONS = {"left": "left", "right": "right", "wheel": "middle"}
# CSS pixels one wheel notch scrolls. Playwright's wheel scrolls by exact pixels, so a notch is ours
# to define: 100, what Chromium scrolls per notch on Windows (on X it is 120, see xvfb.py).
WHEEL_NOTCH_CSS_PX = 100
_DRAG_STEPS = 5  # intermediate mouse moves between two drag points, so pages see a real path


class BrowserEnvironment(Environment):
    """Chromium through Playwright: launched locally, or attached over CDP or a Playwright server."""

    kind = "browser"

    def __init__(
        self,
        *,
        display: Size = Size(1024, 768),
        start_url: str | None = None,
        headless: bool = True,
        device_scale_factor: float = 1,
        chromium_path: str | None = None,
        cdp_url: str | None = None,
        ws_endpoint: str | None = None,
        allow_domains: Iterable[str] = (),
        block_domains: Iterable[str] = (),
        allow_schemes: Iterable[str] = (),
        wait_ms: int = DEFAULT_WAIT_MS,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        launch_args: Iterable[str] = (),
        init_scripts: Iterable[str] = (),
        bindings: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        if cdp_url and ws_endpoint:
            raise EnvironmentError_("give either cdp_url or ws_endpoint, not both")
        self.display = display
        self.start_url = start_url
        self.headless = headless
        self.device_scale_factor = device_scale_factor
        self.chromium_path = chromium_path
        self.cdp_url = cdp_url
        self.ws_endpoint = ws_endpoint
        self.policy = DomainPolicy(allow_domains, block_domains)
        self.allow_schemes = tuple(allow_schemes)  # besides http(s), for goto (a model's navigation)
        self.wait_ms = wait_ms
        self.on_event = on_event
        self.launch_args = tuple(launch_args)
        # Scripts every page and frame runs before its own, and functions they may call
        # (window.<name>(...), called with Playwright's binding source first): `cua record`'s.
        self.init_scripts = tuple(init_scripts)
        self.bindings = dict(bindings or {})
        # The viewport is the display, so model space and CSS pixels coincide; the transform
        # still carries every coordinate so there is one place to change if that ever differs.
        self.transform = ScreenTransform(model=display, screen=display)

        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._pool: BrowserPool | None = None  # where the browser came from, when it is shared
        self._enforcer = PolicyEnforcer(self.policy, self._emit, lambda page: self._tabs.session(page))
        self._tabs = Tabs(self._enforcer, self._emit)
        self._settler = PageSettler(self._tabs.pages)
        # --playwright-trace: where to save it (set before start), one group per model turn.
        self.trace_path: Path | None = None
        self._trace_group_open = False
        # Where cua last moved the mouse (CSS pixels), and on which page: Playwright cannot tell,
        # and each page has a mouse of its own, which starts at (0, 0) like this one.
        self._pointer: tuple[float, float] = (0.0, 0.0)
        self._pointer_page: Page | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright

        try:
            opening = BrowserOpening(
                cdp_url=self.cdp_url, ws_endpoint=self.ws_endpoint,
                chromium_path=self.chromium_path, headless=self.headless,
                extra_args=self.launch_args, under_policy=bool(self.policy),
                env=tuple(sorted(self.child_env().items())),
            )
            self._pool = current_pool()
            if self._pool is not None:  # a browser shared with other runs; this run's context only
                self._context = await self._shared_context(opening)
            else:
                self._playwright = await async_playwright().start()
                self._browser = await open_browser(self._playwright, opening)
                self._context = await self._new_context()
            self._context.set_default_timeout(ACTION_TIMEOUT_MS)
            self._tabs.follow(self._context)
            self._context.on("request", self._settler.on_request)
            self._context.on("requestfinished", self._on_request_finished)
            self._context.on("requestfailed", self._on_request_failed)
            await self._enforcer.attach(self._context)
            for name, function in self.bindings.items():
                await self._context.expose_binding(name, function)
            for script in self.init_scripts:
                await self._context.add_init_script(script)
            if self.trace_path is not None:
                await self._context.tracing.start(screenshots=True, snapshots=True, sources=False)
            self._tabs.add(await self._context.new_page())
            if self.start_url:  # the user's, not the model's: any scheme
                await self._open(with_scheme(self.start_url))
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, EnvironmentError_):
                raise
            if isinstance(exc, PlaywrightError):
                raise EnvironmentError_(f"the browser could not be started: {first_line(exc)}") from None
            raise

    async def _new_context(self) -> BrowserContext:
        assert self._browser is not None
        return await self._browser.new_context(
            viewport={"width": self.display.width, "height": self.display.height},
            device_scale_factor=self.device_scale_factor,
            # Service workers answer requests that context.route() would never see.
            service_workers="block" if self.policy else "allow",
        )

    async def _shared_context(self, opening: BrowserOpening) -> BrowserContext:
        """A context of our own in the pool's browser; one that died unnoticed is replaced once."""
        from playwright.async_api import Error as PlaywrightError

        assert self._pool is not None
        self._browser = await self._pool.acquire(opening)
        try:
            return await self._new_context()
        except PlaywrightError:
            stale, self._browser = self._browser, None
            await self._pool.discard(stale)
        self._browser = await self._pool.acquire(opening)
        return await self._new_context()

    async def begin_step(self, step: int, title: str) -> None:
        if self.trace_path is None or self._context is None:
            return
        if self._trace_group_open:
            await self._context.tracing.group_end()
        await self._context.tracing.group(f"step {step}: {title}")
        self._trace_group_open = True

    async def stop(self) -> None:
        if self.trace_path is not None and self._context is not None:
            try:
                if self._trace_group_open:
                    await self._context.tracing.group_end()
                await self._context.tracing.stop(path=str(self.trace_path))
            except Exception as exc:  # the browser died: there is no trace to save
                log.warning("could not save the Playwright trace: %s", exc)
            self._trace_group_open = False
        context, browser, pw, pool = self._context, self._browser, self._playwright, self._pool
        self._context = self._browser = self._playwright = self._pool = None
        self._tabs.close()
        self._enforcer.close()
        self._settler.forget_requests()
        for closing in (context, browser if pool is None else None):
            if closing is not None:
                try:
                    await closing.close()
                except Exception as exc:  # already gone: nothing left to release
                    log.debug("closing %r failed: %s", closing, exc)
        if pool is not None and browser is not None:
            await pool.release(browser)
        if pw is not None:
            try:
                await pw.stop()
            except Exception as exc:
                log.debug("stopping Playwright failed: %s", exc)

    # --- tabs and events ------------------------------------------------------------------------

    @property
    def context(self) -> BrowserContext | None:
        """The browser context of this run (None before start and after stop)."""
        return self._context

    @property
    def open_pages(self) -> list[Page]:
        """Every open tab, oldest first (the last is the one actions go to)."""
        return list(self._tabs.pages)

    @property
    def page(self) -> Page:
        """The page actions and screenshots go to: the newest open tab."""
        return self._tabs.newest

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, data)
        except Exception:  # a broken log callback must not break the browser
            log.exception("on_event callback failed for %s", kind)

    # --- network: what settle and the domain policy are told ------------------------------------

    def _on_request_finished(self, request: Request) -> None:
        self._settler.on_request_done(request)
        self._enforcer.on_request_finished(request)

    def _on_request_failed(self, request: Request) -> None:
        self._settler.on_request_done(request)
        self._enforcer.on_request_failed(request)

    # --- actions --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _holding(self, page: Page, keys: list[str] | None) -> AsyncIterator[None]:
        """Hold ``keys`` down around an action; release in reverse order whatever happens."""
        names = chord_keys(keys, where="keys") if keys else []
        pressed: list[str] = []
        try:
            for key in names:
                await page.keyboard.down(key)
                pressed.append(key)
            yield
        finally:
            for key in reversed(pressed):
                try:
                    await page.keyboard.up(key)
                except Exception as exc:  # the page closed under the action
                    log.debug("releasing %s failed: %s", key, exc)

    @asynccontextmanager
    async def _acting(self, what: str) -> AsyncIterator[Page]:
        """The page to act on; browser failures become one readable error."""
        from playwright.async_api import Error as PlaywrightError

        page = await self._tabs.active()
        try:
            yield page
        except PlaywrightError as exc:
            if page.is_closed():
                return  # the action closed its own tab (a close button): that is its effect
            raise EnvironmentError_(f"the browser failed to {what}: {first_line(exc)}") from None

    def _point(self, x: float, y: float) -> tuple[float, float]:
        return self.transform.to_screen(x, y)

    def _pointer_to(self, page: Page, x: float, y: float) -> tuple[float, float]:
        """The screen point of (x, y), remembered as where the mouse of ``page`` is about to be."""
        self._pointer, self._pointer_page = self._point(x, y), page
        return self._pointer

    async def click(self, x: int, y: int, button: str = "left", keys: list[str] | None = None) -> None:
        if button not in _BUTTONS and button not in ("back", "forward"):
            raise ModelOutputError(f"click: unknown mouse button {button!r}")
        async with self._acting(f"click at ({x}, {y})") as page, self._holding(page, keys):
            sx, sy = self._pointer_to(page, x, y)
            if button in _BUTTONS:
                await page.mouse.click(sx, sy, button=_BUTTONS[button])
            else:
                # Chrome's back/forward mouse buttons walk the tab's history.
                await page.mouse.move(sx, sy)
                await self._history(page, button)

    async def double_click(self, x: int, y: int, keys: list[str] | None = None) -> None:
        async with self._acting(f"double-click at ({x}, {y})") as page, self._holding(page, keys):
            await page.mouse.dblclick(*self._pointer_to(page, x, y))

    async def triple_click(self, x: int, y: int, keys: list[str] | None = None) -> None:
        async with self._acting(f"triple-click at ({x}, {y})") as page, self._holding(page, keys):
            await page.mouse.click(*self._pointer_to(page, x, y), click_count=3)

    async def mouse_down(self, x: int | None, y: int | None, button: str = "left") -> None:
        await self._press(x, y, button, down=True)

    async def mouse_up(self, x: int | None, y: int | None, button: str = "left") -> None:
        await self._press(x, y, button, down=False)

    async def _press(self, x: int | None, y: int | None, button: str, *, down: bool) -> None:
        if button in ("back", "forward"):
            raise self._unsupported(f"{'hold down' if down else 'release'} the {button} mouse button "
                                    "(Playwright has left, right and middle)")
        if button not in _BUTTONS:
            raise ModelOutputError(f"mouse_{'down' if down else 'up'}: unknown mouse button {button!r}")
        where = f" at ({x}, {y})" if x is not None and y is not None else ""
        async with self._acting(f"{'press' if down else 'release'} the {button} button{where}") as page:
            if where:
                await page.mouse.move(*self._pointer_to(page, x, y))
            elif self._pointer_page is not page:  # another tab: its mouse is not where ours was
                await page.mouse.move(*self._pointer)
                self._pointer_page = page
            if down:
                await page.mouse.down(button=_BUTTONS[button])
            else:
                await page.mouse.up(button=_BUTTONS[button])

    async def key_down(self, keys: list[str]) -> None:
        chord = self._held_chord(keys, "key_down")
        async with self._acting(f"press {'+'.join(keys)}") as page:
            for key in chord:
                await page.keyboard.down(key)

    async def key_up(self, keys: list[str]) -> None:
        chord = self._held_chord(keys, "key_up")
        async with self._acting(f"release {'+'.join(keys)}") as page:
            for key in reversed(chord):
                await page.keyboard.up(key)

    @staticmethod
    def _held_chord(keys: list[str], where: str) -> list[str]:
        chord = chord_keys(keys, where=where)  # every name checked before any key goes down
        for name, key in zip(keys, chord):
            if is_text_only(key):
                raise ModelOutputError(f"{where}: {name!r} is not a key of the keyboard and cannot be held")
        return chord

    async def cursor_position(self) -> tuple[int, int]:
        return self.transform.to_model(*self._pointer)

    async def zoom(self, x0: int, y0: int, x1: int, y1: int) -> bytes:
        left, top = x0 * self.transform.sx, y0 * self.transform.sy
        clip = {"x": left, "y": top, "width": x1 * self.transform.sx - left, "height": y1 * self.transform.sy - top}
        png = None
        async with self._acting(f"zoom into ({x0}, {y0})–({x1}, {y1})") as page:
            # scale="device": every pixel Chromium renders there (twice the region at a 2x scale).
            png = await page.screenshot(type="png", clip=clip, scale="device")
        if png is None:
            raise EnvironmentError_("the tab closed while zooming")
        from PIL import Image

        with Image.open(io.BytesIO(png)) as image:
            width, height = x1 - x0, y1 - y0
            return zoom_png(image, Size(width, height), 0, 0, width, height)

    def wheel_notch_px(self) -> float:
        return WHEEL_NOTCH_CSS_PX / self.transform.sy

    async def scroll(
        self, x: int, y: int, scroll_x: int, scroll_y: int, keys: list[str] | None = None
    ) -> None:
        async with self._acting(f"scroll at ({x}, {y})") as page, self._holding(page, keys):
            await page.mouse.move(*self._pointer_to(page, x, y))
            dx, dy = self._point(scroll_x, scroll_y)
            await page.mouse.wheel(dx, dy)

    async def type(self, text: str) -> None:
        async with self._acting("type text") as page:
            await page.keyboard.type(text)

    async def move(self, x: int, y: int, keys: list[str] | None = None) -> None:
        async with self._acting(f"move to ({x}, {y})") as page, self._holding(page, keys):
            await page.mouse.move(*self._pointer_to(page, x, y))

    async def keypress(self, keys: list[str]) -> None:
        chord = chord_keys(keys)  # every name checked before any key goes down
        async with self._acting(f"press {'+'.join(keys)}") as page:
            if len(chord) == 1 and is_text_only(chord[0]):
                await page.keyboard.insert_text(chord[0])
                return
            pressed: list[str] = []
            try:
                for key in chord:
                    await page.keyboard.down(key)
                    pressed.append(key)
            finally:
                for key in reversed(pressed):
                    await page.keyboard.up(key)

    async def drag(self, path: list[tuple[int, int]], keys: list[str] | None = None) -> None:
        if len(path) < 2:
            raise ModelOutputError("drag: the path needs at least two points")
        points = [self._point(x, y) for x, y in path]
        async with self._acting("drag") as page, self._holding(page, keys):
            self._pointer_to(page, *path[-1])
            await page.mouse.move(*points[0])
            await page.mouse.down()
            try:
                for point in points[1:]:
                    await page.mouse.move(*point, steps=_DRAG_STEPS)
            finally:
                await page.mouse.up()

    async def screenshot(self) -> bytes:
        async with self._acting("take a screenshot") as page:
            # scale="css" asks Chromium for CSS-pixel size directly (cheap at a 2× device scale);
            # fit_screenshot guarantees the display size whatever came back.
            png = await self._capture(page)
            # After a fast settle: if the DOM changed meanwhile, the page was still busy (a
            # timer, a late render); settle properly and capture again.
            if await self._settler.changed_since_settled(page):
                await self.settle()
                self._settler.drop_mark()
                png = await self._capture(page)
            return self.transform.fit_screenshot(png)
        raise EnvironmentError_("the tab closed while taking a screenshot")

    async def _capture(self, page: Page) -> bytes:
        """A PNG of the viewport in CSS pixels, straight from Chromium's compositor.

        CDP's captureScreenshot with optimizeForSpeed skips what Playwright's screenshot adds
        around it (caret hiding, font waits) and a slower PNG encoder: ~25 ms instead of ~40 ms
        a step at 1024x768. Falls back to Playwright's screenshot where CDP is not available.
        """
        from playwright.async_api import Error as PlaywrightError

        try:
            session = await self._tabs.session(page)
            params: dict[str, Any] = {"format": "png", "optimizeForSpeed": True}
            if self.device_scale_factor != 1:
                params["clip"] = {"x": 0, "y": 0, "width": self.display.width,
                                  "height": self.display.height, "scale": 1 / self.device_scale_factor}
            shot = await session.send("Page.captureScreenshot", params)
            return base64.b64decode(shot["data"])
        except PlaywrightError:
            self._tabs.drop_session(page)
            return await page.screenshot(type="png", scale="css")

    # --- navigation (used by function tools) -------------------------------------------------------

    async def current_url(self) -> str | None:
        return self.page.url if self._tabs.pages else None

    async def goto(self, url: str, *, verb: str = "goto") -> None:
        """Open ``url`` in the current tab (``example.com`` means ``https://example.com``).

        The model's way to navigate, so only web pages and about:blank: a local file, the
        browser's own pages (chrome:, devtools:) or a document the model writes itself
        (javascript:, data:) open only when the user allowed that scheme. ``verb`` names the
        model's way in messages (the goto function, the navigate action)."""
        url = with_scheme(url)
        scheme = refused_scheme(url, self.allow_schemes)
        if scheme:
            reason = f"the {scheme}: scheme is not allowed"
            self._emit("blocked", {"url": url, "reason": reason, "resource_type": "document"})
            raise EnvironmentError_(
                f"{verb} refused {url}: {reason}; {verb} opens http and https pages and about:blank "
                f"(the user can allow it with --allow-scheme {scheme})"
            )
        await self._open(url)

    async def navigate(self, url: str) -> None:
        await self.goto(url, verb="navigate")

    async def _open(self, url: str) -> None:
        from playwright.async_api import Error as PlaywrightError

        reason = self.policy.blocked_reason(url)
        if reason:
            self._emit("blocked", {"url": url, "reason": reason, "resource_type": "document"})
            raise EnvironmentError_(f"{url} is blocked by the domain policy ({reason})")
        page = await self._tabs.active()
        try:
            await page.goto(url, wait_until="load")
        except PlaywrightError as exc:
            raise EnvironmentError_(f"could not open {url}: {first_line(exc)}") from None
        await self.settle()  # an allowed redirect under a domain policy is one more navigation

    async def back(self) -> None:
        await self._walk_history("back")

    async def forward(self) -> None:
        await self._walk_history("forward")

    async def _walk_history(self, direction: str) -> None:
        """The back/forward action: one step through the tab's history, then settled like goto.
        With nowhere to go it says so rather than doing nothing."""
        from playwright.async_api import Error as PlaywrightError

        page = await self._tabs.active()
        try:
            history = await (await self._tabs.session(page)).send("Page.getNavigationHistory")
            index, last = history["currentIndex"], len(history["entries"]) - 1
        except (PlaywrightError, KeyError, TypeError):
            index = last = None  # no CDP (a Playwright server): go, and let Chromium decide
        if index is not None and index == (0 if direction == "back" else last):
            where = "earlier" if direction == "back" else "later"
            raise ActionNotSupported(f"the browser environment cannot go {direction}: "
                                     f"this tab has no {where} page in its history")
        await self._history(page, direction)
        await self.settle()

    async def _history(self, page: Page, direction: str) -> None:
        from playwright.async_api import Error as PlaywrightError

        try:
            if direction == "back":
                await page.go_back(wait_until="commit")
            else:
                await page.go_forward(wait_until="commit")
        except PlaywrightError as exc:
            raise EnvironmentError_(f"could not go {direction}: {first_line(exc)}") from None

    # --- settle ---------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait for what the last actions started: navigation, network, rendering. Each part is
        capped; when nothing changed this costs one frame and one capture (a few tens of ms)."""
        await self._settler.settle()

    # --- anchors ---------------------------------------------------------------------------------

    async def anchor(self, x: int, y: int) -> dict[str, Any] | None:
        """The element under (x, y): tag, role, name, text, id, test id, selector, model-space box."""
        if not self._tabs.pages:
            return None
        return await element_at(self.page, self._point(x, y), self.transform)

    async def locate(self, anchor: dict[str, Any]) -> tuple[int, int] | None:
        """Find a recorded element again (see browser_anchors.locate): its model-space centre, or None."""
        return await locate(await self._tabs.active(), anchor, self.transform)
