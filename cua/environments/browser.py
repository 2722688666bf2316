"""A Chromium browser driven through Playwright.

The model's coordinates are CSS pixels of the viewport (the viewport is the display); screenshots
come back at exactly the display size whatever the device scale factor. Actions and screenshots
follow the newest tab. A domain policy, when one is given, is enforced on the network layer for
every request of every page, frame, popup and WebSocket, redirects included: by Playwright's
routing, and by Chromium itself for the redirect hops of subresources, which routing cannot see.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
from pathlib import Path
import shutil
from contextlib import asynccontextmanager
from html import escape as html_escape
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable
from urllib.parse import urljoin, urlsplit

from ..actions import ScreenTransform, Size
from ..errors import ActionNotSupported, EnvironmentError_, ModelOutputError
from .base import DEFAULT_WAIT_MS, Environment, zoom_png
from .domain_policy import WEB_SCHEMES, DomainPolicy, refused_scheme, with_scheme
from .keys_browser import chord_keys, is_text_only

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser, BrowserContext, Frame, Page, Playwright, Request, Route, WebSocketRoute,
    )

log = logging.getLogger(__name__)

DEFAULT_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
INSTALL_HINT = (
    "install Chromium with `make setup` or `apt-get install chromium`, "
    "or point CUA_CHROMIUM at a Chromium or Chrome executable"
)
_BUTTONS = {"left": "left", "right": "right", "wheel": "middle"}
# CSS pixels one wheel notch scrolls. Playwright's wheel scrolls by exact pixels, so a notch is ours
# to define: 100, what Chromium scrolls per notch on Windows (on X it is 120, see xvfb.py).
WHEEL_NOTCH_CSS_PX = 100
_DRAG_STEPS = 5  # intermediate mouse moves between two drag points, so pages see a real path
_CONNECT_TIMEOUT_MS = 15_000
_ACTION_TIMEOUT_MS = 15_000

# settle(): caps, so a page that never goes quiet costs a bounded time per step.
SETTLE_CAP_S = 5.0
NETWORK_QUIET_S = 0.1  # the network must have been idle this long
FRAME_CAP_S = 0.6  # give up waiting for two identical frames (animations) after this
_TICK_TIMEOUT_S = 0.25  # a hidden tab does not render frames
# Requests older than this are long-lived (polling, streaming) and no longer waited for.
_LONG_REQUEST_S = SETTLE_CAP_S
_UNWAITED_TYPES = frozenset({"websocket", "eventsource", "media"})


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium to launch: argument, ``CUA_CHROMIUM``, the system's, or None for Playwright's."""
    for source, path in (("chromium_path", explicit), ("CUA_CHROMIUM", os.environ.get("CUA_CHROMIUM"))):
        if path:
            found = path if os.path.isfile(path) else shutil.which(path)
            if not found:
                raise EnvironmentError_(f"{source} {path!r} does not exist; {INSTALL_HINT}")
            return found
    if os.path.isfile("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _redirect_stub(target: str) -> str:
    url = html_escape(target, quote=True)
    return (
        f'<!doctype html><meta http-equiv="refresh" content="0;url={url}">'
        f"<script>location.replace({_js_string(target)})</script>"
    )


def _js_string(text: str) -> str:
    return json.dumps(text).replace("<", "\\u003c")


def _css_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ")
    return f'"{escaped}"'


def _page_script(name: str) -> str:
    """A script that runs in the page, from the file beside this module (comment lines dropped)."""
    text = (Path(__file__).parent / name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("//")) + "\n"


# What is under a point, and a description of an element, computed in the page. ``describe`` is
# shared by anchor() and by locate(), which checks every element it finds against the recording.
_DESCRIBE_JS = _page_script("describe.js")
_ANCHOR_JS = (
    "([x, y]) => {"
    + _DESCRIBE_JS
    + """
  let el = document.elementFromPoint(x, y);
  while (el && el.shadowRoot) {
    const inner = el.shadowRoot.elementFromPoint(x, y);
    if (!inner || inner === el) break;
    el = inner;
  }
  if (!el) return null;
  return describe(el.closest(INTERACTIVE) || el);
}"""
)
_DESCRIBE_ELEMENT_JS = "(el) => {" + _DESCRIBE_JS + " return describe(el); }"
# Waits one rendered frame and says whether the page changed during it. The DOM is watched by a
# MutationObserver (installed on first use); running animations, canvases and videos change
# pixels without mutations, so for those settle falls back to comparing captured frames.
_PAGE_STATE_JS = _page_script("page_state.js").rstrip()
_FRAME_PROBE_JS = (
    "async () => { const state = " + _PAGE_STATE_JS + "; const before = state().mutations;"
    " await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));"
    " const after = state(); return {...after, changed: after.mutations !== before}; }"
)


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
        # The viewport is the display, so model space and CSS pixels coincide; the transform
        # still carries every coordinate so there is one place to change if that ever differs.
        self.transform = ScreenTransform(model=display, screen=display)

        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._pages: list[Page] = []  # opening order; the last one is the one we drive
        self._front: Page | None = None
        self._inflight: dict[Request, float] = {}
        self._last_network = 0.0
        self._network_changed = asyncio.Event()
        self._last_frame: bytes | None = None
        # After a settle: (page, "document:mutation count", time of the last network event).
        self._settled: tuple[Page, str, float] | None = None
        # --playwright-trace: where to save it (set before start), one group per model turn.
        self.trace_path: Path | None = None
        self._trace_group_open = False
        self._cdp_sessions: dict[Page, Any] = {}  # per page: fast screenshots, the policy guard
        self._guards: dict[Page, asyncio.Task[None]] = {}  # per page, under a domain policy
        self._aborted: set[Request] = set()  # requests _block aborted, until they report failing
        self._frame_sessions: dict[Frame, Any] = {}  # frames in processes of their own, guarded
        self._frame_guards: set[asyncio.Task[None]] = set()
        # Where cua last moved the mouse (CSS pixels), and on which page: Playwright cannot tell,
        # and each page has a mouse of its own, which starts at (0, 0) like this one.
        self._pointer: tuple[float, float] = (0.0, 0.0)
        self._pointer_page: Page | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright

        try:
            self._playwright = await async_playwright().start()
            self._browser = await self._open_browser(self._playwright)
            self._context = await self._browser.new_context(
                viewport={"width": self.display.width, "height": self.display.height},
                device_scale_factor=self.device_scale_factor,
                # Service workers answer requests that context.route() would never see.
                service_workers="block" if self.policy else "allow",
            )
            self._context.set_default_timeout(_ACTION_TIMEOUT_MS)
            self._context.on("page", self._on_page)
            self._context.on("request", self._on_request)
            self._context.on("requestfinished", self._on_request_finished)
            self._context.on("requestfailed", self._on_request_failed)
            if self.policy:
                await self._context.route("**/*", self._route)
                # WebSockets bypass context.route(); they have a routing of their own.
                await self._context.route_web_socket(lambda url: True, self._route_web_socket)
            if self.trace_path is not None:
                await self._context.tracing.start(screenshots=True, snapshots=True, sources=False)
            page = await self._context.new_page()
            self._on_page(page)
            if self.start_url:  # the user's, not the model's: any scheme
                await self._open(with_scheme(self.start_url))
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, EnvironmentError_):
                raise
            if isinstance(exc, PlaywrightError):
                raise EnvironmentError_(f"the browser could not be started: {_first_line(exc)}") from None
            raise

    async def _open_browser(self, pw: Playwright) -> Browser:
        from playwright.async_api import Error as PlaywrightError

        if self.cdp_url:
            try:
                return await pw.chromium.connect_over_cdp(self.cdp_url, timeout=_CONNECT_TIMEOUT_MS)
            except PlaywrightError as exc:
                raise EnvironmentError_(
                    f"could not connect to the browser over CDP at {self.cdp_url}: {_first_line(exc)}"
                ) from None
        if self.ws_endpoint:
            try:
                return await pw.chromium.connect(self.ws_endpoint, timeout=_CONNECT_TIMEOUT_MS)
            except PlaywrightError as exc:
                raise EnvironmentError_(
                    f"could not connect to the Playwright browser server at {self.ws_endpoint}: "
                    f"{_first_line(exc)}"
                ) from None
        path = find_chromium(self.chromium_path)
        args = [*DEFAULT_ARGS, *self.launch_args]
        if self.policy:
            # Pages fetched by _fetch_navigation look public to Chromium, whose local-network
            # checks would then refuse a local app's requests to itself (its WebSocket, another
            # port); under a domain policy, which hosts may be reached is the policy's to say.
            args.append("--disable-features=LocalNetworkAccessChecks")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        try:
            return await pw.chromium.launch(executable_path=path, headless=self.headless, args=args,
                                            env=self.child_env())
        except PlaywrightError as exc:
            where = path or "Playwright's own Chromium"
            raise EnvironmentError_(
                f"could not launch Chromium ({where}): {_first_line(exc)}; {INSTALL_HINT}"
            ) from None

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
        context, browser, pw = self._context, self._browser, self._playwright
        self._context = self._browser = self._playwright = None
        self._pages.clear()
        self._cdp_sessions.clear()
        for guard in [*self._guards.values(), *self._frame_guards]:
            guard.cancel()
        self._guards.clear()
        self._frame_guards.clear()
        self._frame_sessions.clear()
        self._aborted.clear()
        self._front = None
        self._inflight.clear()
        for closing in (context, browser):
            if closing is not None:
                try:
                    await closing.close()
                except Exception as exc:  # already gone: nothing left to release
                    log.debug("closing %r failed: %s", closing, exc)
        if pw is not None:
            try:
                await pw.stop()
            except Exception as exc:
                log.debug("stopping Playwright failed: %s", exc)

    # --- tabs -----------------------------------------------------------------------------------

    @property
    def page(self) -> Page:
        """The page actions and screenshots go to: the newest open tab."""
        if self._context is None:
            raise EnvironmentError_("the browser is not running (start() was not called or failed)")
        if not self._pages:
            raise EnvironmentError_("every tab of the browser has been closed")
        return self._pages[-1]

    def _on_page(self, page: Page) -> None:
        if page in self._pages:
            return
        self._pages.append(page)
        page.on("close", self._on_page_closed)
        if self.policy:
            self._guards[page] = asyncio.get_running_loop().create_task(self._guard(page))
            page.on("framenavigated", self._on_frame_navigated)
            page.on("framedetached", lambda frame: self._frame_sessions.pop(frame, None))
        if len(self._pages) > 1:
            self._emit("tab", {"event": "opened", "url": page.url, "tabs": len(self._pages)})

    def _on_page_closed(self, page: Page) -> None:
        self._cdp_sessions.pop(page, None)
        guard = self._guards.pop(page, None)
        if guard is not None:
            guard.cancel()
        if page not in self._pages:
            return
        self._pages.remove(page)
        current = self._pages[-1].url if self._pages else None
        self._emit("tab", {"event": "closed", "url": page.url, "current": current, "tabs": len(self._pages)})

    async def _active_page(self) -> Page:
        if self._context is not None and not self._pages:
            self._on_page(await self._context.new_page())
        page = self.page
        guard = self._guards.get(page)
        if guard is not None and not guard.done():
            await asyncio.shield(guard)
        if page is not self._front:
            self._front = page
            try:
                await page.bring_to_front()  # matters in a headed browser
            except Exception as exc:
                log.debug("bring_to_front failed: %s", exc)
        return page

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, data)
        except Exception:  # a broken log callback must not break the browser
            log.exception("on_event callback failed for %s", kind)

    # --- network: domain policy and in-flight tracking -------------------------------------------

    def _on_request(self, request: Request) -> None:
        loop = asyncio.get_running_loop()
        self._last_network = loop.time()
        if request.resource_type not in _UNWAITED_TYPES:
            self._inflight[request] = self._last_network
        self._network_changed.set()

    def _on_request_done(self, request: Request) -> None:
        self._last_network = asyncio.get_running_loop().time()
        self._inflight.pop(request, None)
        self._network_changed.set()

    def _on_request_finished(self, request: Request) -> None:
        self._on_request_done(request)
        if self.policy and (reason := self.policy.blocked_reason(request.url)):
            # Only a redirect hop gets here: routing never saw it, and Chromium did not stop it
            # (requests made before a page's or frame's guard landed).
            self._emit("unblocked_redirect", self._request_event(request, reason))

    def _on_request_failed(self, request: Request) -> None:
        self._on_request_done(request)
        if request in self._aborted:
            self._aborted.discard(request)  # reported by _block already
        elif self.policy and (reason := self.policy.blocked_reason(request.url)):
            # A hop Chromium refused shows up as a request of its own (no redirected_from); one
            # it followed was sent, even if it failed afterwards (an image that was no image).
            sent = request.redirected_from is not None
            self._emit("unblocked_redirect" if sent else "blocked", self._request_event(request, reason))

    @staticmethod
    def _request_event(request: Request, reason: str) -> dict[str, Any]:
        event: dict[str, Any] = {"url": request.url, "reason": reason, "resource_type": request.resource_type}
        if request.redirected_from is not None:
            event["redirected_from"] = request.redirected_from.url
        return event

    async def _session(self, page: Page) -> Any:
        """The page's own CDP session (one per page, made on first use)."""
        session = self._cdp_sessions.get(page)
        if session is None:
            session = self._cdp_sessions[page] = await page.context.new_cdp_session(page)
        return session

    async def _guard(self, page: Page) -> None:
        """Hand the policy to Chromium for this page too, so a subresource's redirect hop to a
        blocked host is refused (routing cannot see those hops). The first requests of a popup
        before this lands are left to the routing alone; frames in other processes get their
        own guard (_guard_frame)."""
        from playwright.async_api import Error as PlaywrightError

        try:
            await self._block_in_chromium(await self._session(page))
        except PlaywrightError as exc:  # a closed page, or a browser without urlPatterns
            if not page.is_closed():
                log.warning("Chromium did not take the domain policy (%s); redirect hops of "
                            "subresources are only reported, not stopped", _first_line(exc))

    def _on_frame_navigated(self, frame: Frame) -> None:
        if frame.parent_frame is not None:  # the page's own session covers its main frame
            task = asyncio.get_running_loop().create_task(self._guard_frame(frame))
            self._frame_guards.add(task)
            task.add_done_callback(self._frame_guards.discard)

    async def _guard_frame(self, frame: Frame) -> None:
        """A frame of another site runs in a process of its own, out of reach of the page's
        session: it gets a session, and the policy, of its own (again after each navigation,
        which may move it to another process). An in-process frame has no session to get."""
        from playwright.async_api import Error as PlaywrightError

        if self._context is None:
            return
        try:
            session = await self._context.new_cdp_session(frame)
        except PlaywrightError:
            return  # in the parent's process (covered by its guard), or detached meanwhile
        old, self._frame_sessions[frame] = self._frame_sessions.get(frame), session
        try:
            await self._block_in_chromium(session)
            if old is not None:
                await old.detach()
        except PlaywrightError as exc:
            log.debug("could not guard the frame at %s: %s", frame.url, exc)

    async def _block_in_chromium(self, session: Any) -> None:
        await session.send("Network.enable")
        await session.send("Network.setBlockedURLs", {"urlPatterns": self.policy.chromium_patterns()})

    async def _route(self, route: Route) -> None:
        from playwright.async_api import Error as PlaywrightError

        request = route.request
        try:
            reason = self.policy.blocked_reason(request.url)
            if reason:
                await self._block(route, request.url, reason)
            elif request.is_navigation_request():
                await self._fetch_navigation(route)
            else:
                await route.continue_()
        except PlaywrightError as exc:  # the page or request went away meanwhile
            log.debug("routing %s failed: %s", request.url, exc)

    async def _route_web_socket(self, ws: WebSocketRoute) -> None:
        reason = self.policy.blocked_reason(ws.url)
        if reason is None:
            ws.connect_to_server()
            return
        self._emit("blocked", {"url": ws.url, "reason": reason, "resource_type": "websocket"})
        await ws.close(code=1008, reason=f"blocked by the domain policy ({reason})")  # 1008: policy violation

    async def _fetch_navigation(self, route: Route) -> None:
        """Fetch a page or frame ourselves, one hop at a time, so a redirect can be refused.

        Only navigations take this path: subresources keep the browser's own network stack (its
        cache and cookie rules). Their redirect hops are continued by Playwright unrouted; _guard
        has Chromium stop those, and a hop that still got through is reported
        (``unblocked_redirect``). Chromium treats a document answered this way as public; a
        browser cua launches has its local-network checks off under a policy so local apps keep
        working, one it connects to (--cdp-url, --ws-endpoint) may refuse such a page's requests
        into the local network.
        """
        from playwright.async_api import Error as PlaywrightError

        request = route.request
        try:
            response = await route.fetch(max_redirects=0)
        except PlaywrightError:
            await route.continue_()  # let the browser meet (and show) the network error itself
            return
        location = response.headers.get("location")
        target = urljoin(request.url, location or "")
        if not (300 <= response.status < 400 and location) or urlsplit(target).scheme not in WEB_SCHEMES:
            # Not a redirect, or one to file:, javascript: … which Chromium refuses itself
            # (ERR_UNSAFE_REDIRECT) and the stub below would open.
            await route.fulfill(response=response)
            return
        reason = self.policy.blocked_reason(target)
        if reason:
            await self._block(route, target, reason, redirected_from=request.url)
        else:
            # Handed back as a fresh navigation, not as a 3xx: Playwright continues redirect hops
            # without routing them, so the next hop would escape the policy.
            await route.fulfill(status=200, content_type="text/html", body=_redirect_stub(target))

    async def _block(self, route: Route, url: str, reason: str, redirected_from: str | None = None) -> None:
        event: dict[str, Any] = {"url": url, "reason": reason, "resource_type": route.request.resource_type}
        if redirected_from:
            event["redirected_from"] = redirected_from
        self._emit("blocked", event)
        self._aborted.add(route.request)
        await route.abort("blockedbyclient")

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

        page = await self._active_page()
        try:
            yield page
        except PlaywrightError as exc:
            if page.is_closed():
                return  # the action closed its own tab (a close button): that is its effect
            raise EnvironmentError_(f"the browser failed to {what}: {_first_line(exc)}") from None

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
            settled, self._settled = self._settled, None
            if settled is not None and settled[0] is page:
                state = await self._page_state(page)
                busy = self._inflight or self._last_network > settled[2]
                if busy or state is None or state["mutations"] != settled[1]:
                    await self.settle()
                    self._settled = None
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
            session = await self._session(page)
            params: dict[str, Any] = {"format": "png", "optimizeForSpeed": True}
            if self.device_scale_factor != 1:
                params["clip"] = {"x": 0, "y": 0, "width": self.display.width,
                                  "height": self.display.height, "scale": 1 / self.device_scale_factor}
            shot = await session.send("Page.captureScreenshot", params)
            return base64.b64decode(shot["data"])
        except PlaywrightError:
            self._cdp_sessions.pop(page, None)
            return await page.screenshot(type="png", scale="css")

    # --- navigation (used by function tools) -------------------------------------------------------

    async def current_url(self) -> str | None:
        return self.page.url if self._pages else None

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
        page = await self._active_page()
        try:
            await page.goto(url, wait_until="load")
        except PlaywrightError as exc:
            raise EnvironmentError_(f"could not open {url}: {_first_line(exc)}") from None
        await self.settle()  # an allowed redirect under a domain policy is one more navigation

    async def back(self) -> None:
        await self._walk_history("back")

    async def forward(self) -> None:
        await self._walk_history("forward")

    async def _walk_history(self, direction: str) -> None:
        """The back/forward action: one step through the tab's history, then settled like goto.
        With nowhere to go it says so rather than doing nothing."""
        from playwright.async_api import Error as PlaywrightError

        page = await self._active_page()
        try:
            history = await (await self._session(page)).send("Page.getNavigationHistory")
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
            raise EnvironmentError_(f"could not go {direction}: {_first_line(exc)}") from None

    # --- settle ---------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait for what the last actions started: navigation, network, rendering. Each part is
        capped; when nothing changed this costs one frame and one capture (a few tens of ms)."""
        from playwright.async_api import Error as PlaywrightError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_CAP_S
        self._settled = None
        # The fast path: the page is loaded, nothing is on the network and nothing animates.
        # Input events are acknowledged after the page's handlers ran, so what they changed
        # synchronously is done; anything that changes later is caught by screenshot(), which
        # checks that the DOM did not change while it was captured.
        first = self._pages[-1] if self._pages else None
        state = await self._page_state(first) if first is not None else None
        if (state and state["ready"] and not state["pixels"] and not self._inflight
                and loop.time() - self._last_network >= NETWORK_QUIET_S):
            self._settled = (first, state["mutations"], self._last_network)
            return
        # One rendered frame: a navigation or request the input started has reached the
        # network layer before we look at it.
        if first is not None:
            await self._frame_probe(first)
        await self._network_quiet(deadline)
        if not self._pages:  # the action closed the last tab
            return
        page = self._pages[-1]  # a popup may have opened meanwhile
        remaining_ms = max(1.0, (deadline - loop.time()) * 1000)
        try:
            await page.wait_for_load_state("load", timeout=remaining_ms)
        except PlaywrightError:
            pass  # a slow subresource or a closed tab: the cap is the cap
        await self._network_quiet(deadline)
        if self._pages:
            page = self._pages[-1]
            await self._frame_stable(page, min(deadline, loop.time() + FRAME_CAP_S))
            state = await self._page_state(page)
            if state and not state["pixels"]:
                self._settled = (page, state["mutations"], self._last_network)

    async def _page_state(self, page: Page) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(page.evaluate(_PAGE_STATE_JS), _TICK_TIMEOUT_S)
        except Exception:  # navigating, hidden or closed: no fast path
            return None

    async def _frame_probe(self, page: Page) -> dict[str, bool] | None:
        try:
            return await asyncio.wait_for(page.evaluate(_FRAME_PROBE_JS), _TICK_TIMEOUT_S)
        except Exception:  # navigated away mid-evaluate, hidden tab, closed tab: all fine here
            return None

    async def _network_quiet(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            busy = any(now - started < _LONG_REQUEST_S for started in self._inflight.values())
            quiet_for = now - self._last_network
            if (not busy and quiet_for >= NETWORK_QUIET_S) or now >= deadline:
                return
            wait = deadline - now if busy else NETWORK_QUIET_S - quiet_for
            self._network_changed.clear()
            try:
                await asyncio.wait_for(self._network_changed.wait(), min(wait, deadline - now))
            except asyncio.TimeoutError:
                pass

    async def _frame_stable(self, page: Page, deadline: float) -> None:
        """Wait until a whole frame passes with no DOM change; where pixels change without DOM
        changes (animations, canvas, video) capture until two consecutive frames are identical."""
        from playwright.async_api import Error as PlaywrightError

        loop = asyncio.get_running_loop()
        while True:
            probe = await self._frame_probe(page)
            if probe is None or probe["pixels"]:
                break
            if not probe["changed"] or loop.time() >= deadline:
                return
        previous = self._last_frame
        while True:
            try:
                frame = await page.screenshot(type="jpeg", scale="css", timeout=_ACTION_TIMEOUT_MS)
            except PlaywrightError:
                self._last_frame = None
                return
            if frame == previous or loop.time() >= deadline:
                self._last_frame = frame
                return
            previous = frame

    # --- anchors --------------------------------------------------------------------------------

    async def anchor(self, x: int, y: int) -> dict[str, Any] | None:
        """The element under (x, y): tag, role, name, text, id, test id, selector, model-space box."""
        from playwright.async_api import Error as PlaywrightError

        if not self._pages:
            return None
        try:
            found = await self.page.evaluate(_ANCHOR_JS, list(self._point(x, y)))
        except PlaywrightError:
            return None  # the page is navigating: there is nothing stable to describe
        if found:
            found["box"] = self._model_box(found["box"])
        return found

    def _model_box(self, box: dict[str, float]) -> dict[str, int]:
        left, top = self.transform.to_model(box["x"], box["y"])
        width, height = self.transform.to_model(box["width"], box["height"])
        return {"x": left, "y": top, "width": width, "height": height}

    async def locate(self, anchor: dict[str, Any]) -> tuple[int, int] | None:
        """Find a recorded element again and return the model-space centre of it, or None.

        Tried in order: the selector (only if it still finds the recorded element: tag, test id
        and name agree), the test id, the id, role and name, the text. Only visible elements of
        the recorded kind count (a heading that shares a button's text is not that button); among
        several the one nearest the recorded box wins. One scrolled out of view is scrolled into it.
        """
        from playwright.async_api import Error as PlaywrightError

        element = anchor.get("element", anchor)
        page = await self._active_page()
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
                point = await self._best_match(locator, element, check_same=kind == "selector")
            except PlaywrightError as exc:
                log.debug("locate by %s failed: %s", kind, exc)
                continue
            if point is not None:
                return point
        return None

    async def _best_match(self, locator: Any, element: dict[str, Any], *, check_same: bool) -> tuple[int, int] | None:
        recorded = element.get("box") or {}
        rx = recorded.get("x", 0) + recorded.get("width", 0) / 2
        ry = recorded.get("y", 0) + recorded.get("height", 0) / 2
        best: tuple[float, Any] | None = None
        for i in range(min(await locator.count(), 10)):
            candidate = locator.nth(i)
            if not await candidate.is_visible():
                continue
            now = await candidate.evaluate(_DESCRIBE_ELEMENT_JS)
            if not _same_kind(element, now) or (check_same and not _agrees(element, now)):
                continue
            box = await candidate.bounding_box()
            if not box:
                continue
            cx, cy = self.transform.to_model(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
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
        x, y = self.transform.to_model(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        return (x, y) if self.transform.contains(x, y) else None


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


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
