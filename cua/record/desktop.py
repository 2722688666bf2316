"""Capturing a person's input on an X display: the RECORD extension, read by python-xlib.

The X server copies every input event of the display to a recording connection (RECORD's device
events: what the keyboard and mouse did, before any application saw it). A thread reads them and
hands each one, as an ``XInput``, to the event loop, where ``DesktopGestures`` turns them into
gestures: presses and releases into clicks (with the platform's click count) and drags, wheel
notches into one scroll per burst, key presses into typed characters and key chords. There is no
page to describe, so anchors are by image only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..actions import Click, Drag, Keypress, Point, Scroll, Type
from ..config import RunSettings
from ..environments.base import Environment
from ..environments.keys_x11 import NAMED_KEYSYMS
from ..errors import ConfigError, EnvironmentError_
from .gestures import Gesture, Push, chord, thin_path, written_key

if TYPE_CHECKING:
    from ..environments.xvfb import XDisplayEnvironment

log = logging.getLogger(__name__)

# A press this soon (X server ms) and this near (screen px) after the last one of the same button
# is the next click of a series (a double click); a pointer moved farther than NEAR_PX is a drag.
CLICK_SERIES_MS, NEAR_PX = 400, 5
# Wheel notches this far apart (ms) or place (px) are separate scrolls.
WHEEL_GAP_MS, WHEEL_NEAR_PX = 600, 40
POINTER_BUTTONS = {1: "left", 2: "wheel", 3: "right", 8: "back", 9: "forward"}
# Wheel buttons: (axis, sign), the way XDisplayEnvironment.scroll presses them.
WHEEL_BUTTONS = {4: ("y", -1), 5: ("y", 1), 6: ("x", -1), 7: ("x", 1)}
SHIFT_MASK, LOCK_MASK = 1, 2
STOP_CHORD = ["ALT", "SHIFT", "s"]  # as in the browser


def _keysym(name: str) -> int:
    from Xlib import XK

    return XK.string_to_keysym(name)


def _named_keys() -> dict[int, str]:
    """Keysym → written key name, from the one X key table (plus the keysyms of the same keys a
    keyboard sends in other places: the keypad, the right-hand side, Shift+Tab)."""
    names = {_keysym(sym): written_key(canonical) for canonical, sym in NAMED_KEYSYMS.items()}
    extra = {"KP_Enter": "ENTER", "ISO_Left_Tab": "TAB", "KP_Delete": "DELETE", "KP_Home": "HOME",
             "KP_End": "END", "KP_Prior": "PAGEUP", "KP_Next": "PAGEDOWN", "KP_Insert": "INSERT",
             "KP_Left": "ARROWLEFT", "KP_Right": "ARROWRIGHT", "KP_Up": "ARROWUP", "KP_Down": "ARROWDOWN"}
    names.update({_keysym(sym): name for sym, name in extra.items()})
    return {ks: name for ks, name in names.items() if ks and name}


# Keysyms of the modifier keys themselves: their state arrives with the key they modify.
MODIFIER_KEYSYMS = {"Shift_L", "Shift_R", "Control_L", "Control_R", "Caps_Lock", "Shift_Lock", "Meta_L",
                    "Meta_R", "Alt_L", "Alt_R", "Super_L", "Super_R", "Hyper_L", "Hyper_R",
                    "ISO_Level3_Shift", "ISO_Level5_Shift", "Mode_switch", "Num_Lock"}
# Which modifier a keysym bound to Mod1..Mod5 makes (the server's modifier mapping says which).
MODIFIER_NAMES = {"Control_L": "CTRL", "Control_R": "CTRL", "Alt_L": "ALT", "Alt_R": "ALT", "Meta_L": "ALT",
                  "Meta_R": "ALT", "Super_L": "META", "Super_R": "META", "Shift_L": "SHIFT", "Shift_R": "SHIFT"}


def keysym_char(keysym: int) -> str | None:
    """The character a keysym types (Latin-1 and Unicode keysyms), None for other keys."""
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if 0x01000100 <= keysym <= 0x0110FFFF:
        return chr(keysym - 0x01000000)
    if keysym == 0x20AC:  # EuroSign, from before Unicode keysyms
        return "€"
    return None


@dataclass(frozen=True)
class XInput:
    """One device event as RECORD reported it: ``kind`` is press, release, motion or key;
    ``detail`` the button; ``x``, ``y`` root coordinates; ``state`` the modifier and button mask
    before the event; ``time`` the server's ms; ``keysyms`` the pressed key's keyboard-mapping row."""

    kind: str
    x: int
    y: int
    state: int
    time: int
    detail: int = 0
    keysyms: tuple[int, ...] = ()


@dataclass
class _Press:
    button: int
    x: int
    y: int
    time: int
    mods: list[str]
    count: int
    path: list[tuple[int, int]]
    moved: bool = False


class DesktopGestures:
    """Turns ``XInput`` into gestures given to ``push`` (in model space, through ``to_model``).

    ``modifiers`` names the state mask bits of CTRL, ALT, META (and SHIFT); ``level3_mask`` is the
    bit of the key that picks a keyboard's third level (AltGr), which selects characters and
    is not a chord modifier. ``notch_px`` is how many model pixels one wheel notch scrolls.
    """

    def __init__(self, to_model: Callable[[float, float], tuple[int, int]], notch_px: float, push: Push, *,
                 modifiers: dict[int, str], level3_mask: int = 0,
                 on_stop: Callable[[], None] = lambda: None) -> None:
        self.to_model, self.notch_px, self.push = to_model, notch_px, push
        self.modifiers, self.level3_mask, self.on_stop = modifiers, level3_mask, on_stop
        self._named = _named_keys()
        self._modifier_keysyms = {_keysym(name) for name in MODIFIER_KEYSYMS}
        self._press: _Press | None = None
        self._last_click: _Press | None = None
        self._wheel: dict[str, Any] | None = None

    @property
    def scrolling(self) -> bool:
        """Whether wheel notches wait to become a scroll."""
        return self._wheel is not None

    def mods(self, state: int) -> list[str]:
        return chord([name for bit, name in self.modifiers.items() if state & bit])

    def feed(self, event: XInput) -> None:
        if event.kind == "motion":
            self._motion(event)
            return
        if event.kind == "press" and event.detail in WHEEL_BUTTONS:
            self._add_wheel(event)
            return
        if event.kind == "release" and event.detail in WHEEL_BUTTONS:
            return
        self.flush_wheel()
        if event.kind == "press":
            self._button_down(event)
        elif event.kind == "release":
            self._button_up(event)
        elif event.kind == "key":
            self._key(event)

    # -- the pointer -------------------------------------------------------------------------------
    def _button_down(self, event: XInput) -> None:
        if event.detail not in POINTER_BUTTONS or self._press is not None:
            return  # a second button held with the first: the first one's gesture goes on
        last, count = self._last_click, 1
        if (last is not None and last.button == event.detail and event.time - last.time <= CLICK_SERIES_MS
                and abs(event.x - last.x) <= NEAR_PX and abs(event.y - last.y) <= NEAR_PX):
            count = last.count + 1
        self._press = _Press(event.detail, event.x, event.y, event.time, self.mods(event.state), count,
                             [(event.x, event.y)])

    def _motion(self, event: XInput) -> None:
        press = self._press
        if press is None:
            return
        if (event.x, event.y) != press.path[-1]:
            press.path.append((event.x, event.y))
        if abs(event.x - press.x) > NEAR_PX or abs(event.y - press.y) > NEAR_PX:
            press.moved = True

    def _button_up(self, event: XInput) -> None:
        press = self._press
        if press is None or press.button != event.detail:
            return
        self._press = None
        if (event.x, event.y) != press.path[-1]:
            press.path.append((event.x, event.y))
        keys = press.mods or None
        if press.moved and press.button == 1:
            self._last_click = None
            path = [self.to_model(x, y) for x, y in press.path]
            self.push(Gesture(Drag(path=[Point(x=x, y=y) for x, y in thin_path(path)], keys=keys)))
            return
        self._last_click = press
        x, y = self.to_model(press.x, press.y)
        self.push(Gesture(Click(x=x, y=y, button=POINTER_BUTTONS[press.button], keys=keys), count=press.count))

    # -- the wheel ---------------------------------------------------------------------------------
    def _add_wheel(self, event: XInput) -> None:
        mods = self.mods(event.state)
        wheel = self._wheel
        if wheel and (event.time - wheel["time"] > WHEEL_GAP_MS or abs(wheel["sx"] - event.x) > WHEEL_NEAR_PX
                      or abs(wheel["sy"] - event.y) > WHEEL_NEAR_PX or wheel["mods"] != mods):
            self.flush_wheel()
            wheel = None
        if wheel is None:
            wheel = self._wheel = {"sx": event.x, "sy": event.y, "x": 0, "y": 0, "mods": mods}
        axis, sign = WHEEL_BUTTONS[event.detail]
        wheel[axis] += sign
        wheel["time"] = event.time
        self._last_click = None

    def flush_wheel(self) -> None:
        """Push the scroll the wheel notches so far make (called when another input comes, and
        by the capture when the wheel has been still for a while)."""
        wheel, self._wheel = self._wheel, None
        if not wheel or not (wheel["x"] or wheel["y"]):
            return
        x, y = self.to_model(wheel["sx"], wheel["sy"])
        self.push(Gesture(Scroll(x=x, y=y, scroll_x=round(wheel["x"] * self.notch_px),
                                 scroll_y=round(wheel["y"] * self.notch_px), keys=wheel["mods"] or None)))

    # -- the keyboard ------------------------------------------------------------------------------
    def _keysym_of(self, event: XInput) -> tuple[int, int]:
        """(the keysym the key's state selects, the key's first-level keysym)."""
        row = list(event.keysyms) + [0] * (6 - len(event.keysyms))
        group = 4 if event.state & self.level3_mask else 0  # XKB's core rows: level 3 and 4 at 4, 5
        shifted = bool(event.state & SHIFT_MASK)
        if event.state & LOCK_MASK and (keysym_char(row[group]) or "").isalpha():
            shifted = not shifted  # Caps Lock: letters of the other case, other keys as they are
        return row[group + shifted] or row[group] or row[0], row[0]

    def _key(self, event: XInput) -> None:
        keysym, base = self._keysym_of(event)
        if not keysym or keysym in self._modifier_keysyms:
            return
        mods = self.mods(event.state)
        chorded = [m for m in mods if m != "SHIFT"]
        char = keysym_char(keysym)
        if char is not None and not chorded:
            self.push(Gesture(Type(text=char)))
            return
        name = self._named.get(keysym) or self._named.get(base)
        if name is None:
            base_char = keysym_char(base)
            name = written_key(base_char) if base_char else None
        if name is None:
            log.info("not recorded: the key with keysym %#x", keysym)
            return
        keys = chord(mods, name)
        if keys == STOP_CHORD:
            self.on_stop()
            return
        self.push(Gesture(Keypress(keys=keys)))


class XRecordCapture:
    """Feeds ``push`` with the gestures of the person using ``env``'s X display."""

    def __init__(self, env: "XDisplayEnvironment", push: Push) -> None:
        self.env = env
        self.push = push
        self.closed = asyncio.Event()  # the display went away, or the launched program exited
        self.stop_asked = asyncio.Event()  # Alt+Shift+S
        self.controls = "stop with Ctrl-C here, Alt+Shift+S on the display, or by closing the launched app"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gestures: DesktopGestures | None = None
        self._control: Any = None  # the connection that looks up keys and ends the recording
        self._data: Any = None  # the connection RECORD sends the events on
        self._context: int | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._wheel_timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def watch(self) -> None:
        self._loop = asyncio.get_running_loop()
        modifiers, level3 = await asyncio.to_thread(self._connect)
        self._gestures = DesktopGestures(self.env.transform.to_model, self.env.wheel_notch_px(), self.push,
                                         modifiers=modifiers, level3_mask=level3, on_stop=self.stop_asked.set)
        self._thread = threading.Thread(target=self._read, name="cua-x-record", daemon=True)
        self._thread.start()
        if self.env.launch_running() is not None:
            self._watcher = self._loop.create_task(self._watch_launched())

    def _connect(self) -> tuple[dict[int, str], int]:
        from Xlib import X, display, error
        from Xlib.ext import record

        where = self.env.x_display or ""
        try:
            self._control = display.Display(where)
            self._data = display.Display(where)
        except (error.DisplayError, OSError) as exc:
            raise EnvironmentError_(f"cannot record X display {where}: {exc}") from None
        if not self._data.has_extension("RECORD"):
            raise EnvironmentError_(f"X display {where} has no RECORD extension, so its input cannot be "
                                    "recorded (Xvfb and Xorg have it unless started with -extension RECORD)")
        self._context = self._control.record_create_context(0, [record.AllClients], [{
            "core_requests": (0, 0), "core_replies": (0, 0), "ext_requests": (0, 0, 0, 0),
            "ext_replies": (0, 0, 0, 0), "delivered_events": (0, 0),
            "device_events": (X.KeyPress, X.MotionNotify), "errors": (0, 0),
            "client_started": False, "client_died": False}])
        self._control.sync()  # the context must exist before the other connection enables it
        modifiers: dict[int, str] = {}
        level3 = 0
        names = {_keysym(name): written for name, written in MODIFIER_NAMES.items()}
        level3_keysyms = {_keysym("ISO_Level3_Shift"), _keysym("Mode_switch")}
        for index, keycodes in enumerate(self._control.get_modifier_mapping()):
            for keycode in keycodes:
                keysym = self._control.keycode_to_keysym(keycode, 0) if keycode else 0
                if keysym in names:
                    modifiers.setdefault(1 << index, names[keysym])
                elif keysym in level3_keysyms:
                    level3 = 1 << index
        modifiers.setdefault(SHIFT_MASK, "SHIFT")
        return dict(sorted(modifiers.items())), level3

    def _read(self) -> None:
        """The RECORD thread: blocks in the data connection until the context is disabled."""
        from Xlib.ext import record

        def received(reply: Any) -> None:
            if reply.category != record.FromServer or reply.client_swapped or self._closing:
                return
            try:
                self._received(reply.data)
            except Exception:  # a strange event must not end the recording
                log.debug("could not read a recorded X event", exc_info=True)

        try:
            self._data.record_enable_context(self._context, received)
        except Exception as exc:  # the display went away
            log.info("the X display stopped recording: %s", exc)
        if not self._closing:  # ended, yet nobody disabled it: the display is gone
            self._to_loop(self.closed.set)

    def _received(self, data: bytes) -> None:
        from Xlib import X
        from Xlib.protocol import rq

        kinds = {X.ButtonPress: "press", X.ButtonRelease: "release", X.MotionNotify: "motion", X.KeyPress: "key"}
        while data:
            event, data = rq.EventField(None).parse_binary_value(data, self._data.display, None, None)
            kind = kinds.get(event.type & 0x7F)
            if kind is None:
                continue
            keysyms: tuple[int, ...] = ()
            if kind == "key":
                with self._lock:  # the keymap as it is now: a person may switch layouts meanwhile
                    keysyms = tuple(self._control.get_keyboard_mapping(event.detail, 1)[0])
            self._to_loop(self._feed, XInput(kind, event.root_x, event.root_y, event.state, event.time,
                                             event.detail, keysyms))

    def _to_loop(self, callback: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _feed(self, event: XInput) -> None:
        gestures = self._gestures
        if self._closing or gestures is None:
            return
        try:
            gestures.feed(event)
        except Exception:
            log.debug("could not use a recorded X event: %r", event, exc_info=True)
        if gestures.scrolling and self._loop is not None:
            if self._wheel_timer is not None:
                self._wheel_timer.cancel()
            self._wheel_timer = self._loop.call_later(WHEEL_GAP_MS / 1000, gestures.flush_wheel)

    async def _watch_launched(self) -> None:
        while self.env.launch_running():
            await asyncio.sleep(0.25)
        if not self._closing:
            self.closed.set()

    async def close(self) -> None:
        if self._gestures is not None and not self._closing:
            self._gestures.flush_wheel()
        self._closing = True
        if self._wheel_timer is not None:
            self._wheel_timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        await asyncio.to_thread(self._disconnect)

    def _disconnect(self) -> None:
        control, data, self._control, self._data = self._control, self._data, None, None
        if control is not None and self._context is not None:
            try:
                with self._lock:
                    control.record_disable_context(self._context)
                    control.flush()
            except Exception:  # the display is gone already
                pass
        if self._thread is not None:
            self._thread.join(2.0)
        for connection in (control, data):
            if connection is not None:
                try:
                    if connection is control and self._context is not None:
                        connection.record_free_context(self._context)
                    connection.close()
                except Exception:
                    pass


def desktop_environment(settings: RunSettings, push: Push) -> tuple[Environment, XRecordCapture]:
    """The X display to record and the capture of its input (``Recorder`` starts both)."""
    from ..environments.factory import make_environment

    if settings.x_display:
        env = make_environment(settings)
    elif os.environ.get("DISPLAY"):
        # A display of our own that the person sees: Xephyr, a window on theirs.
        from ..environments.xvfb import XDisplayEnvironment

        env = XDisplayEnvironment(settings.size, launch=settings.launch, kind=settings.env,  # type: ignore[arg-type]
                                  wait_ms=settings.wait_ms, wheel_step=settings.wheel_step, nested=True)
    else:
        raise ConfigError("--env ubuntu records an X display someone can use: pass --x-display :N (your "
                          "desktop's), or run it on a desktop, where it opens a display of its own in a window")
    return env, XRecordCapture(env, push)  # type: ignore[arg-type]
