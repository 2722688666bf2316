"""When a browser page is settled: navigation done, network quiet, rendering still.

Every part is capped, so a page that never goes quiet costs a bounded time per step; when nothing
changed, settling costs one frame and one capture (a few tens of ms).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .browser_launch import ACTION_TIMEOUT_MS
from .browser_scripts import FRAME_PROBE_JS, PAGE_STATE_JS

if TYPE_CHECKING:
    from playwright.async_api import Page, Request

SETTLE_CAP_S = 5.0
NETWORK_QUIET_S = 0.1  # the network must have been idle this long
FRAME_CAP_S = 0.6  # give up waiting for two identical frames (animations) after this
_TICK_TIMEOUT_S = 0.25  # a hidden tab does not render frames
# Requests older than this are long-lived (polling, streaming) and no longer waited for.
_LONG_REQUEST_S = SETTLE_CAP_S
_UNWAITED_TYPES = frozenset({"websocket", "eventsource", "media"})


class PageSettler:
    """Settles the newest of ``pages`` (the environment's open tabs, newest last, kept up to date
    by it) and tracks the context's requests in flight for that."""

    def __init__(self, pages: list[Page]) -> None:
        self._pages = pages
        self._inflight: dict[Request, float] = {}
        self._last_network = 0.0
        self._network_changed = asyncio.Event()
        self._last_frame: bytes | None = None
        # After a settle: (page, "document:mutation count", time of the last network event).
        self._settled: tuple[Page, str, float] | None = None

    def on_request(self, request: Request) -> None:
        loop = asyncio.get_running_loop()
        self._last_network = loop.time()
        if request.resource_type not in _UNWAITED_TYPES:
            self._inflight[request] = self._last_network
        self._network_changed.set()

    def on_request_done(self, request: Request) -> None:
        self._last_network = asyncio.get_running_loop().time()
        self._inflight.pop(request, None)
        self._network_changed.set()

    def forget_requests(self) -> None:
        self._inflight.clear()

    async def changed_since_settled(self, page: Page) -> bool:
        """Whether ``page`` changed after the fast settle that preceded this (its DOM, or the
        network): then the page was still busy (a timer, a late render) and needs a proper settle.
        Either way the mark of that settle is used up."""
        settled, self._settled = self._settled, None
        if settled is None or settled[0] is not page:
            return False
        state = await self._page_state(page)
        busy = self._inflight or self._last_network > settled[2]
        return bool(busy or state is None or state["mutations"] != settled[1])

    def drop_mark(self) -> None:
        """Forget the last settle, so the next screenshot does not trust it."""
        self._settled = None

    async def settle(self) -> None:
        """Wait for what the last actions started: navigation, network, rendering."""
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
            return await asyncio.wait_for(page.evaluate(PAGE_STATE_JS), _TICK_TIMEOUT_S)
        except Exception:  # navigating, hidden or closed: no fast path
            return None

    async def _frame_probe(self, page: Page) -> dict[str, bool] | None:
        try:
            return await asyncio.wait_for(page.evaluate(FRAME_PROBE_JS), _TICK_TIMEOUT_S)
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
                frame = await page.screenshot(type="jpeg", scale="css", timeout=ACTION_TIMEOUT_MS)
            except PlaywrightError:
                self._last_frame = None
                return
            if frame == previous or loop.time() >= deadline:
                self._last_frame = frame
                return
            previous = frame
