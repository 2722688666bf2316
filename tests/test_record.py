"""``cua record`` as a person uses it: a headed Chromium on an Xvfb, real X input from xdotool.

Each flow of the demo app is recorded by a "person" (xdotool on its own Xvfb, with pauses), from the
real ``cua record`` command; then the written scenario is replayed with no model on the demo app as
it was, and on its drifted layout (``?shift=1`` moves every target), where the replay must heal.
The flows are recorded side by side (one display each) and shared by the tests that read them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from cli_helpers import Finished, clean_env, finish, start_cua
from vmserver import Xvfb

from cua.environments.browser_launch import find_chromium
from cua.testing.demo_server import serve_demo

if find_chromium() is None:  # pragma: no cover - the dev setup installs it
    pytest.skip("no Chromium installed (make setup)", allow_module_level=True)

PASSWORD = "s3cret"  # the demo app's; typed by the person, it must be nowhere in what the recording writes
EMAIL = "ada@example.com"  # typed into a field recorded with --secret-field: a secret too
PAUSE = 0.4  # a person's pause between gestures
TOOLBAR_STOP = (996, 747)  # the recording toolbar's Stop button, at the viewport's bottom right


# --- the person -----------------------------------------------------------------------------------


def chrome_offset() -> tuple[int, int]:
    """Where a headed Chromium's viewport starts inside its window (below the tabs and the address
    bar), measured once: the page reads the pointer xdotool moved, on a display of its own."""
    from playwright.sync_api import sync_playwright

    from cua.environments.browser_launch import DEFAULT_ARGS

    screen = Xvfb(1280, 1024)
    person = Person(screen.display, (0, 0))
    try:
        os.environ["DISPLAY"], before = screen.display, os.environ.get("DISPLAY")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=find_chromium(), headless=False,
                                         args=[*DEFAULT_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])])
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.set_content("<body style='margin:0;height:100vh'></body>")
            page.evaluate("addEventListener('mousemove', (e) => window.at = [e.screenX - e.clientX, e.screenY - e.clientY])")
            window = person.window((1024, 768))
            for n in range(50):  # until the window takes pointer events
                person.xdotool("mousemove", str(300 + n % 2 * 10), "300")
                if page.evaluate("window.at || null"):
                    break
                time.sleep(0.2)
            left, top = page.evaluate("window.at")
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = before
        screen.stop()
    return left - window[0], top - window[1]


class Person:
    """Real X input on one display, in the viewport coordinates of the recorder's Chromium."""

    def __init__(self, display: str, offset: tuple[int, int]) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        self.offset = offset
        self.origin = (0, 0)

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=20).stdout

    def find_viewport(self, size: tuple[int, int]) -> None:
        """Where the page's viewport is on the screen: the browser window's, plus the offset."""
        x, y = self.window(size)
        self.origin = (x + self.offset[0], y + self.offset[1])

    def window(self, size: tuple[int, int]) -> tuple[int, int]:
        """The position of the browser window big enough for a ``size`` viewport."""
        deadline = time.monotonic() + 30
        while True:
            out = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "chromium",
                                  "getwindowgeometry", "%@"], env=self.env, capture_output=True, text=True).stdout
            sizes = re.findall(r"Position: (\d+),(\d+).*?\n\s*Geometry: (\d+)x(\d+)", out)
            windows = [tuple(map(int, s)) for s in sizes if int(s[3]) >= size[1]]
            if windows:
                x, y, _, _ = max(windows, key=lambda w: w[2] * w[3])
                return x, y
            if time.monotonic() > deadline:
                raise AssertionError(f"no Chromium window on the display: {out!r}")
            time.sleep(0.2)

    def _at(self, x: int, y: int) -> list[str]:
        return ["mousemove", str(self.origin[0] + x), str(self.origin[1] + y)]

    def click(self, x: int, y: int, button: int = 1, repeat: int = 1) -> None:
        self.xdotool(*self._at(x, y), "sleep", "0.1", "click", "--repeat", str(repeat), "--delay", "90", str(button))
        time.sleep(PAUSE)

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "35", text)
        time.sleep(PAUSE)

    def key(self, *chords: str) -> None:
        self.xdotool("key", "--delay", "120", *chords)
        time.sleep(PAUSE)

    def drag(self, path: list[tuple[int, int]]) -> None:
        args = [*self._at(*path[0]), "sleep", "0.1", "mousedown", "1"]
        for x, y in path[1:]:
            args += ["sleep", "0.05", *self._at(x, y)]
        self.xdotool(*args, "sleep", "0.1", "mouseup", "1")
        time.sleep(PAUSE)

    def wheel(self, x: int, y: int, notches: int) -> None:
        self.xdotool(*self._at(x, y), "sleep", "0.1", "click", "--repeat", str(notches), "--delay", "30", "5")
        self.wait_still()  # for the smooth scroll to end

    def wait_still(self, timeout: float = 15) -> None:
        """Wait, as a person looks, until the screen stops changing (a page loading, a scroll)."""
        from PIL import Image, ImageChops, ImageGrab

        def grab() -> Image.Image:
            return ImageGrab.grab(xdisplay=self.env["DISPLAY"]).convert("L")

        before, still, deadline = grab(), 0, time.monotonic() + timeout
        while still < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            now = grab()
            changed = ImageChops.difference(before, now).point(lambda v: 255 if v > 24 else 0).histogram()[255]
            still = still + 1 if changed < 40 else 0  # (a caret may blink)
            before = now


