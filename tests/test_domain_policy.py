"""The domain policy and goto's schemes against real Chromium and real HTTP on loopback.

Chromium is the oracle: a host is matched as Chromium resolves it, so every spelling of a blocked
host Chromium would open (``localhost.``, ``127.1``, ``[::ffff:127.0.0.1]``, ``BÜCHER.localhost``)
is blocked, and every spelling of an allowed one loads. ``*.localhost`` names resolve to loopback
in Chromium itself, so one server on 127.0.0.1 (and one on ::1) stands behind all of them; it
records the Host header of every request, which proves a blocked request never left the browser.
"""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from cua.actions import Size
from cua.config import RunSettings
from cua.environments.browser import BrowserEnvironment
from cua.environments.browser_launch import find_chromium
from cua.errors import EnvironmentError_
from cua.runner import run_task
from cua.testing.standin import StandIn, Turn

from cli_helpers import clean_env, finish, start_cua
from helpers_loop import API_KEY, run_folder
from test_browser_env import LOAD_IMAGE_JS, Events

pytestmark = pytest.mark.asyncio(loop_scope="module")

if find_chromium() is None:  # pragma: no cover - the dev setup installs it
    pytest.skip("no Chromium installed (make setup)", allow_module_level=True)

DISPLAY = Size(800, 600)


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/page`` (a page titled with its Host), ``/redirect?to=URL`` (302), anything else a text."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.seen.append(self.headers["Host"].rsplit(":", 1)[0])  # type: ignore[attr-defined]
            self.server.paths.append(self.path)  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"<!doctype html><title>page at {self.headers['Host']}</title><p>hello".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server:
    """One loopback HTTP server; ``seen`` is the host of every request it answered."""

    def __init__(self, address: str) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        server_class = type("Server", (http.server.ThreadingHTTPServer,), {"address_family": family})
        self._server = server_class((address, 0), _Handler)
        self._server.daemon_threads = True
        self._server.seen = []  # type: ignore[attr-defined]
        self._server.paths = []  # type: ignore[attr-defined]
        self._server.lock = threading.Lock()  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, host: str, path: str = "/page") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def seen(self) -> list[str]:
        with self._server.lock:  # type: ignore[attr-defined]
            return list(self._server.seen)  # type: ignore[attr-defined]

    def host_of(self, path: str) -> list[str]:
        """The hosts that requests for ``path`` came under (a late favicon request is not one)."""
        with self._server.lock:  # type: ignore[attr-defined]
            pairs = zip(self._server.seen, self._server.paths)  # type: ignore[attr-defined]
            return [host for host, seen_path in pairs if seen_path == path]

    def clear(self) -> None:
        with self._server.lock:  # type: ignore[attr-defined]
            self._server.seen.clear()  # type: ignore[attr-defined]
            self._server.paths.clear()  # type: ignore[attr-defined]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def v4() -> Iterator[_Server]:
    server = _Server("127.0.0.1")
    yield server
    server.close()


@pytest.fixture(scope="module")
def v6() -> Iterator[_Server]:
    server = _Server("::1")
    yield server
    server.close()


@pytest.fixture(scope="module")
def other_v4() -> Iterator[_Server]:
    """A second loopback address, for pages when 127.0.0.1 itself is blocked."""
    server = _Server("127.0.0.2")
    yield server
    server.close()


# --- hosts ----------------------------------------------------------------------------------------

# Spellings of loopback hosts Chromium opens, and spellings of hosts on ::1.
V4_SPELLINGS = [
    "LOCALHOST", "localhost.", "Sub.LocalHost.", "%6c%6fcalhost", "ｌｏｃａｌｈｏｓｔ", "127.1", "0x7f.0.0.1",
    "2130706433", "0177.0.0.1", "127.0.0.1.", "0x7f.1", "[::ffff:127.0.0.1]", "bücher.localhost",
    "BÜCHER.localhost.", "xn--bcher-kva.localhost", "faß.localhost", "ςa.localhost",
]
V6_SPELLINGS = ["[::1]", "[0:0:0:0:0:0:0:1]", "[0::01]"]


