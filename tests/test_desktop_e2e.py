"""``cua run`` and ``cua replay`` on desktops, from the outside: the installed ``cua`` in a subprocess.

Two desktops: a local X display (``--env ubuntu --x-display :N``, an Xvfb this module started with
a kiosk Chromium on it) and a "VM" (``--env linux --vm-url``: the real cua computer server on its
own Xvfb with a kiosk Chromium, at 1x and at 2x the model's display). The model is the stand-in
Responses server, over HTTP. The page (tests/pages_desktop/flow.html) POSTs its whole state to its
own server after every input, so each assertion is about what the application really received.

Each desktop and server starts once per module; between runs the kiosk is restarted on a fresh
profile, on the shifted layout (?shift=1) when a replay has to heal.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from PIL import Image, ImageGrab

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cli_helpers  # noqa: E402
import vmserver  # noqa: E402
from cli_helpers import Finished, clean_env, start_cua  # noqa: E402
from vmserver import last  # noqa: E402

from cua.testing.standin import StandIn, Turn, png_size  # noqa: E402

API_KEY = "sk-test"
MODELS = {"preview": "computer-use-preview", "ga": "gpt-5.4"}
WIDTH, HEIGHT = 1024, 768
# What ?shift=1 moves every target by: deliberately not a round number of pixels.
SHIFT = (71, 50)

# Model coordinates of the page's targets (unshifted); CSS pixels at 1x, and at 2x with dpr 2.
PRESS, TWICE, MENU, HOVER, FIELD, PANE = (100, 65), (260, 65), (420, 65), (580, 65), (190, 150), (520, 210)
DRAG_PATH = [(100, 360), (220, 420), (340, 400), (460, 470)]

FLOW: list[dict[str, Any]] = [
    {"type": "click", "x": PRESS[0], "y": PRESS[1], "button": "left"},
    {"type": "click", "x": MENU[0], "y": MENU[1], "button": "right"},
    {"type": "double_click", "x": TWICE[0], "y": TWICE[1]},
    {"type": "move", "x": HOVER[0], "y": HOVER[1]},
    {"type": "click", "x": FIELD[0], "y": FIELD[1], "button": "left"},
    {"type": "type", "text": "hello wörld"},
    {"type": "keypress", "keys": ["CTRL", "A"]},  # a chord: select all, so the next text replaces
    {"type": "type", "text": "café 世界"},
    {"type": "keypress", "keys": ["BACKSPACE"]},
    {"type": "scroll", "x": PANE[0], "y": PANE[1], "scroll_x": 0, "scroll_y": 300},
    {"type": "drag", "path": [{"x": x, "y": y} for x, y in DRAG_PATH]},
    {"type": "wait"},
]
COORDINATE_ACTIONS = sum(a["type"] in {"click", "double_click", "move", "scroll", "drag"} for a in FLOW)
FINAL = "The flow is done."
# Every box is 120x50 and every coordinate its centre; the drag runs from the grip to the canvas.
EXPECTED = {
    "presses": [{"at": [60, 25], "held": []}], "menus": [{"at": [60, 25], "held": []}],
    "middles": [], "doubles": [{"at": [60, 25]}], "hovered": {"at": [60, 25], "held": []},
    "value": "café 世", "chords": ["a"],
}
EXPECTED_DRAG = {"from": [60, 40], "to": [420, 150], "held": []}


# The VM types through the computer server's own keyboard library, which on Linux re-binds spare
# keycodes for non-ASCII characters in a way Chromium can read stale (an upstream limitation, see
# RemoteEnvironment): the VM flow types ASCII. The local X display types the Unicode text.
ASCII_TEXTS = {"hello wörld": "hello world", "café 世界": "cafe ok"}


def flow_for(desktop: "Desktop") -> list[dict[str, Any]]:
    if desktop.name == "ubuntu":
        return FLOW
    return [{**a, "text": ASCII_TEXTS[a["text"]]} if a["type"] == "type" else a for a in FLOW]


def expected_for(desktop: "Desktop") -> dict[str, Any]:
    return EXPECTED if desktop.name == "ubuntu" else {**EXPECTED, "value": "cafe o"}


def preview_turns(flow: list[dict[str, Any]] = FLOW) -> list[Turn]:
    return [Turn.call(action) for action in flow] + [Turn.message(FINAL)]


def ga_turns(flow: list[dict[str, Any]] = FLOW) -> list[Turn]:
    """Three batches (buttons and hover; keyboard; scroll, drag and wait), then the answer.

    The move ends its batch: X input is asynchronous, and Chromium merges a move with the next
    one when both arrive within a frame, so a hover followed at once by a click elsewhere may
    never reach the hovered box (the browser environment's CDP input would).
    """
    return [Turn.call(*flow[:4], reasoning="The buttons first."), Turn.call(*flow[4:9]),
            Turn.call(*flow[9:]), Turn.message(FINAL)]


# --- running cua ----------------------------------------------------------------------------------


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> Finished:
    """``cli_helpers.finish`` with a desktop's longer default, and cua must not have crashed."""
    done = cli_helpers.finish(proc, timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def run_folder(run_dir: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    folder = Path(run_dir)
    steps = [json.loads(line) for line in (folder / "steps.jsonl").read_text().splitlines() if line]
    return json.loads((folder / "run.json").read_text()), steps


def screen_sizes(run_dir: str) -> set[tuple[int, int]]:
    shots = list((Path(run_dir) / "screens").glob("*.png"))
    assert shots, f"no screenshots in {run_dir}"
    return {Image.open(shot).size for shot in shots}


# --- the desktops -----------------------------------------------------------------------------------


def is_press_blue(pixel: tuple[int, int, int]) -> bool:
    return sum(abs(c - want) for c, want in zip(pixel, (0x20, 0x50, 0xC0))) < 24


def flow_url(page: vmserver.PageServer, shift: bool) -> str:
    return page.url.rsplit("/", 1)[0] + "/flow.html" + ("?shift=1" if shift else "")


@dataclass
class Desktop:
    """One desktop showing the flow page: what ``cua`` is told to drive it, and how to reset it."""

    name: str
    page: vmserver.PageServer
    x_display: str
    scale: int
    cua_args: list[str]
    open_page: Callable[[str], None]  # restart the kiosk on a URL
    shown: bool | None = None  # the shift of a page no run has touched yet; None: used or none
    recorded: dict[str, Any] = field(default_factory=dict)
    kiosk: Any = None  # the local display's kiosk (vmserver.Kiosk), to stop it or start another

    def show(self, shift: bool = False) -> None:
        """A fresh flow page (shifted or not), loaded and painted, with no events recorded yet."""
        if self.shown is not shift:
            self.page.clear()
            self.open_page(flow_url(self.page, shift))
        self.page.wait_for(lambda ev: (r := last(ev, "ready")) and r["shifted"] == shift, timeout=40,
                           what=f"the flow page on {self.name}")
        # Painted: the Press box's blue shows where it belongs, then two grabs in a row agree.
        x, y = (45 + SHIFT[0] * shift) * self.scale, (45 + SHIFT[1] * shift) * self.scale
        deadline = time.monotonic() + 20
        previous = None
        while True:
            screen = ImageGrab.grab(xdisplay=self.x_display).convert("RGB")
            if is_press_blue(screen.getpixel((x, y))):
                if screen.tobytes() == previous:
                    break
                previous = screen.tobytes()
            assert time.monotonic() < deadline, f"the flow page never painted on {self.name}"
            time.sleep(0.1)
        self.page.clear()
        self.shown = None  # the next run touches it


@pytest.fixture(scope="module")
def ubuntu() -> Iterator[Desktop]:
    page = vmserver.PageServer()
    xvfb = vmserver.Xvfb(WIDTH, HEIGHT)
    kiosk = vmserver.Kiosk(xvfb.display, WIDTH, HEIGHT)
    try:
        yield Desktop("ubuntu", page, xvfb.display, 1, ["--env", "ubuntu", "--x-display", xvfb.display],
                      kiosk.open, kiosk=kiosk)
    finally:
        kiosk.close()
        xvfb.stop()
        page.close()


@pytest.fixture(scope="module")
def vm_python() -> Path:
    return vmserver.ensure_vm_server()


def _vm(scale: int) -> Iterator[Desktop]:
    page = vmserver.PageServer()
    runner = vmserver.VMRunner(flow_url(page, False), WIDTH * scale, HEIGHT * scale, scale=scale)
    try:
        yield Desktop(f"the {scale}x VM", page, runner.vm.x_display, scale,
                      ["--env", "linux", "--vm-url", runner.vm.url], runner.restart_browser, shown=False)
    finally:
        runner.stop()
        page.close()
    assert not any(vmserver.pid_alive(pid) for pid in runner.vm.pids)


@pytest.fixture(scope="module")
def vm(vm_python) -> Iterator[Desktop]:
    yield from _vm(1)


@pytest.fixture(scope="module")
def vm2x(vm_python) -> Iterator[Desktop]:
    yield from _vm(2)


def page_state(desktop: Desktop, flow_of: Desktop | None = None) -> dict[str, Any]:
    """The page's state once every input of the flow arrived (and the pane stopped scrolling);
    ``flow_of``: the desktop whose flow it was, when not this one's."""

    def complete(events: list[dict[str, Any]]) -> dict[str, Any] | None:
        state = (last(events, "state") or {}).get("state") or {}
        done = (state.get("drag") and state.get("paneTop", 0) > 0
                and state.get("value") == expected_for(flow_of or desktop)["value"])
        return state if done else None

    return desktop.page.wait_for(complete, timeout=15, what=f"the whole flow on {desktop.name}")


def assert_flow_landed(state: dict[str, Any], desktop: Desktop) -> None:
    expected = expected_for(desktop)
    assert {k: state[k] for k in expected} == expected
    drag = state["drag"]
    assert {k: drag[k] for k in EXPECTED_DRAG} == EXPECTED_DRAG
    assert drag["moves"] >= 3, f"the drag went through its path, not straight to the end: {drag}"
    assert state["paneTop"] >= 100, "three wheel clicks scrolled the inner pane"


def run_flow(desktop: Desktop, fmt: str, out: Path) -> tuple[Finished, StandIn]:
    desktop.show()
    flow = flow_for(desktop)
    server = StandIn(preview_turns(flow) if fmt == "preview" else ga_turns(flow), api_key=API_KEY)
    with server:
        proc = start_cua(["run", "--task", "work the flow page", *desktop.cua_args, "--model", MODELS[fmt],
                          "--base-url", server.base_url, "--json", "--out", str(out)],
                         clean_env(OPENAI_API_KEY=API_KEY), out)
        done = finish(proc)
    return done, server


def assert_completed_run(done: Finished, server: StandIn, fmt: str, env: str) -> dict[str, Any]:
    assert done.code == 0, done.stderr
    data = done.json()
    turns = len(FLOW) + 1 if fmt == "preview" else 4
    assert (data["status"], data["exit_code"], data["error"]) == ("completed", 0, None)
    assert (data["steps"], data["final_text"]) == (turns, FINAL)
    assert server.rejections == [] and len(server.requests) == turns
    tool = server.requests[0]["tools"][0]
    if fmt == "preview":
        assert tool == {"type": "computer_use_preview", "display_width": WIDTH, "display_height": HEIGHT,
                        "environment": env}
    else:
        assert tool == {"type": "computer"}
    assert {png_size(png) for png in server.screenshots} == {(WIDTH, HEIGHT)}
    meta, steps = run_folder(data["run_dir"])
    assert meta["status"] == "completed" and meta["settings"]["env"] == env
    assert [a["action"]["type"] for s in steps for a in s.get("actions") or []] == [a["type"] for a in FLOW]
    assert screen_sizes(data["run_dir"]) == {(WIDTH, HEIGHT)}
    return data


# --- 1. a local X display -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["preview", "ga"])
def test_ubuntu_display_flow(ubuntu: Desktop, fmt: str, tmp_path: Path) -> None:
    done, server = run_flow(ubuntu, fmt, tmp_path)
    data = assert_completed_run(done, server, fmt, "ubuntu")
    state = page_state(ubuntu)
    assert_flow_landed(state, ubuntu)
    meta, _ = run_folder(data["run_dir"])
    assert meta["settings"]["x_display"] == ubuntu.x_display
    ubuntu.recorded[fmt] = (data["run_dir"], state)


# --- 2. a VM through the computer server ------------------------------------------------------------


def test_vm_flow_preview(vm: Desktop, tmp_path: Path) -> None:
    done, server = run_flow(vm, "preview", tmp_path)
    data = assert_completed_run(done, server, "preview", "linux")
    state = page_state(vm)
    assert_flow_landed(state, vm)
    assert run_folder(data["run_dir"])[0]["settings"]["vm_url"] == vm.cua_args[-1]
    vm.recorded["preview"] = (data["run_dir"], state)


def test_vm_at_twice_the_display_flow_ga(vm2x: Desktop, tmp_path: Path) -> None:
    """The VM's screen is 2048x1536: the model still sees 1024x768, and every input lands at the
    page's CSS pixel it aimed at (Chromium at device scale 2), so coordinates were doubled."""
    done, server = run_flow(vm2x, "ga", tmp_path)
    assert_completed_run(done, server, "ga", "linux")
    assert_flow_landed(page_state(vm2x), vm2x)
    # The downscaled screenshot shows the page where the model's coordinates point.
    shot = Image.open(io.BytesIO(server.screenshots[0])).convert("RGB")
    assert is_press_blue(shot.getpixel((45, 45))), "the Press box is at (40..160, 40..90)"


# --- 4. record and replay -------------------------------------------------------------------------


def replay(desktop: Desktop, run_dir: str, out: Path, *, shift: bool, flags: tuple[str, ...] = (),
           flow_of: Desktop | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``cua replay`` (no API key anywhere) on a fresh page; its JSON and the page's state.
    ``flags`` point the replay elsewhere; ``flow_of``: the desktop that recorded it, if another."""
    desktop.show(shift)
    out.mkdir()
    done = finish(start_cua(["replay", run_dir, *flags, "--json", "--out", str(out)], clean_env(), out))
    assert done.code == 0, done.stderr
    return done.json(), page_state(desktop, flow_of)


def without_moves(state: dict[str, Any]) -> dict[str, Any]:
    """The state less the number of pointer events of the drag, which depends on timing."""
    return {**state, "drag": {k: v for k, v in state["drag"].items() if k != "moves"}}


def assert_replays_and_heals(desktop: Desktop, fmt: str, tmp_path: Path) -> None:
    if fmt not in desktop.recorded:
        pytest.skip(f"the {fmt} run on {desktop.name} did not complete")
    run_dir, recorded_state = desktop.recorded[fmt]

    data, state = replay(desktop, run_dir, tmp_path / "same", shift=False)
    assert (data["status"], data["exit_code"], data["healed"]) == ("completed", 0, 0)
    assert without_moves(state) == without_moves(recorded_state)
    assert_flow_landed(state, desktop)

    # Every target moved by SHIFT: found again by the image around the recorded point.
    data, state = replay(desktop, run_dir, tmp_path / "shifted", shift=True)
    assert (data["status"], data["exit_code"]) == ("completed", 0), data
    assert data["healed"] == COORDINATE_ACTIONS
    assert_flow_landed(state, desktop)
    assert without_moves(state) == without_moves(recorded_state)
    _, steps = run_folder(data["run_dir"])
    healed = [a["healed"] for s in steps for a in s.get("actions") or [] if a.get("healed")]
    assert {h["by"] for h in healed} == {"image"}, "a desktop has no element anchors"
    assert all([h["to"][0] - h["from"][0], h["to"][1] - h["from"][1]] == list(SHIFT) for h in healed), healed


def test_ubuntu_run_replays_and_heals_by_image(ubuntu: Desktop, tmp_path: Path) -> None:
    assert_replays_and_heals(ubuntu, "ga", tmp_path)


def test_vm_run_replays_and_heals_by_image(vm: Desktop, tmp_path: Path) -> None:
    """The recorded settings carry vm_url, so the replay drives the same computer server."""
    assert_replays_and_heals(vm, "preview", tmp_path)


def test_a_vm_recording_replays_on_a_local_display_given_by_x_display(vm: Desktop, ubuntu: Desktop,
                                                                      tmp_path: Path) -> None:
    """``cua replay --x-display`` moves a VM's recording onto a local display showing the same app:
    the recorded VM is not contacted (its URL is dropped), the page there gets the same inputs."""
    if "preview" not in vm.recorded:
        pytest.skip("the preview run on the VM did not complete")
    run_dir, recorded_state = vm.recorded["preview"]
    vm.page.clear()
    data, state = replay(ubuntu, run_dir, tmp_path / "out", shift=False, flags=("--x-display", ubuntu.x_display),
                         flow_of=vm)
    assert (data["status"], data["healed"]) == ("completed", 0), data
    assert without_moves(state) == without_moves(recorded_state)
    assert vm.page.events() == [], "the VM's page got nothing"
    meta, _ = run_folder(data["run_dir"])
    assert (meta["settings"]["env"], meta["settings"]["x_display"], meta["settings"]["vm_url"]) == (
        "linux", ubuntu.x_display, None)


# --- 3. cua's own Xvfb and kiosk --------------------------------------------------------------------


def descendants(pid: int) -> dict[int, str]:
    """Live descendants of ``pid``: their command names."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if rest[0] != "Z":
            children.setdefault(int(rest[1]), []).append(int(entry))
            names[int(entry)] = name
    found, todo = {}, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found[child] = names[child]
        todo += children.get(child, [])
    return found


def environ_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def executable_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def key_in_environment_after_exec(pid: int, parent: str | None) -> bool:
    """Whether ``pid``, a program cua started, holds the API key. Between fork and exec a child is
    still cua itself, with cua's environment: only an environment read while the child runs a
    program other than the parent's, the same one before and after the read, counts."""
    before = executable_of(pid)
    environment = environ_of(pid)
    after = executable_of(pid)
    return before is not None and before == after != parent and API_KEY.encode() in environment


def display_of(pid: int) -> str | None:
    env = environ_of(pid).split(b"\0")
    return next((v[8:].decode() for v in env if v.startswith(b"DISPLAY=")), None)


def processes_on(x_display: str) -> list[int]:
    """Every live process whose environment points at ``x_display`` (catches escaped children)."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()
            and display_of(int(p)) == x_display and vmserver.pid_alive(int(p))]


def test_launch_starts_and_stops_its_own_display(tmp_path: Path) -> None:
    page = vmserver.PageServer()
    launch = vmserver.kiosk_launch_command(flow_url(page, False), WIDTH, HEIGHT, str(tmp_path / "profile"))

    def press_once_loaded(body: dict[str, Any], state: Any) -> Turn:
        # cua returns from start() once the kiosk drew its first frame; the page may still load.
        page.wait_for(lambda ev: last(ev, "ready"), timeout=30, what="the launched page")
        return Turn.call(FLOW[0])

    seen: dict[int, tuple[str, str | None]] = {}  # pid → (name, DISPLAY)
    leaked: set[str] = set()  # names of the children whose environment holds the API key
    stop = threading.Event()
    try:
        with StandIn([press_once_loaded, Turn.message("pressed")], api_key=API_KEY) as server:
            proc = start_cua(["run", "--task", "press it", "--env", "ubuntu", "--launch", launch,
                              "--base-url", server.base_url, "--json", "--out", str(tmp_path)],
                             clean_env(OPENAI_API_KEY=API_KEY), tmp_path)
            parent = executable_of(proc.pid)

            def watch() -> None:
                while not stop.is_set() and proc.poll() is None:
                    for pid, name in descendants(proc.pid).items():  # named once exec'd
                        seen[pid] = (name, seen.get(pid, (name, None))[1] or display_of(pid))
                        if key_in_environment_after_exec(pid, parent):
                            leaked.add(name)
                    time.sleep(0.05)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            done = finish(proc)
            stop.set()
            watcher.join()
        assert done.code == 0, done.stderr
        data = done.json()
        assert (data["status"], data["final_text"]) == ("completed", "pressed")
        assert screen_sizes(data["run_dir"]) == {(WIDTH, HEIGHT)}
        state = page.wait_for(lambda ev: (s := last(ev, "state")) and s["state"]["presses"] and s["state"],
                              what="the press")
        assert state["presses"] == EXPECTED["presses"]

        names = {name for name, _ in seen.values()}
        assert "Xvfb" in names and any("chrom" in n for n in names), names
        assert leaked == set(), "Xvfb, xdotool and the launched program get no API key"
        displays = {display for name, display in seen.values() if "chrom" in name} - {None}
        assert len(displays) == 1, seen
        x_display = displays.pop()
        assert [f"{pid} {name}" for pid, (name, _) in seen.items() if vmserver.pid_alive(pid)] == []
        assert processes_on(x_display) == []
        assert not Path(f"/tmp/.X11-unix/X{x_display[1:]}").exists(), "Xvfb left its socket"
    finally:
        stop.set()
        page.close()


# --- 5. environments that cannot start ----------------------------------------------------------------


def unused_display() -> str:
    number = 150
    while Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
        number += 1
    return f":{number}"


def test_environment_errors_exit_4_with_one_clear_message(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{vmserver.free_port()}"
    x_display = unused_display()
    cases = {
        "closed VM port": (["--env", "linux", "--vm-url", closed], closed),
        "mac without a URL": (["--env", "mac"], "--vm-url"),
        "no such display": (["--env", "ubuntu", "--x-display", x_display], x_display),
    }
    # Started together: the missing display is only given up on after cua's start timeout.
    procs = {
        name: start_cua(["run", "--task", "anything", *args, "--base-url", f"{closed}/v1",
                         "--out", str(tmp_path / str(n))], clean_env(OPENAI_API_KEY=API_KEY), tmp_path)
        for n, (name, (args, _)) in enumerate(cases.items())
    }
    for name, proc in procs.items():
        done = finish(proc, timeout=60)
        mentions = cases[name][1]
        assert done.code == 4, (name, done.stderr)
        messages = [line for line in done.stderr.splitlines() if mentions in line]
        assert len(messages) == 1, (name, done.stderr)


# --- known gaps -------------------------------------------------------------------------------------


def test_image_healing_finds_a_text_crop_at_every_sub_cell_offset() -> None:
    from PIL import ImageDraw, ImageFont

    from cua.replay.matching import locate

    font = ImageFont.load_default(size=18)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]

    def pane(dx: int, dy: int) -> bytes:
        image = Image.new("RGB", (WIDTH, HEIGHT), "white")
        draw = ImageDraw.Draw(image)
        draw.rectangle((400 + dx, 130 + dy, 640 + dx, 290 + dy), fill=(232, 240, 232),
                       outline=(64, 64, 64), width=2)
        for i in range(1, 7):
            draw.text((410 + dx, 108 + dy + 24 * i), f"row {i}: {words[i % 7]} {words[i * 3 % 7]}",
                      fill="black", font=font)
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    seen = pane(0, 0)
    missed = []
    for dx in range(68, 72):
        for dy in range(48, 52):
            match = locate(seen, pane(dx, dy), *PANE)
            if match is None or match[:2] != (PANE[0] + dx, PANE[1] + dy):
                missed.append((dx, dy))
    assert missed == [], missed
