"""``cua record --env ubuntu``: a person's X input on a kiosk becomes a scenario that replays.

A real Xvfb shows a kiosk Chromium on tests/pages_desktop/flow.html, whose server receives the
page's whole state after every input. ``cua record`` runs as a subprocess on that display while
xdotool sends real X input (XTest: the same device events a keyboard and mouse make) at a person's
pace; then the kiosk restarts fresh and ``cua replay`` must give the page the same inputs.
The X-event translation is also tested alone, on made-up events, with no display.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmserver  # noqa: E402
from cli_helpers import clean_env, finish, start_cua  # noqa: E402
from test_desktop_e2e import DRAG_PATH, FIELD, MENU, PANE, PRESS, TWICE, Desktop, flow_url  # noqa: E402
from test_desktop_e2e import ubuntu  # noqa: E402,F401 - the local display and its kiosk, a fixture
from vmserver import last  # noqa: E402

from cua.actions import Click, Drag, Keypress, Scroll, Type  # noqa: E402
from cua.record.desktop import DesktopGestures, XInput  # noqa: E402

WIDTH, HEIGHT = 1024, 768
PAUSE_S = 0.4  # between gestures, as a person pauses


def xdotool(x_display: str, *args: str, pause: float = PAUSE_S) -> None:
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": x_display}, check=True, timeout=10)
    time.sleep(pause)


def wait_until_recording(proc: subprocess.Popen[str]) -> None:
    """Until ``cua record`` says it records (its first line for a person): input counts from then."""
    assert proc.stderr is not None
    before = ""
    while not (line := proc.stderr.readline()).startswith("Recording"):
        assert line, f"cua record ended before recording: {before}"
        before += line


def perform_flow(x_display: str) -> None:
    """What the person does: each gesture as real X input."""
    def at(point: tuple[int, int]) -> list[str]:
        return ["mousemove", str(point[0]), str(point[1])]

    xdotool(x_display, *at(PRESS), "click", "1")
    xdotool(x_display, *at(TWICE), "click", "--repeat", "2", "--delay", "90", "1")
    xdotool(x_display, *at(MENU), "click", "3")
    # A person looks at the field before typing. (With no pause at all the recorder may take the
    # field's screen only once the first letter is in it, on a loaded machine: the image anchor of
    # the click then shows that letter, which the replay's fresh page does not have.)
    xdotool(x_display, *at(FIELD), "click", "1", pause=1.0)
    xdotool(x_display, "type", "--delay", "40", "Hello world!?", pause=0.05)
    xdotool(x_display, "key", "BackSpace")  # a typo taken back
    xdotool(x_display, "key", "ctrl+a")
    xdotool(x_display, "type", "--delay", "40", "Bye")
    xdotool(x_display, *at(PANE), "click", "--repeat", "3", "--delay", "40", "5")
    drag = [*at(DRAG_PATH[0]), "mousedown", "1"]
    for point in DRAG_PATH[1:]:
        drag += ["sleep", "0.05", *at(point)]
    xdotool(x_display, *drag, "sleep", "0.05", "mouseup", "1")


RECORDED_ACTIONS = [
    {"type": "click", "x": PRESS[0], "y": PRESS[1], "button": "left"},
    {"type": "double_click", "x": TWICE[0], "y": TWICE[1]},
    {"type": "click", "x": MENU[0], "y": MENU[1], "button": "right"},
    {"type": "click", "x": FIELD[0], "y": FIELD[1], "button": "left"},
    {"type": "type", "text": "Hello world!"},
    {"type": "keypress", "keys": ["CTRL", "a"]},
    {"type": "type", "text": "Bye"},
    {"type": "scroll", "x": PANE[0], "y": PANE[1], "scroll_x": 0, "scroll_y": 360},  # 3 notches of 120
    {"type": "drag", "path": [{"x": x, "y": y} for x, y in DRAG_PATH]},
]


def flow_state(desktop: Desktop) -> dict[str, Any]:
    """The page's state once the whole flow arrived, less the drag's count of pointer events."""
    def complete(events: list[dict[str, Any]]) -> dict[str, Any] | None:
        state = (last(events, "state") or {}).get("state") or {}
        return state if state.get("drag") and state.get("paneTop", 0) > 0 and state.get("value") == "Bye" else None

    state = desktop.page.wait_for(complete, timeout=15, what="the whole flow")
    return {**state, "drag": {k: v for k, v in state["drag"].items() if k != "moves"}}


def test_a_desktop_recording_holds_what_was_done_and_replays_it(ubuntu: Desktop, tmp_path: Path) -> None:
    ubuntu.show()
    proc = start_cua(["record", "out.cua.yaml", "--env", "ubuntu", "--x-display", ubuntu.x_display],
                     clean_env(), tmp_path)
    wait_until_recording(proc)
    perform_flow(ubuntu.x_display)
    recorded_state = flow_state(ubuntu)
    assert recorded_state["doubles"] and recorded_state["menus"] and recorded_state["chords"] == ["a"]
    proc.send_signal(signal.SIGINT)
    done = finish(proc, 60)
    assert done.code == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr

    scenario = yaml.safe_load((tmp_path / "out.cua.yaml").read_text())
    assert scenario["env"] == "ubuntu", "the display number is the machine's, not the scenario's"
    performed = [a for step in scenario["script"] for a in step.get("actions") or []]
    assert performed == RECORDED_ACTIONS
    recording = tmp_path / "recordings" / "out"
    steps = [json.loads(line) for line in (recording / "steps.jsonl").read_text().splitlines() if line]
    anchors = [a["anchor"] for s in steps for a in s["actions"] if "anchor" in a]
    assert len(anchors) == 6 and all(set(a) == {"x", "y"} for a in anchors), "image anchors only: no element"
    assert all((recording / s["screen_before"]).is_file() for s in steps)

    ubuntu.show()  # a fresh kiosk: new profile, nothing typed or scrolled
    replay = finish(start_cua(["replay", "out.cua.yaml", "--x-display", ubuntu.x_display, "--json"],
                              clean_env(), tmp_path), 90)
    assert replay.code == 0, replay.stderr
    data = replay.json()
    assert (data["status"], data["healed"]) == ("completed", 0), data
    assert flow_state(ubuntu) == recorded_state


def test_the_recording_ends_when_the_launched_app_closes(ubuntu: Desktop, tmp_path: Path) -> None:
    """``--launch`` starts the app on the display; the person closing it (Ctrl+W closes a kiosk's
    last tab) ends the recording, which is saved with the launch command in the scenario."""
    ubuntu.kiosk.stop()
    ubuntu.page.clear()
    ubuntu.shown = None
    launch = vmserver.kiosk_launch_command(flow_url(ubuntu.page, False), WIDTH, HEIGHT, str(tmp_path / "profile"))
    proc = start_cua(["record", "app.cua.yaml", "--env", "ubuntu", "--x-display", ubuntu.x_display,
                      "--launch", launch], clean_env(), tmp_path)
    wait_until_recording(proc)
    ubuntu.page.wait_for(lambda events: last(events, "ready"), timeout=20, what="the launched page")
    time.sleep(1.5)  # the kiosk window may still be growing to the full screen (seen: 680 px high)
    xdotool(ubuntu.x_display, "mousemove", str(PRESS[0]), str(PRESS[1]), "click", "1")
    ubuntu.page.wait_for(lambda events: ((last(events, "state") or {}).get("state") or {}).get("presses"),
                         what="the click on the launched page")
    xdotool(ubuntu.x_display, "key", "ctrl+w")
    done = finish(proc, 30)  # no signal: closing the app ended it
    assert done.code == 0 and "Traceback" not in done.stderr, done.stderr
    scenario = yaml.safe_load((tmp_path / "app.cua.yaml").read_text())
    assert scenario["env"] == {"kind": "ubuntu", "launch": launch}
    performed = [a for step in scenario["script"] for a in step.get("actions") or []]
    assert performed == [{"type": "click", "x": PRESS[0], "y": PRESS[1], "button": "left"},
                         {"type": "keypress", "keys": ["CTRL", "w"]}], "as done: the keys that closed it too"


@pytest.mark.parametrize("ending", ["the display goes away", "Alt+Shift+S"])
def test_the_recording_ends_without_a_signal(ending: str, tmp_path: Path) -> None:
    xvfb = vmserver.Xvfb(640, 480)
    try:
        proc = start_cua(["record", "end.cua.yaml", "--env", "ubuntu", "--x-display", xvfb.display,
                          "--display", "640x480"], clean_env(), tmp_path)
        wait_until_recording(proc)
        # Then still for a second: the screen is not being read when the display ends (Pillow's
        # grab can crash the process when the X server dies in the middle of one).
        xdotool(xvfb.display, "mousemove", "30", "40", "click", "1", pause=1.0)
        if ending == "Alt+Shift+S":
            xdotool(xvfb.display, "key", "alt+shift+s", pause=0)
            done = finish(proc, 30)
    finally:
        xvfb.stop()
    if ending != "Alt+Shift+S":
        done = finish(proc, 30)
    assert done.code == 0 and "Traceback" not in done.stderr, done.stderr
    scenario = yaml.safe_load((tmp_path / "end.cua.yaml").read_text())
    assert [a for step in scenario["script"] for a in step.get("actions") or []] == [
        {"type": "click", "x": 30, "y": 40, "button": "left"}], "the stop key is not recorded"


def test_recording_a_desktop_needs_a_display_to_record(tmp_path: Path) -> None:
    env = {k: v for k, v in clean_env().items() if k != "DISPLAY"}
    done = finish(start_cua(["record", "out.cua.yaml", "--env", "ubuntu", "--launch", "xterm"], env, tmp_path), 30)
    assert done.code == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--x-display" in done.stderr
    assert not (tmp_path / "out.cua.yaml").exists()


def test_on_a_desktop_it_records_a_display_of_its_own_shown_in_a_window(ubuntu: Desktop, tmp_path: Path) -> None:
    """No --x-display: Xephyr opens the recorded display as a window on the person's; the person's
    input goes through that window. The scenario names the launched app, so the replay brings up
    its own display with it."""
    ubuntu.kiosk.stop()
    ubuntu.page.clear()
    ubuntu.shown = None
    person = vmserver.Xvfb(1280, 1024)  # the person's desktop
    try:
        launch = vmserver.kiosk_launch_command(flow_url(ubuntu.page, False), WIDTH, HEIGHT, str(tmp_path / "p"))
        proc = start_cua(["record", "own.cua.yaml", "--env", "ubuntu", "--launch", launch],
                         clean_env(DISPLAY=person.display), tmp_path)
        wait_until_recording(proc)
        ubuntu.page.wait_for(lambda events: last(events, "ready"), timeout=30, what="the launched page")
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "cua: the recorded display",
                                "getwindowgeometry", "%@"], env={**os.environ, "DISPLAY": person.display},
                               capture_output=True, text=True, timeout=20).stdout
        left, top = (int(v) for v in found.split("Position: ")[1].split()[0].split(","))
        xdotool(person.display, "mousemove", str(left + PRESS[0]), str(top + PRESS[1]), "click", "1")
        ubuntu.page.wait_for(lambda events: ((last(events, "state") or {}).get("state") or {}).get("presses"),
                             what="the click through the window")
        proc.send_signal(signal.SIGINT)
        done = finish(proc, 60)
    finally:
        person.stop()
    assert done.code == 0 and "Traceback" not in done.stderr, done.stderr
    scenario = yaml.safe_load((tmp_path / "own.cua.yaml").read_text())
    assert scenario["env"] == {"kind": "ubuntu", "launch": launch}
    assert [a for step in scenario["script"] for a in step.get("actions") or []] == [
        {"type": "click", "x": PRESS[0], "y": PRESS[1], "button": "left"}]
    ubuntu.page.clear()
    # The replay starts a display and the app of its own, finds the recorded button there by its
    # image, clicks it, and closes both (too soon, at times, for the page to report the click).
    replay = finish(start_cua(["replay", "own.cua.yaml", "--json"], clean_env(), tmp_path), 90)
    assert replay.code == 0, replay.stderr
    # (Found where it was, or a pixel or two off on a display that rendered it a little otherwise.)
    assert (replay.json()["status"], replay.json()["steps"]) == ("completed", 1)
    ubuntu.page.wait_for(lambda events: last(events, "ready"), what="the app on the replay's own display")


# --- the translation alone ------------------------------------------------------------------------

CTRL, ALT, SHIFT, LOCK, ALTGR = 4, 8, 1, 2, 128
A_ROW = (ord("a"), ord("A"), ord("a"), ord("A"), ord("æ"), ord("Æ"))
ONE_ROW = (ord("1"), ord("!"))
S_ROW = (ord("s"), ord("S"))
RETURN_ROW = (0xFF0D,)
TAB_ROW = (0xFF09, 0xFE20)  # Tab, ISO_Left_Tab
SHIFT_ROW = (0xFFE1,)


def translate(*events: XInput) -> list[Any]:
    gestures: list[Any] = []
    stops: list[bool] = []
    translator = DesktopGestures(lambda x, y: (round(x / 2), round(y / 2)), 60.0, gestures.append,
                                 modifiers={SHIFT: "SHIFT", CTRL: "CTRL", ALT: "ALT"}, level3_mask=ALTGR,
                                 on_stop=lambda: stops.append(True))
    for event in events:
        translator.feed(event)
    translator.flush_wheel()
    return [(type(g.action).__name__, g.action.model_dump(exclude_none=True), g.count) for g in gestures] + \
        [("stop",)] * len(stops)


def click(button: int, x: int, y: int, t: int, state: int = 0) -> list[XInput]:
    return [XInput("press", x, y, state, t, button), XInput("release", x, y, state, t + 30, button)]


def key(row: tuple[int, ...], state: int = 0, t: int = 0) -> XInput:
    return XInput("key", 0, 0, state, t, 38, row)


def test_clicks_count_by_time_and_place_and_keep_held_modifiers() -> None:
    got = translate(*click(1, 200, 100, 0), *click(1, 202, 103, 200), *click(1, 202, 103, 700),
                    *click(3, 40, 40, 1000, CTRL | SHIFT), *click(2, 40, 40, 1100))
    assert [(g[1]["button"], g[1]["x"], g[1]["y"], g[1].get("keys"), g[2]) for g in got] == [
        ("left", 100, 50, None, 1), ("left", 101, 52, None, 2),  # 200 ms later, 3 px away: the second
        ("left", 101, 52, None, 1),  # 500 ms after that: a new series
        ("right", 20, 20, ["CTRL", "SHIFT"], 1), ("wheel", 20, 20, None, 1)]
    assert {g[0] for g in got} == {Click.__name__}


def test_a_press_moved_more_than_five_pixels_is_a_drag_with_its_path() -> None:
    moves = [XInput("motion", 100 + 4 * i, 100 + 3 * i, 256, 10 * i) for i in range(1, 40)]
    got = translate(XInput("press", 100, 100, 0, 0, 1), *moves, XInput("release", 260, 220, 256, 500, 1),
                    XInput("press", 10, 10, 0, 900, 1), XInput("motion", 14, 13, 256, 910),
                    XInput("release", 14, 13, 256, 920, 1))
    assert got[0][0] == Drag.__name__
    path = got[0][1]["path"]
    assert path[0] == {"x": 50, "y": 50} and path[-1] == {"x": 130, "y": 110} and len(path) == 16
    assert got[1] == (Click.__name__, {"type": "click", "x": 5, "y": 5, "button": "left"}, 1), "4 px: a click"


def test_wheel_notches_make_one_scroll_per_burst() -> None:
    burst = [XInput(kind, 300, 200, 0, t + (kind == "release"), button) for t in (0, 50, 100)
             for button in (5,) for kind in ("press", "release")]
    later = [XInput("press", 300, 200, 0, 1000, 4), XInput("press", 300, 200, 0, 1010, 7)]
    got = translate(*burst, *later)
    assert got == [(Scroll.__name__, {"type": "scroll", "x": 150, "y": 100, "scroll_x": 0, "scroll_y": 180}, 1),
                   (Scroll.__name__, {"type": "scroll", "x": 150, "y": 100, "scroll_x": 60, "scroll_y": -60}, 1)]


def test_keys_become_text_and_chords() -> None:
    got = translate(key(A_ROW), key(A_ROW, SHIFT), key(A_ROW, LOCK), key(ONE_ROW, SHIFT | LOCK),
                    key(A_ROW, ALTGR), key(SHIFT_ROW), key(A_ROW, CTRL), key(A_ROW, CTRL | SHIFT),
                    key(RETURN_ROW), key(TAB_ROW, SHIFT), key((ord(" "),)), key(S_ROW, ALT | SHIFT))
    assert got == [
        (Type.__name__, {"type": "type", "text": "a"}, 1), (Type.__name__, {"type": "type", "text": "A"}, 1),
        (Type.__name__, {"type": "type", "text": "A"}, 1), (Type.__name__, {"type": "type", "text": "!"}, 1),
        (Type.__name__, {"type": "type", "text": "æ"}, 1),  # AltGr picks the third level; Shift alone: nothing
        (Keypress.__name__, {"type": "keypress", "keys": ["CTRL", "a"]}, 1),
        (Keypress.__name__, {"type": "keypress", "keys": ["CTRL", "SHIFT", "a"]}, 1),
        (Keypress.__name__, {"type": "keypress", "keys": ["ENTER"]}, 1),
        (Keypress.__name__, {"type": "keypress", "keys": ["SHIFT", "TAB"]}, 1),
        (Type.__name__, {"type": "type", "text": " "}, 1),
        ("stop",)]  # Alt+Shift+S stops, and is not recorded