async def test_hosts_are_canonical_the_way_chromium_resolves_them(v4: _Server, v6: _Server) -> None:
    """Each spelling loaded in real Chromium: the host the page ends up on (``location.hostname``)
    is the host the policy compares, and the request reached the server under that name."""
    from cua.environments.domain_policy import canonical_host

    environment = BrowserEnvironment(display=DISPLAY)
    async with environment:
        page = environment.page
        for server, spellings in ((v4, V4_SPELLINGS), (v6, V6_SPELLINGS)):
            for number, spelling in enumerate(spellings):
                path = f"/page?spelling={number}"  # one path each: the request is found by it
                await page.goto(server.url(spelling, path))
                chromium = await page.evaluate("location.hostname")
                expected = chromium.strip("[]").rstrip(".")
                if expected.startswith("::ffff:"):  # IPv4-mapped: it reaches the IPv4 address
                    expected = "127.0.0.1"
                assert canonical_host(spelling) == expected, f"{spelling!r}: Chromium opened {chromium!r}"
                assert canonical_host(chromium) == expected
                assert server.host_of(path) == [chromium]


async def test_block_list_stops_every_spelling_of_its_host(v4: _Server) -> None:
    """``--block-domain localhost``: a trailing dot, upper case or escapes do not get past it, on
    goto, on a page's own navigation, or at a subresource's redirect hop (Chromium's patterns)."""
    log = Events()
    environment = BrowserEnvironment(display=DISPLAY, on_event=log, block_domains=["localhost"])
    async with environment:
        await environment.page.goto(v4.url("127.0.0.1"))
        v4.clear()
        for spelling in ("localhost.", "LOCALHOST.", "sub.localhost.", "%6c%6fcalhost."):
            with pytest.raises(EnvironmentError_, match="blocked by the domain policy"):
                await environment.goto(v4.url(spelling))
        page = environment.page
        hops = [await page.evaluate(LOAD_IMAGE_JS, "/redirect?to=" + v4.url(host, "/data"))
                for host in ("localhost.", "LOCALHOST", "a.LocalHost.")]
        await page.evaluate("url => { location.href = url }", v4.url("localhost."))
        await environment.settle()
        assert page.url.startswith("chrome-error:"), "the page shows Chromium's blocked-request error"
    assert hops == ["refused"] * 3
    assert v4.seen == ["127.0.0.1"] * 3, "only the redirects themselves reached the server"
    assert {e["reason"] for e in log.of("blocked")} == {"block list"}
    assert not log.of("unblocked_redirect")


async def test_block_list_of_addresses_and_idn_names(v4: _Server, v6: _Server, other_v4: _Server) -> None:
    """Rules written in any form Chromium takes: ``0x7f.1`` is 127.0.0.1 (and so is the IPv4-mapped
    ``[::ffff:127.0.0.1]``, which reaches it), ``0:0:0:0:0:0:0:1`` is ::1, ``BÜCHER.localhost`` is
    the punycode name the browser sends."""
    log = Events()
    environment = BrowserEnvironment(display=DISPLAY, on_event=log,
                                     block_domains=["0x7f.1", "0:0:0:0:0:0:0:1", "BÜCHER.localhost"])
    async with environment:
        await environment.page.goto(other_v4.url("127.0.0.2"))
        v4.clear()
        v6.clear()
        for url in (v4.url("127.0.0.1"), v4.url("2130706433"), v4.url("[::ffff:7f00:1]"), v6.url("[::1]"),
                    v4.url("xn--bcher-kva.localhost"), v4.url("sub.bücher.localhost.")):
            with pytest.raises(EnvironmentError_, match="blocked by the domain policy"):
                await environment.goto(url)
        page = environment.page
        hops = [await page.evaluate(LOAD_IMAGE_JS, "/redirect?to=" + url)
                for url in (v4.url("[::ffff:127.0.0.1]", "/data"), v6.url("[::1]", "/data"),
                            v4.url("xn--bcher-kva.localhost.", "/data"))]
    assert hops == ["refused"] * 3
    assert v4.seen == [] and v6.seen == []
    assert not log.of("unblocked_redirect")