# --- the flows (viewport coordinates: demo_app/coords.json) ----------------------------------------


def login(p: Person) -> None:
    p.click(232, 181)
    p.type("demo")
    p.click(232, 259)
    p.type(PASSWORD)
    p.click(109, 343)
    p.wait_still()  # the dashboard loads
    p.key("alt+shift+t")  # a check: the next click picks the text under it
    p.click(272, 151)
    p.key("alt+shift+r")  # a check: the region dragged next looks the same on replay (the nav bar)
    p.drag([(110, 8), (400, 30), (660, 40)])


def form(p: Person) -> None:
    p.click(249, 472)  # submit empty: the page says what is required
    p.click(339, 155)
    p.type("Ada")
    p.click(339, 205)
    p.type("ada@exampel.com")
    p.key("BackSpace", "BackSpace", "BackSpace", "BackSpace", "BackSpace", "BackSpace")  # a typo, corrected
    p.type("le.com")
    p.key("Tab")
    p.type("36")
    p.click(339, 326)  # the topic
    p.click(198, 422)  # the terms
    p.click(249, 472)
    p.wait_still()
    p.key("alt+shift+e")  # a check: the element clicked next must be visible (with its text)
    p.click(226, 216)  # the e-mail address the page says it sent


def board(p: Person) -> None:
    p.drag([(172, 198), (300, 230), (450, 270), (620, 320), (780, 340)])
    p.key("alt+shift+e")
    p.click(780, 450)  # the Done column, below its cards


def long_list(p: Person) -> None:
    p.wheel(272, 352, 38)  # 120 px a notch: row 150 comes under the pointer
    p.click(446, 376)  # row 150's Select button, where the scroll left it
    p.key("alt+shift+t")
    p.click(272, 580)  # the status line


def new_tab(p: Person) -> None:
    p.key("ctrl+k")
    p.key("Escape")
    p.click(125, 181)  # opens newtab.html in a new tab
    p.wait_still()
    p.click(96, 199)


def menu(p: Person, site: str) -> None:
    p.key("ctrl+l")  # the address bar: another page, then Back
    p.type(f"{site}/links.html")
    p.key("Return")
    p.wait_still()
    p.key("alt+Left")
    p.wait_still()
    p.click(232, 177, button=3)  # report.pdf's context menu
    p.click(312, 230)  # Delete
    p.key("alt+shift+t")
    p.click(100, 307)  # the status line
    p.click(60, 88, repeat=2)  # a double click on the heading selects it


@dataclass
class Flow:
    name: str
    page: str
    person: Callable[[Person], None]
    ends_by: str = "sigint"  # or sigterm, "stop" (the hotkey), "toolbar" (its Stop) or "close" (the window)
    record_args: list[str] = field(default_factory=list)


FLOWS = [
    Flow("login", "login.html", login),
    Flow("form", "form.html", form, ends_by="stop", record_args=["--secret-field", "#email"]),
    Flow("board", "board.html", board, ends_by="sigterm"),
    Flow("list", "list.html", long_list, ends_by="close"),
    Flow("new-tab", "links.html", new_tab, ends_by="toolbar"),
    Flow("menu", "menu.html", menu),
]
if os.environ.get("CUA_TEST_FLOWS"):  # while working on one flow
    FLOWS = [f for f in FLOWS if f.name in os.environ["CUA_TEST_FLOWS"].split(",")]


