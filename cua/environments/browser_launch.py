"""Opening the browser: finding Chromium and launching it with our arguments, or attaching to a
running one over CDP or a Playwright browser server."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import EnvironmentError_, first_line

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

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
CONNECT_TIMEOUT_MS = 15_000
ACTION_TIMEOUT_MS = 15_000  # the context's default for every Playwright call


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


@dataclass(frozen=True)
class BrowserOpening:
    """Everything the browser process itself is opened with: runs that agree on all of it may
    share one browser (browser_pool.py), each in a context of its own."""

    cdp_url: str | None = None
    ws_endpoint: str | None = None
    chromium_path: str | None = None
    headless: bool = True
    extra_args: tuple[str, ...] = ()
    under_policy: bool = False
    # The browser's environment as sorted pairs (hashable); None: this process's own.
    env: tuple[tuple[str, str], ...] | None = None

    @property
    def key(self) -> tuple:
        if self.cdp_url or self.ws_endpoint:  # a remote browser: launched by someone else
            return ("remote", self.cdp_url, self.ws_endpoint)
        return ("launch", self.chromium_path, self.headless, self.extra_args, self.under_policy, self.env)


async def open_browser(pw: Playwright, opening: BrowserOpening) -> Browser:
    """Attach to the CDP URL or Playwright server of ``opening`` when given, else launch Chromium."""
    from playwright.async_api import Error as PlaywrightError

    cdp_url, ws_endpoint = opening.cdp_url, opening.ws_endpoint
    if cdp_url:
        try:
            return await pw.chromium.connect_over_cdp(cdp_url, timeout=CONNECT_TIMEOUT_MS)
        except PlaywrightError as exc:
            raise EnvironmentError_(
                f"could not connect to the browser over CDP at {cdp_url}: {first_line(exc)}"
            ) from None
    if ws_endpoint:
        try:
            return await pw.chromium.connect(ws_endpoint, timeout=CONNECT_TIMEOUT_MS)
        except PlaywrightError as exc:
            raise EnvironmentError_(
                f"could not connect to the Playwright browser server at {ws_endpoint}: "
                f"{first_line(exc)}"
            ) from None
    path = find_chromium(opening.chromium_path)
    args = [*DEFAULT_ARGS, *opening.extra_args]
    if opening.under_policy:
        # Pages the policy fetches itself (browser_policy.py) look public to Chromium, whose
        # local-network checks would then refuse a local app's requests to itself (its WebSocket,
        # another port); under a domain policy, which hosts may be reached is the policy's to say.
        args.append("--disable-features=LocalNetworkAccessChecks")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    try:
        return await pw.chromium.launch(executable_path=path, headless=opening.headless, args=args,
                                        env=None if opening.env is None else dict(opening.env))
    except PlaywrightError as exc:
        where = path or "Playwright's own Chromium"
        raise EnvironmentError_(
            f"could not launch Chromium ({where}): {first_line(exc)}; {INSTALL_HINT}"
        ) from None
