"""The Playwright browser environment against real headless Chromium and real HTTP on loopback.

The pages under tests/pages record what they see (``window.events``, ``window.clicks``); the tests
act through the environment and read the page's own account back. One launched browser serves most
tests (fresh navigation per test); a Playwright browser server and a CDP-debuggable Chromium are
started once each for the connection tests, the 2× test and the domain-policy tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from PIL import Image

from cua.actions import Size
from cua.environments.browser import BrowserEnvironment
from cua.environments.browser_launch import find_chromium
from cua.environments.domain_policy import DomainPolicy
from cua.errors import EnvironmentError_, ModelOutputError

pytestmark = pytest.mark.asyncio(loop_scope="module")

DISPLAY = Size(800, 600)
CHROMIUM = find_chromium()
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"] + (["--no-sandbox"] if os.geteuid() == 0 else [])

if CHROMIUM is None:  # pragma: no cover - the dev setup installs it
    pytest.skip("no Chromium installed (make setup)", allow_module_level=True)


class Events:
    """An ``on_event`` callback that keeps what it was told."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.items.append((kind, data))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in self.items if k == kind]


async def until(predicate: Callable[[], Any], what: str, timeout: float = 5.0) -> None:
    """Wait for state the test cannot get a page promise for (which tab is current, events)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# --- servers ------------------------------------------------------------------------------------


class _DynamicHandler(http.server.BaseHTTPRequestHandler):
    """Responses a static folder cannot give: delays, redirects, a WebSocket that says hello."""

    seen: list[tuple[str, str]] = []  # (Host header, path) of every request that reached it

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.seen.append((self.headers["Host"], self.path))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/ws":
            self._websocket_hello()
            return
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path == "/slow":
            time.sleep(int(query.get("ms", "300")) / 1000)
            body = "<!doctype html><title>slow</title><p id=done>loaded slowly</p>"
        elif parts.path == "/data":
            time.sleep(int(query.get("ms", "300")) / 1000)
            body = '{"ok": true}'
        elif parts.path == "/start":
            body = """<!doctype html><title>start</title><style>body{margin:0}
              a,button{position:absolute;left:20px;width:200px;height:40px;display:block}</style>
              <a id=go href="/slow?ms=400" style="top:20px">go slowly</a>
              <button id=fetch style="top:100px" onclick="fetch('/data?ms=300').then(r => r.json())
                .then(() => { document.getElementById('out').textContent = 'fetched' })">fetch</button>
              <p id=out style="position:absolute;top:200px">waiting</p>"""
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if parts.path == "/data" else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _websocket_hello(self) -> None:
        """The RFC 6455 handshake, one text frame "hello", then hold the line a moment."""
        accept = base64.b64encode(hashlib.sha1(
            (self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()
        ).digest()).decode()
        self.wfile.write(  # written out: the handler speaks HTTP/1.0, a WebSocket needs 1.1
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            + bytes([0x81, 5]) + b"hello")  # a frame: FIN + text, 5 bytes, unmasked
        self.wfile.flush()
        time.sleep(0.5)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def dynamic_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DynamicHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _wait_for_line(path: Path, marker: str, proc: subprocess.Popen, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if marker in line:
                return line
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError(f"no {marker!r} line from {proc.args[0]}: {path.read_text(errors='replace')[-800:]}")


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and everything it started."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + wait  # the group's other members exit after its leader
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Playwright browser server (what ``launchServer`` gives in Node), through the driver CLI."""
    folder = tmp_path_factory.mktemp("browser-server")
    config = folder / "config.json"
    config.write_text(json.dumps({"executablePath": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}))
    out = folder / "out.txt"
    with out.open("w") as sink:
        # Its own process group: the wrapper starts Playwright's driver, which starts Chromium, and
        # stopping the wrapper alone would leave both running after the tests.
        proc = subprocess.Popen(
            [sys.executable, "-m", "playwright", "launch-server", "--browser", "chromium", "--config", str(config)],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield _wait_for_line(out, "ws://", proc).strip()
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def cdp_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Chromium started by hand with a DevTools port; its browser websocket URL."""
    folder = tmp_path_factory.mktemp("cdp-browser")
    err = folder / "stderr.txt"
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={folder / 'profile'}", *CHROMIUM_ARGS, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True,
        )
    try:
        line = _wait_for_line(err, "DevTools listening on ", proc)
        yield line.split("DevTools listening on ", 1)[1].strip()
    finally:
        stop_group(proc)


# --- environments -------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> Any:
    environment = BrowserEnvironment(display=DISPLAY, on_event=Events())
    async with environment:
        yield environment


async def open_page(environment: BrowserEnvironment, url: str) -> Any:
    """A clean start for a test: one tab, on ``url``, settled."""
    while len(environment._tabs.pages) > 1:
        await environment._tabs.pages[-1].close()
    await environment.goto(url)
    await environment.settle()
    return environment.page


async def center(page: Any, selector: str) -> tuple[int, int]:
    box = await page.locator(selector).bounding_box()
    return round(box["x"] + box["width"] / 2), round(box["y"] + box["height"] / 2)


async def events(page: Any, type_: str | None = None) -> list[dict[str, Any]]:
    found = await page.evaluate("window.events")
    return [e for e in found if type_ is None or e.get("type") == type_]


# --- mouse --------------------------------------------------------------------------------------


async def test_click_each_button_and_held_modifiers(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/actions.html")
    x, y = await center(page, "#target")

    await env.click(x, y)
    await env.click(x, y, "left", ["shift"])
    await env.click(x, y, "left", ["CTRL", "alt"])
    await env.click(x, y, "right")
    await env.click(x, y, "wheel")
    await env.click(x, y)  # modifiers of the earlier clicks were released

    clicks = await events(page, "click")
    assert [(c["button"], c["shift"], c["ctrl"], c["alt"]) for c in clicks] == [
        (0, False, False, False), (0, True, False, False), (0, False, True, True), (0, False, False, False),
    ]
    assert (clicks[0]["x"], clicks[0]["y"]) == (x, y)
    assert [e["button"] for e in await events(page, "contextmenu")] == [2]
    assert [e["button"] for e in await events(page, "auxclick")] == [2, 1]  # right, then middle
    assert [e["button"] for e in await events(page, "mousedown")] == [0, 0, 0, 2, 1, 0]


async def test_back_and_forward_buttons_walk_history(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/history_a.html")
    await env.click(*await center(page, "#next"))
    await env.settle()
    assert (await env.current_url()).endswith("/history_b.html")

    await env.click(400, 300, "back")
    await env.settle()
    assert (await env.current_url()).endswith("/history_a.html")
    assert await page.title() == "A"

    await env.click(400, 300, "forward")
    await env.settle()
    assert (await env.current_url()).endswith("/history_b.html")

    await env.back()
    await env.settle()
    assert (await env.current_url()).endswith("/history_a.html")
    await env.forward()
    await env.settle()
    assert (await env.current_url()).endswith("/history_b.html")


async def test_double_click_and_move(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/actions.html")
    x, y = await center(page, "#target")
    await env.move(x, y, ["shift"])
    await env.double_click(x, y)
    assert (await events(page, "mouseover"))[0]["shift"] is True
    assert len(await events(page, "dblclick")) == 1
    assert len(await events(page, "click")) == 2


async def test_scroll_wheels_the_pane_under_the_pointer(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/actions.html")
    x, y = await center(page, "#pane")
    await env.scroll(x, y, 0, 300)
    await page.wait_for_function("document.getElementById('pane').scrollTop > 0")
    assert await page.evaluate("window.scrollY") == 0

    await env.scroll(200, 500, 0, 400)  # outside the pane: the document scrolls
    await page.wait_for_function("window.scrollY > 0")
    pane_top = await page.evaluate("document.getElementById('pane').scrollTop")
    await env.settle()
    assert await page.evaluate("document.getElementById('pane').scrollTop") == pane_top


async def test_drag_follows_the_whole_path(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/actions.html")
    path = [(60, 260), (300, 260), (300, 420), (80, 400)]
    await env.drag(path, ["shift"])

    down = await events(page, "pointerdown")
    moves = await events(page, "pointermove")
    up = await events(page, "pointerup")
    assert [(e["x"], e["y"]) for e in down] == [path[0]]
    assert [(e["x"], e["y"]) for e in up] == [path[-1]]
    seen = {(e["x"], e["y"]) for e in moves}
    assert set(path[1:]) <= seen  # every corner of the path was passed through
    assert len(moves) >= 3 * 3  # with intermediate steps, not jumps
    assert all(e["shift"] for e in moves)


# --- keyboard -----------------------------------------------------------------------------------


async def test_typing_unicode_chords_and_slash(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/actions.html")
    await env.click(*await center(page, "#field"))
    await env.type("héllo wörld ✓ 日本")
    assert await page.input_value("#field") == "héllo wörld ✓ 日本"

    await env.keypress(["CTRL", "a"])  # a chord: select all, not the letter a
    await env.type("bye")
    assert await page.input_value("#field") == "bye"

    await env.keypress(["/"])
    await env.keypress(["SPACE"])
    await env.keypress(["ctrl", "A"])  # an upper-case letter in a chord is still select-all
    await env.keypress(["Right"])
    await env.keypress(["é"])  # no key makes it: inserted as text
    assert await page.input_value("#field") == "bye/ é"

    slash = [e for e in await events(page, "keydown") if e["key"] == "/"]
    assert slash and slash[0]["code"] == "Slash"  # the slash key, not NumpadDivide
    ctrl_a = [e for e in await events(page, "keydown") if e["key"] in "aA" and e["ctrl"]]
    assert len(ctrl_a) == 2 and {e["shift"] for e in ctrl_a} == {False}


async def test_unknown_key_names_are_model_errors(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/actions.html")
    with pytest.raises(ModelOutputError, match="hyperdrive"):
        await env.keypress(["ctrl", "hyperdrive"])
    with pytest.raises(ModelOutputError, match="warp"):
        await env.click(10, 10, "left", ["warp"])
    with pytest.raises(ModelOutputError, match="button"):
        await env.click(10, 10, "thumb")
    # Nothing was pressed and the browser still works.
    await env.click(*await center(page, "#field"))
    await env.type("ok")
    assert await page.input_value("#field") == "ok"
    assert [e["ctrl"] for e in await events(page, "keydown")] == [False, False]


# --- tabs ---------------------------------------------------------------------------------------


async def test_new_tabs_are_followed_and_left_on_close(env: BrowserEnvironment, pages_server: str) -> None:
    opener = await open_page(env, f"{pages_server}/popup.html")
    tab_events = env.on_event.of("tab")
    before = len(tab_events)

    await env.click(*await center(opener, "#open-link"))
    await env.settle()
    await until(lambda: env.page is not opener, "the link's tab to be followed")
    assert (await env.current_url()).endswith("child.html?via=link")
    assert env.on_event.of("tab")[before]["event"] == "opened"

    child = env.page
    await env.click(*await center(child, "#close"))
    await until(lambda: env.page is opener, "the closed tab to hand back to its opener")
    assert env.on_event.of("tab")[-1]["event"] == "closed"

    await env.click(*await center(opener, "#open-script"))
    await env.settle()
    await until(lambda: env.page is not opener, "the script's popup to be followed")
    assert (await env.current_url()).endswith("child.html?via=script")
    shot = Image.open(io.BytesIO(await env.screenshot()))
    assert shot.size == (DISPLAY.width, DISPLAY.height)
    await env.click(10, 300)
    assert await env.page.evaluate("window.events") == ["click"]  # actions go to the popup


# --- settle -------------------------------------------------------------------------------------


async def test_settle_is_fast_when_nothing_changed(env: BrowserEnvironment, pages_server: str) -> None:
    await open_page(env, f"{pages_server}/actions.html")
    await env.move(700, 580)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        await env.settle()
        timings.append(time.perf_counter() - started)
    assert max(timings) < 0.5, timings


async def test_settle_waits_for_navigation_and_requests(env: BrowserEnvironment, dynamic_server: str) -> None:
    page = await open_page(env, f"{dynamic_server}/start")

    await env.click(*await center(page, "#fetch"))
    started = time.perf_counter()
    await env.settle()
    assert time.perf_counter() - started >= 0.2
    assert await page.text_content("#out") == "fetched"

    await env.click(*await center(page, "#go"))
    await env.settle()
    assert (await env.current_url()).endswith("/slow?ms=400")
    assert await page.evaluate("document.readyState") == "complete"
    assert await page.text_content("#done") == "loaded slowly"


# --- screen transform ---------------------------------------------------------------------------


def _colour_centres(png: bytes) -> dict[str, tuple[int, int]]:
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "magenta": (255, 0, 255)}
    image = Image.open(io.BytesIO(png)).convert("RGB")
    found: dict[str, list[tuple[int, int]]] = {name: [] for name in colours}
    pixels = image.load()
    for y in range(image.height):
        for x in range(image.width):
            for name, rgb in colours.items():
                if pixels[x, y] == rgb:
                    found[name].append((x, y))
    centres = {}
    for name, points in found.items():
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        centres[name] = ((min(xs) + max(xs)) // 2, (min(ys) + max(ys)) // 2)
    return centres


async def _click_what_the_screenshot_shows(environment: BrowserEnvironment, url: str) -> None:
    page = await open_page(environment, url)
    png = await environment.screenshot()
    assert png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size == (DISPLAY.width, DISPLAY.height)
    centres = _colour_centres(png)
    for name, (x, y) in centres.items():
        await environment.click(x, y)
    assert await page.evaluate("window.clicks") == list(centres)


async def test_clicks_land_where_the_screenshot_shows_at_1x(env: BrowserEnvironment, pages_server: str) -> None:
    await _click_what_the_screenshot_shows(env, f"{pages_server}/dpr.html")


async def test_clicks_land_where_the_screenshot_shows_at_2x_over_a_browser_server(
    browser_server: str, pages_server: str
) -> None:
    environment = BrowserEnvironment(display=DISPLAY, device_scale_factor=2, ws_endpoint=browser_server)
    async with environment:
        assert await environment.page.evaluate("devicePixelRatio") == 2
        await _click_what_the_screenshot_shows(environment, f"{pages_server}/dpr.html")


# --- anchors ------------------------------------------------------------------------------------


async def test_anchor_then_locate_after_the_layout_moved(env: BrowserEnvironment, pages_server: str) -> None:
    page = await open_page(env, f"{pages_server}/anchor.html")
    cases = {
        "#save": "Save",
        "[data-testid=cancel-btn]": "Cancel",
        ".row button:first-child": "Plain one",
        "a": "Help",
        "input[name=email]": "email",
        ".chip": "Archive",  # found by its text: not the heading that reads the same, nearer
    }
    recorded = {}
    for selector in cases:
        x, y = await center(page, selector)
        recorded[selector] = (x, y, await env.anchor(x, y))

    save, cancel = recorded["#save"][2], recorded["[data-testid=cancel-btn]"][2]
    assert (save["tag"], save["role"], save["name"], save["id"], save["selector"]) == (
        "button", "button", "Save", "save", "#save")
    assert cancel["testid"] == "cancel-btn" and cancel["selector"] == '[data-testid="cancel-btn"]'
    plain = recorded[".row button:first-child"][2]
    assert plain["name"] == "Plain one" and "nth-of-type" in plain["selector"]
    link = recorded["a"][2]
    assert link["role"] == "link" and link["id"] == "help-1718300999"
    assert not link["selector"].startswith("#")  # a generated-looking id is not a stable selector
    email = recorded["input[name=email]"][2]
    assert (email["role"], email["name"]) == ("textbox", "Email")
    bx, by = recorded["#save"][0], recorded["#save"][1]
    assert save["box"]["x"] <= bx <= save["box"]["x"] + save["box"]["width"]
    assert save["box"]["y"] <= by <= save["box"]["y"] + save["box"]["height"]

    page = await open_page(env, f"{pages_server}/anchor.html?shift=1")
    for selector, label in cases.items():
        x, y, anchor = recorded[selector]
        found = await env.locate({"x": x, "y": y, "element": anchor})
        assert found is not None, label
        assert found[1] >= y + 100, label  # it really moved
        await env.click(*found)
        assert (await page.evaluate("window.clicks"))[-1] == label

    assert await env.locate({"tag": "button", "role": "button", "name": "Gone", "selector": "#gone"}) is None


# --- domain policy ------------------------------------------------------------------------------


async def test_domain_policy_rules() -> None:
    policy = DomainPolicy(allow=["Example.com", "https://docs.test:8443/x", "*.cdn.net"], block=["ads.example.com"])
    assert policy.blocked_reason("https://example.com/") is None
    assert policy.blocked_reason("https://shop.example.com/cart") is None
    assert policy.blocked_reason("http://docs.test:8443/page") is None
    assert policy.blocked_reason("https://img.cdn.net/a.png") is None
    assert policy.blocked_reason("https://ads.example.com/x") == "block list"
    assert policy.blocked_reason("https://x.ads.example.com/x") == "block list"
    assert policy.blocked_reason("https://badexample.com/") == "not in allow list"
    for url in ("data:text/html,hi", "blob:https://example.com/1", "about:blank"):
        assert policy.blocked_reason(url) is None
    assert not DomainPolicy()
    assert DomainPolicy(block=["x.com"]).blocked_reason("https://y.com") is None
    # Handed to Chromium: blocks first (blocking wins), then allows, then everything else blocked;
    # Chromium's canonical URL keeps a trailing dot and writes an IPv4-mapped address in hex.
    assert DomainPolicy(allow=["example.com", "[::1]:8000", "127.1"], block=["ads.example.com"]).chromium_patterns() == [
        {"urlPattern": "*://ads.example.com:*/*", "block": True},
        {"urlPattern": "*://*.ads.example.com:*/*", "block": True},
        {"urlPattern": "*://ads.example.com.:*/*", "block": True},
        {"urlPattern": "*://*.ads.example.com.:*/*", "block": True},
        {"urlPattern": "*://example.com:*/*", "block": False},
        {"urlPattern": "*://*.example.com:*/*", "block": False},
        {"urlPattern": "*://example.com.:*/*", "block": False},
        {"urlPattern": "*://*.example.com.:*/*", "block": False},
        {"urlPattern": "*://[\\:\\:1]:*/*", "block": False},
        {"urlPattern": "*://127.0.0.1:*/*", "block": False},
        {"urlPattern": "*://[\\:\\:ffff\\:7f00\\:1]:*/*", "block": False},
        {"urlPattern": "*://*:*/*", "block": True},
    ]
    assert DomainPolicy(block=["x.com"]).chromium_patterns()[-1] == {"urlPattern": "*://*.x.com.:*/*", "block": True}


# Add an image to the document; "loaded" or "refused".
LOAD_IMAGE_JS = """url => new Promise((done) => { const i = document.createElement('img');
    i.onload = () => done('loaded'); i.onerror = () => done('refused'); i.src = url; document.body.append(i) })"""


async def test_domain_policy_covers_websockets_and_subresource_redirects(dynamic_server: str) -> None:
    """What Playwright's routing never sees. A WebSocket to an allowed host talks to its server; one
    to a blocked host is closed with 1008, policy violation, before it reaches any server. An
    image's redirect hop to a blocked host is refused by Chromium, told the policy, in the page
    and in a frame of another site (another process).

    The browser is launched here (not the shared browser server): that is where cua turns off
    Chromium's local-network checks, which would otherwise refuse these loopback requests
    themselves and hide whether the policy did."""
    port = urlsplit(dynamic_server).port
    other_site = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _DynamicHandler)  # for a frame
    threading.Thread(target=other_site.serve_forever, daemon=True).start()
    other_port = other_site.server_address[1]
    try:
        log = Events()
        environment = BrowserEnvironment(display=DISPLAY, on_event=log, block_domains=["localhost"],
                                         allow_domains=["127.0.0.1", "127.0.0.2", "localhost"])
        async with environment:
            page = await open_page(environment, f"{dynamic_server}/start")
            _DynamicHandler.seen.clear()
            outcome = await page.evaluate("""(urls) => Promise.all(urls.map((url) => new Promise((done) => {
                const ws = new WebSocket(url);
                ws.onmessage = (e) => { done("message " + e.data); ws.close(); };
                ws.onclose = (e) => done("closed " + e.code);
            })))""", [f"ws://127.0.0.1:{port}/ws", f"ws://localhost:{port}/ws"])
            hop = f"http://localhost:{port}/data"
            loaded = await page.evaluate(LOAD_IMAGE_JS, f"/redirect?to={hop}")
            await until(lambda: len(log.of("blocked")) == 2, "the redirect hop to be reported")
            # The same hop from a frame of another site, which Chromium runs in a process of its own.
            await page.evaluate("url => { const f = document.createElement('iframe'); f.src = url;"
                                " document.body.append(f) }", f"http://127.0.0.2:{other_port}/start")
            await until(lambda: len(page.frames) == 2 and page.frames[1].url.endswith("/start"), "the frame")
            frame = page.frames[1]
            await until(lambda: frame in environment._enforcer.frame_sessions, "the frame's own guard (out of process)")
            framed = await frame.evaluate(LOAD_IMAGE_JS, f"/redirect?to={hop}")
            await until(lambda: len(log.of("blocked")) == 3, "the frame's redirect hop to be reported")
    finally:
        other_site.shutdown()
        other_site.server_close()
    assert framed == "refused"
    assert outcome == ["message hello", "closed 1008"]
    assert loaded == "refused"
    assert _DynamicHandler.seen == [(f"127.0.0.1:{port}", "/ws"), (f"127.0.0.1:{port}", f"/redirect?to={hop}"),
                                    (f"127.0.0.2:{other_port}", "/start"),
                                    (f"127.0.0.2:{other_port}", f"/redirect?to={hop}")]
    assert log.of("blocked") == [
        {"url": f"ws://localhost:{port}/ws", "reason": "block list", "resource_type": "websocket"},
        {"url": hop, "reason": "block list", "resource_type": "image"},  # Playwright sees no redirect
        {"url": hop, "reason": "block list", "resource_type": "image"},
    ]
    assert not log.of("unblocked_redirect")


async def test_domain_policy_covers_frames_redirects_and_popups(
    browser_server: str, pages_server: str, dynamic_server: str
) -> None:
    port = urlsplit(pages_server).port
    allowed = f"http://127.0.0.1:{port}/child.html"
    blocked = f"http://localhost:{port}/child.html"  # same server, another domain name
    outside = f"http://127.0.0.2:{port}/pixel.png"
    log = Events()
    environment = BrowserEnvironment(
        display=DISPLAY, ws_endpoint=browser_server, on_event=log,
        allow_domains=["127.0.0.1", "localhost"], block_domains=["localhost"],
    )
    blocked_urls = lambda: [e["url"] for e in log.of("blocked")]  # noqa: E731
    async with environment:
        page = await open_page(environment, f"{pages_server}/actions.html")

        with pytest.raises(EnvironmentError_, match="blocked"):
            await environment.goto(blocked)
        assert log.of("blocked")[-1]["reason"] == "block list"

        await page.evaluate("""([frame, image]) => {
            const f = document.createElement('iframe'); f.src = frame; document.body.append(f);
            const i = document.createElement('img'); i.src = image; document.body.append(i);
        }""", [blocked, outside])
        await until(lambda: {blocked, outside} <= set(blocked_urls()), "the iframe and image to be blocked")
        assert dict((e["url"], e["reason"]) for e in log.of("blocked"))[outside] == "not in allow list"
        await environment.settle()
        assert not [f.url for f in page.frames if "localhost" in f.url]

        # A redirect from an allowed page to a blocked domain, directly and at the second hop.
        with pytest.raises(EnvironmentError_):
            await environment.goto(f"{dynamic_server}/redirect?to={blocked}")
        assert log.of("blocked")[-1]["redirected_from"].startswith(f"{dynamic_server}/redirect")
        second_hop = f"{dynamic_server}/redirect?to={dynamic_server}/redirect%3Fto%3D{blocked}"
        try:
            await environment.goto(second_hop)
        except EnvironmentError_:
            pass  # whether goto sees the second hop fail depends on timing; the policy is what counts
        await environment.settle()
        assert log.of("blocked")[-1]["url"] == blocked and log.of("blocked")[-1]["redirected_from"]
        assert "localhost" not in (await environment.current_url() or "")

        # An allowed redirect still arrives.
        await environment.goto(f"{dynamic_server}/redirect?to={allowed}")
        await environment.settle()
        assert await environment.current_url() == allowed

        # A popup to a blocked domain is blocked; one to an allowed domain loads.
        opener = await open_page(environment, f"{pages_server}/popup.html")
        count = len(log.of("blocked"))
        await opener.evaluate("url => window.open(url)", blocked)
        await until(lambda: len(log.of("blocked")) > count, "the popup's request to be blocked")
        assert log.of("blocked")[-1]["url"] == blocked
        await until(lambda: environment.page is not opener, "the blocked popup to be followed")
        assert "localhost" not in (await environment.current_url() or "")
        await environment.page.close()
        await until(lambda: environment.page is opener, "the blocked popup to close")
        await opener.evaluate("url => window.open(url)", allowed)
        await until(lambda: environment.page is not opener, "the allowed popup")
        await environment.settle()
        assert await environment.current_url() == allowed
        assert await environment.page.text_content("#close") == "close this tab"


# --- connections and lifecycle ------------------------------------------------------------------


async def test_connects_over_cdp(cdp_browser: str, pages_server: str) -> None:
    environment = BrowserEnvironment(display=DISPLAY, cdp_url=cdp_browser, start_url=f"{pages_server}/actions.html")
    async with environment:
        page = environment.page
        await environment.click(*await center(page, "#target"))
        assert len(await events(page, "click")) == 1
        assert (await environment.current_url()).endswith("/actions.html")
        assert Image.open(io.BytesIO(await environment.screenshot())).size == (DISPLAY.width, DISPLAY.height)


async def test_connection_and_launch_failures_are_environment_errors() -> None:
    for kwargs, url in (({"cdp_url": "http://127.0.0.1:9"}, "http://127.0.0.1:9"),
                        ({"ws_endpoint": "ws://127.0.0.1:9/"}, "ws://127.0.0.1:9/")):
        environment = BrowserEnvironment(**kwargs)
        with pytest.raises(EnvironmentError_) as caught:
            await environment.start()
        assert url in str(caught.value)
        await environment.stop()  # safe after a failed start, and twice
        await environment.stop()

    with pytest.raises(EnvironmentError_, match="make setup"):
        await BrowserEnvironment(chromium_path="/nonexistent/chromium").start()
    with pytest.raises(EnvironmentError_, match="not running"):
        BrowserEnvironment().page
