"""Following tabs: actions and screenshots go to the newest open tab of the browser context.

A popup or a new tab takes over as it opens; when it closes, the one opened before it is driven
again; when the last one closes, the next action opens a fresh one. Each opening and closing is
reported as a ``tab`` event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from ..errors import EnvironmentError_
from .browser_policy import PolicyEnforcer

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

log = logging.getLogger(__name__)


class Tabs:
    """The open tabs of one browser context in opening order, and each one's CDP session."""

    def __init__(self, enforcer: PolicyEnforcer, emit: Callable[[str, dict[str, Any]], None]) -> None:
        self.pages: list[Page] = []  # opening order; the last one is the one we drive
        self._enforcer = enforcer
        self._emit = emit
        self._context: BrowserContext | None = None
        self._front: Page | None = None
        self._sessions: dict[Page, Any] = {}  # per page: fast screenshots, the policy guard

    def follow(self, context: BrowserContext) -> None:
        self._context = context
        context.on("page", self.add)

    def close(self) -> None:
        """Forget every tab (the browser is going away)."""
        self._context = None
        self.pages.clear()
        self._sessions.clear()
        self._front = None

    @property
    def newest(self) -> Page:
        if self._context is None:
            raise EnvironmentError_("the browser is not running (start() was not called or failed)")
        if not self.pages:
            raise EnvironmentError_("every tab of the browser has been closed")
        return self.pages[-1]

    def add(self, page: Page) -> None:
        if page in self.pages:
            return
        self.pages.append(page)
        page.on("close", self._on_closed)
        self._enforcer.watch(page)
        if len(self.pages) > 1:
            self._emit("tab", {"event": "opened", "url": page.url, "tabs": len(self.pages)})

    def _on_closed(self, page: Page) -> None:
        self._sessions.pop(page, None)
        self._enforcer.forget(page)
        if page not in self.pages:
            return
        self.pages.remove(page)
        current = self.pages[-1].url if self.pages else None
        self._emit("tab", {"event": "closed", "url": page.url, "current": current, "tabs": len(self.pages)})

    async def active(self) -> Page:
        """The newest tab, ready to act on: a fresh one if all were closed, policy in place, in front."""
        if self._context is not None and not self.pages:
            self.add(await self._context.new_page())
        page = self.newest
        await self._enforcer.ready(page)
        if page is not self._front:
            self._front = page
            try:
                await page.bring_to_front()  # matters in a headed browser
            except Exception as exc:
                log.debug("bring_to_front failed: %s", exc)
        return page

    async def session(self, page: Page) -> Any:
        """The page's own CDP session (one per page, made on first use)."""
        session = self._sessions.get(page)
        if session is None:
            session = self._sessions[page] = await page.context.new_cdp_session(page)
        return session

    def drop_session(self, page: Page) -> None:
        self._sessions.pop(page, None)