@dataclass
class Recorded:
    flow: Flow
    folder: Path
    result: Finished
    scenario: dict[str, Any]
    replay: dict[str, Any] | None = None  # run.json of its replay by `pytest --cua-mode replay`
    drifted: Finished | None = None
    scripted: Finished | None = None  # cua run SCENARIO --model scripted: the script a model falls back to

    @property
    def path(self) -> Path:
        return self.folder / f"{self.flow.name}.cua.yaml"

    def actions(self) -> list[dict[str, Any]]:
        return [a for turn in self.scenario["script"] for a in turn.get("actions") or []]


def _record(flow: Flow, site: str, root: Path, offset: tuple[int, int]) -> Recorded:
    folder = root / flow.name
    folder.mkdir()
    screen = Xvfb(1280, 1024)
    env = clean_env(DISPLAY=screen.display, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    try:
        proc = start_cua(["record", f"{flow.name}.cua.yaml", "--start-url", f"{site}/{flow.page}", "--json",
                          *flow.record_args], env, folder, start_new_session=True)
        lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            for line in proc.stderr:  # type: ignore[union-attr]
                lines.append(line)
                if line.startswith("Recording "):
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if not ready.wait(60):
            proc.kill()
            raise AssertionError(f"cua record never said it was recording: {''.join(lines)}")
        person = Person(screen.display, offset)
        person.find_viewport((1024, 768))
        if flow.name == "menu":
            flow.person(person, site)  # type: ignore[call-arg]
        else:
            flow.person(person)
        if flow.ends_by == "stop":
            person.key("alt+shift+s")
        elif flow.ends_by == "close":
            person.key("ctrl+shift+w")
        elif flow.ends_by == "sigterm":
            proc.terminate()
        elif flow.ends_by == "toolbar":
            person.click(*TOOLBAR_STOP)
        else:  # Ctrl-C in a terminal: SIGINT to the whole process group
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)  # (what it prints on stdout is one short line: the pipe cannot fill)
        except subprocess.TimeoutExpired:  # the ending did not end it: fail, never hang
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            lines.append(f"(cua record was still running 60 s after the flow ended by {flow.ends_by})\n")
        out = proc.stdout.read()  # type: ignore[union-attr]
        reader.join(10)
        result = Finished(proc.returncode, out, "".join(lines))
    finally:
        screen.stop()
    scenario = yaml.safe_load((folder / f"{flow.name}.cua.yaml").read_text(encoding="utf-8")) \
        if result.code == 0 else {}
    return Recorded(flow, folder, result, scenario)


def _env() -> dict[str, str]:
    return clean_env(PYTHONPATH=os.environ.get("PYTHONPATH", ""), CUA_LOGIN_PASSWORD=PASSWORD,
                     CUA_FORM_EMAIL=EMAIL)


def _replay(recorded: Recorded, *extra: str) -> Finished:
    return finish(start_cua(["replay", recorded.path.name, "--json", *extra], _env(), recorded.folder), timeout=120)


def _scripted(recorded: Recorded) -> None:
    """The scenario as a scripted run: the script a model run falls back to, played the same way."""
    recorded.scripted = finish(start_cua(["run", recorded.path.name, "--model", "scripted", "--json"], _env(),
                                         recorded.folder), timeout=120)


class Recordings(dict[str, Recorded]):
    """The recorded flows by name, and the one pytest session that replayed them all."""

    as_tests: subprocess.CompletedProcess[str]


def _replay_as_tests(root: Path, done: dict[str, Recorded]) -> subprocess.CompletedProcess[str]:
    """Every written scenario replayed as a pytest test, all in one session (as a CI job runs them):
    each scenario's run.json is kept on its recording for the tests below."""
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cua-mode=replay",
                             "--cua-out=runs", *[str(r.path.relative_to(root)) for r in done.values()
                                                 if r.result.code == 0]],
                            cwd=root, env=_env(), capture_output=True, text=True, timeout=300)
    for meta_path in (root / "runs").glob("*/run.json"):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        done[meta["scenario"]["name"]].replay = meta
    return tested


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recordings]:
    root = tmp_path_factory.mktemp("recorded")
    with serve_demo() as server:
        site = server.url("").rstrip("/")
        offset = chrome_offset()
        with ThreadPoolExecutor(3) as pool:
            done = Recordings(zip([f.name for f in FLOWS], pool.map(lambda f: _record(f, site, root, offset), FLOWS)))

        def replays(r: Recorded) -> None:
            if r.result.code != 0:
                return
            r.drifted = _replay(r, "--start-url", f"{site}/{r.flow.page}?shift=1")
            if r.flow.name in ("login", "board"):
                _scripted(r)

        with ThreadPoolExecutor(3) as pool:
            as_tests = pool.submit(_replay_as_tests, root, done)
            list(pool.map(replays, done.values()))
            done.as_tests = as_tests.result()
        yield done