async def test_allow_list_admits_every_spelling_of_its_host(v4: _Server) -> None:
    """``--allow-domain *.localhost`` covers localhost itself (as documented) and its subdomains,
    with a trailing dot and in any case, at a redirect hop too; 127.0.0.1 stays outside."""
    log = Events()
    environment = BrowserEnvironment(display=DISPLAY, on_event=log, allow_domains=["*.localhost"],
                                     start_url=v4.url("localhost."))
    async with environment:
        assert await environment.page.title() == f"page at localhost.:{v4.port}"
        await environment.goto(v4.url("BÜCHER.Localhost."))
        assert await environment.page.title() == f"page at xn--bcher-kva.localhost.:{v4.port}"
        hop = await environment.page.evaluate(LOAD_IMAGE_JS, "/redirect?to=" + v4.url("SUB.localhost.", "/data"))
        v4.clear()
        with pytest.raises(EnvironmentError_, match="not in allow list"):
            await environment.goto(v4.url("127.0.0.1"))
    assert hop == "refused"  # not an image, but it was fetched
    assert v4.seen == []
    assert [e["url"] for e in log.of("blocked")] == [v4.url("127.0.0.1")]


async def test_a_rule_that_is_no_host_is_a_usage_error(tmp_path: Path) -> None:
    """A wildcard inside a name, or a rule with no host at all (``*`` used to block nothing), or
    a scheme that is no scheme: exit 2 with a sentence, before any browser starts."""
    env = clean_env(OPENAI_API_KEY="sk-test")
    base = ["run", "--task", "t", "--base-url", "http://127.0.0.1:9/v1", "--start-url", "about:blank"]
    for flags, message in (
        (["--block-domain", "ex*ample.com"], "block list entry 'ex*ample.com': a * may only stand for all subdomains"),
        (["--allow-domain", "*"], "allow list entry '*': a * may only"),
        (["--allow-domain", "exa mple.com"], "allow list entry 'exa mple.com' is not a domain or an IP address"),
        (["--allow-scheme", "fi le"], "allow_schemes"),
    ):
        done = finish(start_cua(base + flags, env, tmp_path), timeout=60)
        assert done.code == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


# --- schemes a model's goto may open --------------------------------------------------------------


async def _run_gotos(out: Path, start: str, urls: list[str], **settings: Any) -> tuple[Any, list[dict], list]:
    """A run whose model calls goto on each of ``urls`` (the runner builds the browser)."""
    server = StandIn(api_key=API_KEY)
    server.turns = [Turn.function_call("goto", {"url": url}) for url in urls] + [Turn.message("done")]
    events: list[tuple[str, dict[str, Any]]] = []
    run_settings = RunSettings(task="go places", display="800x600", start_url=start, out=out, wait_ms=100,
                               model="gpt-5.4", navigation_tools=True, **settings)
    with server:
        result = await run_task(run_settings, api_key=API_KEY, base_url=server.base_url,
                                on_env_event=lambda kind, data: events.append((kind, data)))
    _, steps = run_folder(result.run_dir)
    return result, [f for step in steps for f in step.get("functions") or []], events


