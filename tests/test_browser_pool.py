"""Runs that share one browser (``shared_browsers``: `cua demo`, the pytest plugin's session) each
get a context of their own: what one run leaves in its storage, its cookies, its permissions or
its routes is not there for the next. A crashed browser is replaced, a run with secrets never
shares a browser whose environment holds them, and nothing is left running after the pool.
`cua demo` runs in a remote browser server when given one."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cli_helpers import clean_env, finish, start_cua
from test_browser_env import browser_server  # noqa: F401 - a fixture: a Playwright browser server

from cua.environments.browser import BrowserEnvironment
from cua.environments.browser_pool import current_pool, shared_browsers
from cua.errors import EnvironmentError_


def chromium_pids() -> set[int]:
    """Browser (not renderer) processes of Chromium started by this test process's drivers."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"chromium") and not any(a.startswith(b"--type=") for a in cmd) \
                and f"CUA_POOL_TEST={os.getpid()}".encode() in environ:
            found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def marked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Browsers launched by this test carry the mark, so they can be told from the suite's others."""
    monkeypatch.setenv("CUA_POOL_TEST", str(os.getpid()))


async def test_runs_share_one_chromium_but_not_storage_cookies_or_permissions(pages_server: str) -> None:
    url = f"{pages_server}/loop.html"
    async with shared_browsers() as pool:
        async with BrowserEnvironment(start_url=url) as first:
            await first.page.evaluate("() => { localStorage.setItem('left', 'behind'); "
                                      "document.cookie = 'left=behind; max-age=600'; }")
            await first.context.grant_permissions(["geolocation"], origin=pages_server)
            assert await first.page.evaluate("() => localStorage.getItem('left')") == "behind"
            assert len(chromium_pids()) == 1
        async with BrowserEnvironment(start_url=url) as second:
            seen = await second.page.evaluate(
                "async () => ({storage: localStorage.getItem('left'), cookie: document.cookie, "
                "geo: (await navigator.permissions.query({name: 'geolocation'})).state})")
            assert seen == {"storage": None, "cookie": "", "geo": "prompt"}
            assert len(chromium_pids()) == 1, "the second run used the first run's Chromium"
        assert pool.opened == 1
    assert chromium_pids() == set(), "the pool closed its browser"


async def test_a_domain_policy_of_one_run_is_not_the_next_runs(pages_server: str) -> None:
    """A policy is a route on the run's context (and a launch argument): the run after a blocked
    one, without a policy, reaches the host the first could not."""
    localhost = pages_server.replace("127.0.0.1", "localhost")
    async with shared_browsers() as pool:
        async with BrowserEnvironment(start_url=f"{pages_server}/loop.html", allow_domains=["127.0.0.1"]) as strict:
            with pytest.raises(EnvironmentError_, match="domain policy"):
                await strict.goto(f"{localhost}/loop.html")
            assert "localhost" not in (await strict.current_url() or "")
        async with BrowserEnvironment(start_url=f"{localhost}/loop.html") as free:
            assert (await free.current_url() or "").startswith(localhost)
            assert await free.page.evaluate("() => document.title") != ""
        assert pool.opened == 2, "a policy launches with its own argument, so it has its own browser"


async def test_a_crashed_shared_browser_is_replaced(pages_server: str) -> None:
    async with shared_browsers() as pool:
        async with BrowserEnvironment(start_url=f"{pages_server}/loop.html"):
            (pid,) = chromium_pids()
        os.kill(pid, 9)
        for _ in range(100):
            if pid not in chromium_pids():
                break
            await asyncio.sleep(0.05)
        async with BrowserEnvironment(start_url=f"{pages_server}/loop.html") as again:
            assert await again.page.evaluate("() => location.pathname") == "/loop.html"
        assert pool.opened == 2


async def test_a_run_with_secrets_gets_a_browser_without_them(
    pages_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run's Chromium inherited the variable; the run that declares it a secret must not
    run in that browser, whose environment still holds it."""
    monkeypatch.setenv("CUA_POOL_TEST_SECRET", "zq-pool-secret-7731")
    async with shared_browsers() as pool:
        async with BrowserEnvironment(start_url=f"{pages_server}/loop.html"):
            pass
        secretive = BrowserEnvironment(start_url=f"{pages_server}/loop.html")
        secretive.secrets = frozenset({"zq-pool-secret-7731"})
        async with secretive:
            holders = [pid for pid in chromium_pids()
                       if b"zq-pool-secret-7731" in Path(f"/proc/{pid}/environ").read_bytes()]
            assert len(chromium_pids()) == 2 and len(holders) == 1
        assert pool.opened == 2


def test_outside_a_pool_each_run_has_its_own_browser(pages_server: str) -> None:
    async def alone() -> None:
        assert current_pool() is None
        async with BrowserEnvironment(start_url=f"{pages_server}/loop.html"):
            assert len(chromium_pids()) == 1
        assert chromium_pids() == set()

    asyncio.run(alone())


def test_cua_demo_runs_in_a_browser_server_and_launches_nothing(browser_server: str, tmp_path: Path) -> None:
    """No Chromium can be launched here (CUA_CHROMIUM names none): the demo passes only because
    every scenario and the healed replay ran in the server."""
    env = clean_env(CUA_CHROMIUM=str(tmp_path / "no-chromium-here"))
    done = finish(start_cua(["demo", "--out", str(tmp_path / "demo"), "--ws-endpoint", browser_server],
                            env, tmp_path), timeout=180)
    assert done.code == 0, done.stderr
    assert "8 of 8 passed" in done.stderr
    both = finish(start_cua(["demo", "--ws-endpoint", browser_server, "--cdp-url", "http://127.0.0.1:9"],
                            env, tmp_path), timeout=60)
    assert both.code == 2 and "not allowed with argument" in both.stderr and "Traceback" not in both.stderr
