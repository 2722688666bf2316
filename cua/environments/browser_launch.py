"""Opening the browser: finding Chromium and launching it with our arguments, or attaching to a
running one over CDP or a Playwright browser server."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Iterable

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


async def open_browser(
    pw: Playwright,
    *,
    cdp_url: str | None,
    ws_endpoint: str | None,
    chromium_path: str | None,
    headless: bool,
    extra_args: Iterable[str],
    under_policy: bool,
    env: dict[str, str],
) -> Browser:
    """Attach to ``cdp_url`` or ``ws_endpoint`` when given, else launch Chromium with ``env``."""
    from playwright.async_api import Error as PlaywrightError

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
    path = find_chromium(chromium_path)
    args = [*DEFAULT_ARGS, *extra_args]
    if under_policy:
        # Pages the policy fetches itself (browser_policy.py) look public to Chromium, whose
        # local-network checks would then refuse a local app's requests to itself (its WebSocket,
        # another port); under a domain policy, which hosts may be reached is the policy's to say.
        args.append("--disable-features=LocalNetworkAccessChecks")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    try:
        return await pw.chromium.launch(executable_path=path, headless=headless, args=args, env=env)
    except PlaywrightError as exc:
        where = path or "Playwright's own Chromium"
        raise EnvironmentError_(
            f"could not launch Chromium ({where}): {first_line(exc)}; {INSTALL_HINT}"
        ) from None