async def test_goto_refuses_documents_that_are_not_web_pages(v4: _Server, tmp_path: Path) -> None:
    """A model's goto to a local file, the browser's own pages or a document it writes itself is
    refused: the model is told so in the function's output, the run goes on, the trace keeps it."""
    secret = tmp_path / "secret.html"
    secret.write_text("<title>secret</title>")
    refused = [secret.as_uri(), "chrome://version", "devtools://devtools/bundled/inspector.html",
               "javascript:document.title='ran'", " JAVA\tSCRIPT:document.title='ran'",
               "data:text/html,<title>written</title>", "view-source:" + v4.url("127.0.0.1"), "about:version",
               "blob:" + v4.url("127.0.0.1", "/x"), "filesystem:" + v4.url("127.0.0.1", "/temporary/x")]
    result, calls, events = await _run_gotos(tmp_path / "runs", v4.url("127.0.0.1"), refused + ["about:blank"])

    assert (result.status, result.exit_code) == ("completed", 0)
    outputs = [call["output"] for call in calls]
    assert all("goto refused" in out and "--allow-scheme" in out for out in outputs[:-1]), outputs
    assert "--allow-scheme file" in outputs[0] and "--allow-scheme javascript" in outputs[4]
    assert outputs[-1] == "null", "about:blank opens"
    assert result.final_url == "about:blank"
    cleaned = [*refused[:4], "JAVASCRIPT:document.title='ran'", *refused[5:]]  # as Chromium reads it
    assert [data["url"] for kind, data in events if kind == "blocked"] == cleaned


async def test_goto_opens_a_scheme_the_user_allowed(v4: _Server, tmp_path: Path) -> None:
    page = tmp_path / "notes.html"
    page.write_text("<title>notes</title>")
    result, calls, _ = await _run_gotos(tmp_path / "runs", v4.url("127.0.0.1"), [page.as_uri(), "data:,x"],
                                        allow_schemes=["FILE:"])
    assert (result.status, result.exit_code) == ("completed", 0)
    assert calls[0]["output"] == "null" and "--allow-scheme data" in calls[1]["output"]
    assert result.final_url == page.as_uri()


# --- what pages themselves open -------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guarded() -> Any:
    environment = BrowserEnvironment(display=DISPLAY, on_event=Events(), block_domains=["blocked.invalid"])
    async with environment:
        yield environment


async def test_a_redirect_to_another_scheme_is_refused_under_a_policy(guarded: BrowserEnvironment,
                                                                      v4: _Server) -> None:
    """Chromium refuses a redirect to file:, javascript:, data:, chrome: (ERR_UNSAFE_REDIRECT); a
    domain policy, which fetches navigations itself, refuses them the same way instead of opening
    them from a stand-in page of the redirecting site."""
    for target in ("javascript:document.title='ran'", "file:///etc/hostname", "data:text/html,<title>ran</title>",
                   "chrome://version"):
        with pytest.raises(EnvironmentError_, match="ERR_UNSAFE_REDIRECT|ERR_ABORTED"):
            await guarded.goto(v4.url("127.0.0.1", "/redirect?to=") + target)
        await guarded.settle()
        assert not (await guarded.page.title()).endswith("ran")
        assert not (await guarded.current_url() or "").startswith(("file:", "data:", "chrome:"))


async def test_pages_cannot_open_local_or_browser_documents(guarded: BrowserEnvironment, v4: _Server) -> None:
    """What Chromium does itself for a web page: a popup or a navigation of the page to file:,
    chrome:, data: or view-source: is not opened (no tab, the page stays where it was)."""
    start = v4.url("127.0.0.1")
    for script in ("window.open('file:///etc/hostname')", "location.href = 'file:///etc/hostname'",
                   "window.open('chrome://version')", "location.href = 'chrome://version'",
                   "window.open('data:text/html,<title>ran</title>')",
                   "location.href = 'data:text/html,<title>ran</title>'", "window.open('view-source:' + location.href)"):
        await guarded.goto(start)
        await guarded.page.evaluate(f"() => {{ {script} }}")
        await guarded.settle()
        assert len(guarded._tabs.pages) == 1 and guarded.page.url == start, script