def recording(recorded: dict[str, Recorded], name: str) -> Recorded:
    r = recorded[name]
    assert r.result.code == 0, r.result.stderr
    return r


# --- what was written -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [f.name for f in FLOWS])
def test_a_recording_writes_a_scenario_and_its_recording_and_says_where(recorded: dict[str, Recorded],
                                                                        name: str) -> None:
    r = recording(recorded, name)
    said = r.result.json()
    assert said["scenario"] == f"{name}.cua.yaml" and Path(r.folder / said["recording"]) == r.folder / "recordings" / name
    assert said["actions"] == len(r.actions()) > 0 and said["steps"] >= 1
    assert (r.folder / "recordings" / name / "run.json").is_file()
    assert r.scenario["name"] == name and r.scenario["start_url"].endswith(r.flow.page)
    assert r.scenario["task"].startswith("Do this on the page")
    assert "Traceback" not in r.result.stderr


def test_login_types_text_and_a_secret_that_is_written_nowhere(recorded: dict[str, Recorded]) -> None:
    r = recording(recorded, "login")
    assert [a["type"] for a in r.actions()] == ["click", "type", "click", "type", "click"]
    assert [a.get("text") for a in r.actions() if a["type"] == "type"] == ["demo", "{{password}}"]
    assert {k: v for k, v in r.scenario["variables"]["password"].items() if k != "description"} == \
        {"secret": True, "env": "CUA_LOGIN_PASSWORD"} and set(r.scenario["variables"]) == {"password"}
    assert {"text_visible": "Welcome, demo"} in r.scenario["checks"]
    assert {"url_matches": r"/dashboard\.html(?:[?#]|$)"} in r.scenario["checks"]
    for name, secret in (("login", PASSWORD), ("form", EMAIL)):  # nor in any file a recording left
        leaked = [str(f) for f in recorded[name].folder.rglob("*") if f.is_file() and secret.encode() in f.read_bytes()]
        assert leaked == []
        assert secret not in recorded[name].result.stderr + recorded[name].result.stdout
    assert PASSWORD not in r.result.stderr + r.result.stdout
    assert PASSWORD not in recorded.as_tests.stdout + recorded.as_tests.stderr  # type: ignore[attr-defined]


def test_form_coalesces_typing_corrects_typos_and_records_keys(recorded: dict[str, Recorded]) -> None:
    r = recording(recorded, "form")
    actions = r.actions()
    typed = [a["text"] for a in actions if a["type"] == "type"]
    assert typed == ["Ada", "{{email}}", "36"]  # the typo corrected; --secret-field made it a secret
    assert r.scenario["variables"]["email"]["env"] == "CUA_FORM_EMAIL" and set(r.scenario["variables"]) == {"email"}
    assert {"type": "keypress", "keys": ["TAB"]} in actions
    checks = r.scenario["checks"]
    # The page shows the address back: the check made from it names the variable, not the value.
    assert [c["selector"]["has_text"] for c in checks if "selector" in c] == ["{{email}}"], checks


def test_board_records_the_drag_path(recorded: dict[str, Recorded]) -> None:
    (drag,) = recording(recorded, "board").actions()
    assert drag["type"] == "drag"
    assert drag["path"][0] == {"x": 172, "y": 198} and drag["path"][-1] == {"x": 780, "y": 340}
    assert len(drag["path"]) >= 3
    (check,) = recording(recorded, "board").scenario["checks"]
    assert check["selector"]["selector"].startswith("#column-done") and "Write spec" in check["selector"]["has_text"]


