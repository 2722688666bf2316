"""A domain policy enforced on the network of a Playwright browser context.

Every request of every page, frame and popup goes through Playwright's routing, WebSockets through
their own routing; navigations are fetched here one hop at a time, so a redirect to a blocked host
is refused. The redirect hops of subresources never reach the routing: Chromium itself refuses
those, given the policy's patterns over CDP for every page and for every frame that runs in a
process of its own. The rules themselves are domain_policy.py's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from html import escape as html_escape
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urljoin, urlsplit

from ..errors import first_line
from .domain_policy import WEB_SCHEMES, DomainPolicy

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Frame, Page, Request, Route, WebSocketRoute

log = logging.getLogger(__name__)


def _redirect_stub(target: str) -> str:
    url = html_escape(target, quote=True)
    return (
        f'<!doctype html><meta http-equiv="refresh" content="0;url={url}">'
        f"<script>location.replace({_js_string(target)})</script>"
    )


def _js_string(text: str) -> str:
    return json.dumps(text).replace("<", "\\u003c")


class PolicyEnforcer:
    """Enforces ``policy`` on one browser context; does nothing while the policy is empty.

    ``emit`` reports what was blocked (``blocked``) and what got through (``unblocked_redirect``);
    ``session`` gives a page's own CDP session, shared with the environment.
    """

    def __init__(
        self,
        policy: DomainPolicy,
        emit: Callable[[str, dict[str, Any]], None],
        session: Callable[[Page], Awaitable[Any]],
    ) -> None:
        self.policy = policy
        self._emit = emit
        self._session = session
        self._context: BrowserContext | None = None
        self._guards: dict[Page, asyncio.Task[None]] = {}  # per page
        self._aborted: set[Request] = set()  # requests _block aborted, until they report failing
        self.frame_sessions: dict[Frame, Any] = {}  # frames in processes of their own, guarded
        self._frame_guards: set[asyncio.Task[None]] = set()

    async def attach(self, context: BrowserContext) -> None:
        """Route every request and WebSocket of ``context`` through the policy."""
        if not self.policy:
            return
        self._context = context
        await context.route("**/*", self._route)
        # WebSockets bypass context.route(); they have a routing of their own.
        await context.route_web_socket(lambda url: True, self._route_web_socket)

    def watch(self, page: Page) -> None:
        """Guard a new page, and each frame of it that navigates."""
        if not self.policy:
            return
        self._guards[page] = asyncio.get_running_loop().create_task(self._guard(page))
        page.on("framenavigated", self._on_frame_navigated)
        page.on("framedetached", lambda frame: self.frame_sessions.pop(frame, None))

    def forget(self, page: Page) -> None:
        guard = self._guards.pop(page, None)
        if guard is not None:
            guard.cancel()

    async def ready(self, page: Page) -> None:
        """Wait until Chromium took the policy for ``page`` (a new tab's guard is a task)."""
        guard = self._guards.get(page)
        if guard is not None and not guard.done():
            await asyncio.shield(guard)

    def close(self) -> None:
        """Cancel every guard and forget the context (the browser is going away)."""
        self._context = None
        for guard in [*self._guards.values(), *self._frame_guards]:
            guard.cancel()
        self._guards.clear()
        self._frame_guards.clear()
        self.frame_sessions.clear()
        self._aborted.clear()

    # --- what the context reports -----------------------------------------------------------------

    def on_request_finished(self, request: Request) -> None:
        if self.policy and (reason := self.policy.blocked_reason(request.url)):
            # Only a redirect hop gets here: routing never saw it, and Chromium did not stop it
            # (requests made before a page's or frame's guard landed).
            self._emit("unblocked_redirect", self._request_event(request, reason))

    def on_request_failed(self, request: Request) -> None:
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

    # --- Chromium's own blocking, for the hops routing cannot see ---------------------------------

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
                            "subresources are only reported, not stopped", first_line(exc))

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
        old, self.frame_sessions[frame] = self.frame_sessions.get(frame), session
        try:
            await self._block_in_chromium(session)
            if old is not None:
                await old.detach()
        except PlaywrightError as exc:
            log.debug("could not guard the frame at %s: %s", frame.url, exc)

    async def _block_in_chromium(self, session: Any) -> None:
        await session.send("Network.enable")
        await session.send("Network.setBlockedURLs", {"urlPatterns": self.policy.chromium_patterns()})

    # --- Playwright's routing -----------------------------------------------------------------------

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
