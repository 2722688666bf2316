"""One browser for many runs in a process: each kind of browser is opened once, and every run gets
a fresh context of its own (its own cookies, storage, permissions, routes and tabs).

Opt-in: ``shared_browsers()`` puts a pool in place for the code it wraps (``cua demo``, the pytest
plugin's session) and closes it afterwards. A browser environment started outside one opens and
closes its own browser, as it always did. A pool belongs to the event loop it was made in, as
Playwright's objects do.

Two runs share a browser only when everything the browser process itself is given is the same
(``BrowserOpening``): the executable, headless or not, the launch arguments (a domain policy adds
one) and the environment (which leaves out the run's secrets) — or the same remote endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Iterator

from .browser_launch import BrowserOpening, open_browser

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

log = logging.getLogger(__name__)

# Browsers no run is using that are kept open for the next one; an older idle one is closed.
KEEP_IDLE = 2

_current: ContextVar[BrowserPool | None] = ContextVar("cua_browser_pool", default=None)


def current_pool() -> BrowserPool | None:
    """The pool runs started here should take their browser from, if any."""
    pool = _current.get()
    if pool is None or pool.closed:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return pool if pool.loop is loop else None


@asynccontextmanager
async def shared_browsers() -> AsyncIterator[BrowserPool]:
    """Runs started inside share browsers; every one of them is closed on the way out."""
    pool = BrowserPool()
    try:
        with pool.in_use():
            yield pool
    finally:
        await pool.aclose()


@contextmanager
def own_browsers() -> Iterator[None]:
    """Runs started in this block launch (and close) a browser of their own, pool or not."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


@dataclass
class _Entry:
    browser: Browser
    users: int = 0
    last_used: float = field(default=0.0)


class BrowserPool:
    """The browsers of one event loop, by what they were opened with."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.opened = 0  # browsers launched or connected to, for `make bench` and the tests
        self._playwright: Playwright | None = None
        self._entries: dict[tuple, _Entry] = {}
        self._lock = asyncio.Lock()

    @property
    def browsers(self) -> list[Browser]:
        return [entry.browser for entry in self._entries.values()]

    @contextmanager
    def in_use(self) -> Iterator[BrowserPool]:
        """Runs started in this block (this context) take their browsers from this pool."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    async def acquire(self, opening: BrowserOpening) -> Browser:
        """A connected browser opened exactly so; ``release`` it when done."""
        from playwright.async_api import async_playwright

        async with self._lock:
            if self.closed:
                raise RuntimeError("the browser pool is closed")
            entry = self._entries.get(opening.key)
            if entry is not None and not entry.browser.is_connected():  # it crashed or was closed
                del self._entries[opening.key]
                entry = None
            if entry is None:
                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                browser = await open_browser(self._playwright, opening)
                self.opened += 1
                entry = self._entries[opening.key] = _Entry(browser)
            entry.users += 1
            entry.last_used = self.loop.time()
            return entry.browser

    async def release(self, browser: Browser) -> None:
        """A run is done with ``browser`` (its context already closed)."""
        async with self._lock:
            for entry in self._entries.values():
                if entry.browser is browser:
                    entry.users = max(0, entry.users - 1)
                    entry.last_used = self.loop.time()
            idle = sorted((e.last_used, k) for k, e in self._entries.items() if e.users == 0)
            for _, key in idle[: max(0, len(idle) - KEEP_IDLE)]:
                await _close(self._entries.pop(key).browser)

    async def discard(self, browser: Browser) -> None:
        """``browser`` failed a run that was starting (it crashed before anyone noticed): the
        next run gets a new one."""
        async with self._lock:
            for key, entry in list(self._entries.items()):
                if entry.browser is browser:
                    del self._entries[key]
        await _close(browser)

    async def aclose(self) -> None:
        async with self._lock:
            self.closed = True
            entries, self._entries = list(self._entries.values()), {}
            for entry in entries:
                await _close(entry.browser)
            pw, self._playwright = self._playwright, None
            if pw is not None:
                try:
                    await pw.stop()
                except Exception as exc:  # the driver is gone already
                    log.debug("stopping Playwright failed: %s", exc)


async def _close(browser: Browser) -> None:
    try:
        await browser.close()
    except Exception as exc:  # already gone: nothing left to release
        log.debug("closing %r failed: %s", browser, exc)