def test_list_records_one_scroll_of_the_pane_and_ends_when_the_window_closes(recorded: dict[str, Recorded]) -> None:
    r = recording(recorded, "list")
    *scrolls, click = r.actions()  # (the check's click is not recorded)
    # One scroll of the pane (two when the burst of wheel events came with a pause in it).
    assert len(scrolls) in (1, 2) and {(a["type"], a["x"], a["y"]) for a in scrolls} == {("scroll", 272, 352)}
    assert sum(a["scroll_y"] for a in scrolls) == 38 * 120, r.result.stderr
    assert click["type"] == "click" and (click["x"], click["y"]) == (446, 376)
    assert {"text_visible": "Selected row 150"} in r.scenario["checks"]


def test_new_tab_records_keys_and_follows_the_tab(recorded: dict[str, Recorded]) -> None:
    r = recording(recorded, "new-tab")
    assert [a["type"] for a in r.actions()] == ["keypress", "keypress", "click", "click"], r.result.stderr
    assert r.actions()[0]["keys"] == ["CTRL", "k"] and r.actions()[1]["keys"] == ["ESC"]
    assert {"url_matches": r"/newtab\.html(?:[?#]|$)"} in r.scenario["checks"]


def test_menu_records_the_address_bar_back_a_double_and_a_right_click(recorded: dict[str, Recorded]) -> None:
    r = recording(recorded, "menu")
    actions = r.actions()
    assert [a["type"] for a in actions] == ["navigate", "back", "click", "click", "double_click"], actions
    assert actions[0]["url"].endswith("/links.html") and actions[2]["button"] == "right"
    assert {"text_visible": "Deleted report.pdf"} in r.scenario["checks"]


def test_the_scenario_runs_as_a_script(recorded: dict[str, Recorded]) -> None:
    for name in ("login", "board"):
        r = recording(recorded, name)
        assert r.scripted is not None and r.scripted.code == 0, r.scripted.stderr if r.scripted else None
        assert all(c["ok"] for c in r.scripted.json()["checks"])


def test_the_written_scenarios_pass_as_a_pytest_suite(recorded: dict[str, Recorded]) -> None:
    as_tests = recorded.as_tests  # type: ignore[attr-defined]
    assert as_tests.returncode == 0, as_tests.stdout + as_tests.stderr
    assert f"{len(FLOWS)} passed" in as_tests.stdout


# --- replays --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [f.name for f in FLOWS])
def test_the_written_scenario_replays_green_with_no_model(recorded: dict[str, Recorded], name: str) -> None:
    r = recording(recorded, name)
    assert r.replay is not None, recorded.as_tests.stdout  # type: ignore[attr-defined]
    assert r.replay["kind"] == "replay" and r.replay["usage"]["total_tokens"] == 0, r.replay["usage"]
    assert r.replay["status"] == "completed" and all(c["ok"] for c in r.replay["checks"]), r.replay
    assert r.replay["checks"], "a recording checks where the flow ended"


@pytest.mark.parametrize("name", [f.name for f in FLOWS])
def test_the_written_scenario_replays_green_healed_on_the_drifted_pages(recorded: dict[str, Recorded],
                                                                         name: str) -> None:
    r = recording(recorded, name)
    assert r.drifted is not None and r.drifted.code == 0, r.drifted.stderr if r.drifted else None
    result = r.drifted.json()
    assert result["status"] == "completed" and result["healed"] >= 1
    assert all(c["ok"] for c in result["checks"])


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "display", "code", "message"), [
    (["notes.txt", "--start-url", "http://127.0.0.1:9/"], ":0", 2, "a scenario file ends in .yaml"),
    (["login.cua.yaml"], ":0", 2, "--start-url is needed"),
    (["missing/login.cua.yaml", "--start-url", "http://127.0.0.1:9/"], ":0", 2, "does not exist"),
    (["login.cua.yaml", "--start-url", "http://127.0.0.1:9/", "--secret-field", "input[["], ":0", 2,
     "--secret-field 'input[['"),
    (["login.cua.yaml", "--start-url", "http://127.0.0.1:9/"], None, 4, "there is no display"),
])
def test_what_cannot_be_recorded_is_one_message_and_an_exit_code(tmp_path: Path, args: list[str],
                                                                  display: str | None, code: int, message: str) -> None:
    env = {k: v for k, v in _env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display:
        env["DISPLAY"] = display
    done = finish(start_cua(["record", *args], env, tmp_path), timeout=60)
    assert done.code == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []
