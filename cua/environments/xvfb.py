"""A local X display: our own Xvfb (or an existing display), driven with xdotool.

Screenshots read the root window straight from the X server through Pillow's XCB grabber, so no
screenshot program runs per step. Input goes through ``xdotool`` (XTest), one process per action
with its steps chained, so a held modifier and the click it modifies arrive in one ordered batch.
Characters missing from the keymap ("é", "世") are bound to spare keycodes ahead of typing through
python-xlib (see ``_Keymap``), because xdotool's own per-keystroke binding loses them in Chromium.
Everything this environment starts runs in its own process group and is stopped on ``stop()``,
after a failed start, and at interpreter exit as a last resort.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import os
import shutil
import signal
import tempfile
import time
from typing import IO, Literal

from ..actions import ScreenTransform, Size, wheel_steps
from ..errors import EnvironmentError_
from .base import DEFAULT_WAIT_MS, Environment, stable_frame, zoom_png
from .keys_x11 import chord_keysyms

# X pointer buttons: 4-7 are the wheel (up, down, left, right), 8/9 the side buttons.
X_BUTTONS = {"left": 1, "wheel": 2, "middle": 2, "right": 3, "back": 8, "forward": 9}
# Screen pixels one wheel notch (one click of buttons 4-7) scrolls: Chromium's 120 on X (GTK
# applications scroll less; see the README on measuring it).
X_WHEEL_STEP = 120

def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise EnvironmentError_(f"{program} is not installed; run `make setup` to install it")
    return path


class _ProcessGroup:
    """A child started in its own session, so it and everything it spawns stop together."""

    _alive: set["_ProcessGroup"] = set()

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc, self.name, self.pgid = proc, name, proc.pid
        _ProcessGroup._alive.add(self)

    def running(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    async def stop(self, grace: float = 3.0) -> None:
        _ProcessGroup._alive.discard(self)
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.proc.returncode is None:
                try:
                    await asyncio.wait_for(self.proc.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
            elif not self.running():
                return
            else:
                await asyncio.sleep(0.05)  # grandchildren still exiting
        self._signal(signal.SIGKILL)
        if self.proc.returncode is None:
            await self.proc.wait()

    def kill_now(self) -> None:
        _ProcessGroup._alive.discard(self)
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@atexit.register
def _kill_leftovers() -> None:
    # Reached only when stop() never ran (the loop died, a KeyboardInterrupt outside the loop).
    for group in list(_ProcessGroup._alive):
        group.kill_now()


def char_keysym(char: str) -> int:
    """The X keysym of one character: Latin-1 keysyms are the code point, others 0x01000000 + it."""
    cp = ord(char)
    return cp if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF else 0x01000000 + cp


BIND_GRACE_S = 0.15
STABLE_INTERVAL_S = 0.1  # two grabs this far apart that agree: the screen settled


class _Keymap:
    """Binds characters missing from the X keymap to spare keycodes, and keeps them bound.

    ``xdotool type`` binds such a character to a scratch keycode for one keystroke and unbinds it
    right after; Chromium reads the keymap lazily and then finds the keycode unbound again, so
    "é" or "世" are dropped at any typing speed. A binding made before the keystrokes, and left in
    place, is found however late the application looks it up. Attached displays get their
    original mapping back on ``close()``.
    """

    def __init__(self, x_display: str) -> None:
        from Xlib import display as xlib_display

        self._display = xlib_display.Display(x_display)
        info = self._display.display.info
        self._first = info.min_keycode
        self._original = [list(row) for row in
                          self._display.get_keyboard_mapping(self._first, info.max_keycode - self._first + 1)]
        self._present = {ks for row in self._original for ks in row if ks}
        self._spare = [self._first + i for i, row in enumerate(self._original) if not any(row)]
        self._bound: dict[int, int] = {}  # keysym → keycode, oldest first

    def bind_prefix(self, text: str) -> str:
        """Bind what ``text`` needs; returns the longest prefix whose characters are all bound."""
        if not self._spare:  # nothing to bind to: leave it to xdotool's own scratch keycode
            return text
        used: list[int] = []  # keysyms of the prefix that are not in the original keymap
        end = len(text)
        for i, char in enumerate(text):
            ks = char_keysym(char)
            if ks in self._present or ks in used or not char.isprintable():
                continue
            if len(used) == len(self._spare):
                end = i
                break
            used.append(ks)
        missing = [ks for ks in used if ks not in self._bound]
        if missing:
            self._bind(missing, keep=set(used))
            # X has no way to know when clients have read the new mapping (MappingNotify is
            # asynchronous); a key sent at once can reach Chromium before it did, and is dropped.
            # Only the first use of a character pays this.
            time.sleep(BIND_GRACE_S)
        return text[:end]

    def _bind(self, keysyms: list[int], keep: set[int]) -> None:
        for ks in keysyms:
            taken = set(self._bound.values())
            free = [kc for kc in self._spare if kc not in taken]
            if free:
                keycode = free[0]
            else:  # reuse the keycode bound longest ago that this text does not need
                oldest = next(k for k in self._bound if k not in keep)
                keycode = self._bound.pop(oldest)
            self._display.change_keyboard_mapping(keycode, [(ks, ks)])
            self._bound[ks] = keycode
        self._display.sync()

    def close(self, restore: bool) -> None:
        try:
            if restore:
                for keycode in self._bound.values():
                    self._display.change_keyboard_mapping(keycode, [self._original[keycode - self._first]])
                self._display.sync()
        finally:
            self._display.close()


class XDisplayEnvironment(Environment):
    """A Linux desktop on an X display.

    ``display`` is the size the model sees at most: a screen of another shape is shown at the
    same-shape size that fits in it (``display`` is that size once started). Without
    ``x_display`` an Xvfb of ``screen`` size (default: ``display``) is started on a free display
    number; with ``x_display=":5"`` an existing display is used as it is and left running.
    ``launch`` is a shell command started inside the display (e.g. a kiosk browser); ``start()``
    returns once its first frame has settled. ``wheel_step`` is how many screen pixels one wheel
    notch scrolls the application (default ``X_WHEEL_STEP``). ``nested`` starts Xephyr instead of
    Xvfb: the display is then a window on ``$DISPLAY`` that a person sees and uses (``cua record``).
    """

    def __init__(
        self,
        display: Size = Size(1024, 768),
        *,
        x_display: str | None = None,
        launch: str | None = None,
        kind: Literal["ubuntu", "linux"] = "ubuntu",
        wait_ms: int = DEFAULT_WAIT_MS,
        screen: Size | None = None,
        wheel_step: int | None = None,
        type_delay_ms: int = 12,
        drag_step_ms: int = 30,
        start_timeout: float = 10.0,
        launch_timeout: float = 30.0,
        settle_timeout: float = 3.0,
        nested: bool = False,
    ) -> None:
        if kind not in ("ubuntu", "linux"):
            raise ValueError(f"kind must be 'ubuntu' or 'linux', got {kind!r}")
        if x_display is not None and screen is not None:
            raise ValueError("screen sets the size of our own Xvfb; an attached display has its own")
        if wheel_step is not None and wheel_step <= 0:
            raise ValueError(f"wheel_step must be a positive number of pixels, got {wheel_step}")
        self.kind = kind
        self.display = display
        self.requested_display = display
        self.wheel_step = wheel_step or X_WHEEL_STEP
        self.wait_ms = wait_ms
        self.x_display = x_display
        self.launch = launch
        self.type_delay_ms = type_delay_ms
        self.drag_step_ms = drag_step_ms
        self.start_timeout = start_timeout
        self.launch_timeout = launch_timeout
        self.settle_timeout = settle_timeout
        self._screen = screen or display
        self._attached = x_display is not None
        # Our own display as a window on $DISPLAY (Xephyr), where a person can see and use it.
        self.nested = nested
        self._xvfb: _ProcessGroup | None = None
        self._app: _ProcessGroup | None = None
        self._logs: dict[str, IO[bytes]] = {}  # stderr of what we started, for error messages
        self._transform: ScreenTransform | None = None
        self._keymap: _Keymap | None = None
        # What mouse_down/key_down left pressed: the X server keeps it pressed after xdotool
        # exits, so stop() releases it (an attached display outlives the run).
        self._held_buttons: list[int] = []
        self._held_keys: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def transform(self) -> ScreenTransform:
        if self._transform is None:
            raise EnvironmentError_("the X display environment is not started")
        return self._transform

    @property
    def pids(self) -> list[int]:
        """Process-group ids of what this environment started (Xvfb, the launched program)."""
        return [g.pgid for g in (self._xvfb, self._app) if g is not None]

    def launch_running(self) -> bool | None:
        """Whether what ``launch`` started still runs (anything in its process group); None when
        nothing was launched."""
        return None if self._app is None else self._app.running()

    async def start(self) -> None:
        from PIL import features

        _need("xdotool")
        if not features.check("xcb"):
            raise EnvironmentError_("this Pillow build cannot read X displays (no XCB support); "
                                    "reinstall Pillow from PyPI with `make setup`")
        try:
            if not self._attached:
                self.x_display = await self._start_xvfb()
            size = await self._wait_for_display()
            self._transform = ScreenTransform.fitted(self.requested_display, size)
            self.display = self._transform.model
            if self.launch:
                await self._start_launch()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self._release_held()
        app, xvfb, keymap = self._app, self._xvfb, self._keymap
        self._app = self._xvfb = self._keymap = None
        try:
            if keymap is not None:
                keymap.close(restore=self._attached)
            if app is not None:
                await app.stop()
            if xvfb is not None:
                await xvfb.stop()
        finally:
            for log in self._logs.values():
                log.close()
            self._logs.clear()
            if not self._attached:
                self.x_display = None

    async def _start_xvfb(self) -> str:
        name = "Xephyr" if self.nested else "Xvfb"
        xvfb = _need(name)
        nested = ["-title", "cua: the recorded display"] if self.nested else []
        # -displayfd: Xvfb picks a free display number itself and writes it once it listens, so
        # parallel runs never race for the same number.
        read_fd, write_fd = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                xvfb, "-displayfd", str(write_fd), *nested, "-screen", *([] if self.nested else ["0"]),
                f"{self._screen.width}x{self._screen.height}x24", "-nolisten", "tcp",
                # -noreset: by default an X server resets when its last client leaves, and each
                # screenshot is a client that connects and leaves.
                "-noreset",
                pass_fds=(write_fd,), stdin=asyncio.subprocess.DEVNULL, env=self.child_env(),
                stdout=asyncio.subprocess.DEVNULL, stderr=self._log(name),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._xvfb = _ProcessGroup(proc, name)
        try:
            number = await self._read_display_number(read_fd, proc)
        finally:
            os.close(read_fd)
        if not number:
            raise EnvironmentError_(f"{name} exited before opening a display: {self._log_tail(name)}")
        return f":{number}"

    def _log(self, name: str) -> IO[bytes]:
        # A file, not a pipe: nobody reads a pipe while the program runs, and a full one blocks it.
        self._logs[name] = tempfile.TemporaryFile()
        return self._logs[name]

    def _log_tail(self, name: str) -> str:
        log = self._logs[name]
        log.seek(0)
        return log.read()[-600:].decode(errors="replace").strip()

    async def _read_display_number(self, fd: int, proc: asyncio.subprocess.Process) -> str:
        """Poll the -displayfd pipe until Xvfb writes its display number (or exits)."""
        os.set_blocking(fd, False)
        deadline = time.monotonic() + self.start_timeout
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = os.read(fd, 64)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EnvironmentError_(f"Xvfb did not start within {self.start_timeout:g} s") from None
                await asyncio.sleep(0.02)
                continue
            if not chunk:  # Xvfb exited and closed its end
                break
            data += chunk
        return data.decode().strip()

    async def _wait_for_display(self) -> Size:
        """Poll until the X server answers; returns its screen size."""
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while True:
            try:
                image = await asyncio.to_thread(self._grab, 0)
                return Size(*image.size)
            except OSError as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise EnvironmentError_(f"X display {self.x_display} does not accept connections ({last})")
            await asyncio.sleep(0.05)

    async def _start_launch(self) -> None:
        before = await self._grab_frame()
        log = self._log("launch")
        proc = await asyncio.create_subprocess_shell(
            self.launch, env=self.child_env(DISPLAY=self.x_display or ""),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        self._app = _ProcessGroup(proc, "launch")
        # Wait for the first frame of the program (the screen changes), then for it to settle.
        deadline = time.monotonic() + self.launch_timeout
        while await self._grab_frame() == before:
            if proc.returncode not in (None, 0):
                raise EnvironmentError_(
                    f"launch command exited with status {proc.returncode}: "
                    f"{self._log_tail('launch') or self.launch}"
                )
            if time.monotonic() > deadline:
                raise EnvironmentError_(
                    f"launch command drew nothing within {self.launch_timeout:g} s: {self.launch}"
                )
            await asyncio.sleep(0.1)
        await stable_frame(self._grab_frame, self.launch_timeout, STABLE_INTERVAL_S)

    # --- screen ---------------------------------------------------------------------------------

    def _grab(self, retry_for: float = 2.0):  # -> PIL.Image.Image
        from PIL import ImageGrab

        # An attached X server started without -noreset refuses connections for a moment after
        # its last client left; retry briefly before calling the display gone.
        deadline = time.monotonic() + retry_for
        while True:
            try:
                return ImageGrab.grab(xdisplay=self.x_display)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _grab_bytes(self) -> bytes:
        return self._grab().tobytes()

    async def _grab_frame(self) -> bytes:
        try:
            return await asyncio.to_thread(self._grab_bytes)
        except OSError as exc:  # the display went away while it was watched
            raise EnvironmentError_(f"cannot read X display {self.x_display}: {exc}") from None

    async def settle(self) -> None:
        await stable_frame(self._grab_frame, self.settle_timeout, STABLE_INTERVAL_S)

    async def screenshot(self) -> bytes:
        def capture() -> bytes:
            try:
                image = self._grab()
            except OSError as exc:
                raise EnvironmentError_(f"cannot read X display {self.x_display}: {exc}") from None
            out = io.BytesIO()
            image.save(out, format="PNG", compress_level=1)
            return out.getvalue()

        png = await asyncio.to_thread(capture)
        return await asyncio.to_thread(self.transform.fit_screenshot, png)

    # --- input ----------------------------------------------------------------------------------

    async def _xdotool(self, *args: str) -> str:
        """Run one xdotool chain; its standard output."""
        # A key or button a chain pressed stays pressed after xdotool exits (the X server does not
        # release an XTest client's input when it disconnects): every chain that presses also
        # releases, and what mouse_down/key_down hold on purpose is released by stop().
        proc = await asyncio.create_subprocess_exec(
            _need("xdotool"), *args, env=self.child_env(DISPLAY=self.x_display or ""),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise EnvironmentError_(
                f"xdotool {args[0]} failed on {self.x_display}: {err.decode(errors='replace').strip()}"
            )
        return out.decode(errors="replace")

    def _point(self, x: float, y: float) -> list[str]:
        sx, sy = self.transform.to_screen(x, y)
        return ["mousemove", str(round(sx)), str(round(sy))]

    @staticmethod
    def _held(keys: list[str] | None, steps: list[str]) -> list[str]:
        """``steps`` with ``keys`` held down around them, released in reverse order."""
        syms = chord_keysyms(keys, where="modifier keys") if keys else []
        down = [arg for s in syms for arg in ("keydown", s)]
        up = [arg for s in reversed(syms) for arg in ("keyup", s)]
        return down + steps + up

    async def click(self, x: int, y: int, button: str = "left", keys: list[str] | None = None) -> None:
        # --delay 0: xdotool otherwise sleeps 100 ms after the click.
        steps = [*self._point(x, y), "click", "--delay", "0", str(self._button(button))]
        await self._xdotool(*self._held(keys, steps))

    async def double_click(self, x: int, y: int, keys: list[str] | None = None) -> None:
        steps = [*self._point(x, y), "click", "--repeat", "2", "--delay", "60", "1"]
        await self._xdotool(*self._held(keys, steps))

    async def triple_click(self, x: int, y: int, keys: list[str] | None = None) -> None:
        steps = [*self._point(x, y), "click", "--repeat", "3", "--delay", "60", "1"]
        await self._xdotool(*self._held(keys, steps))

    @staticmethod
    def _button(button: str) -> int:
        if button not in X_BUTTONS:
            raise EnvironmentError_(f"unknown mouse button {button!r} (known: {', '.join(X_BUTTONS)})")
        return X_BUTTONS[button]

    async def mouse_down(self, x: int | None, y: int | None, button: str = "left") -> None:
        number = self._button(button)
        at = self._point(x, y) if x is not None and y is not None else []
        self._held_buttons.append(number)  # before: a chain that fails may still have pressed it
        await self._xdotool(*at, "mousedown", str(number))

    async def mouse_up(self, x: int | None, y: int | None, button: str = "left") -> None:
        number = self._button(button)
        at = self._point(x, y) if x is not None and y is not None else []
        await self._xdotool(*at, "mouseup", str(number))
        if number in self._held_buttons:
            self._held_buttons.remove(number)

    async def key_down(self, keys: list[str]) -> None:
        syms = chord_keysyms(keys, where="key_down")  # every name checked before a key goes down
        self._held_keys += [s for s in syms if s not in self._held_keys]
        await self._xdotool(*[arg for s in syms for arg in ("keydown", s)])

    async def key_up(self, keys: list[str]) -> None:
        syms = chord_keysyms(keys, where="key_up")
        await self._xdotool(*[arg for s in reversed(syms) for arg in ("keyup", s)])
        self._held_keys = [s for s in self._held_keys if s not in syms]

    async def _release_held(self) -> None:
        """Release what mouse_down/key_down left pressed (best effort: the display may be gone)."""
        buttons, keys = self._held_buttons, self._held_keys
        self._held_buttons, self._held_keys = [], []
        steps = [arg for b in reversed(buttons) for arg in ("mouseup", str(b))]
        steps += [arg for s in reversed(keys) for arg in ("keyup", s)]
        if steps and self.x_display:
            try:
                await self._xdotool(*steps)
            except EnvironmentError_:
                pass  # the display is gone, and whatever was held with it

    async def cursor_position(self) -> tuple[int, int]:
        out = await self._xdotool("getmouselocation", "--shell")
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        try:
            return self.transform.to_model(int(fields["X"]), int(fields["Y"]))
        except (KeyError, ValueError):
            raise EnvironmentError_(f"xdotool getmouselocation gave no position: {out.strip()!r}") from None

    async def zoom(self, x0: int, y0: int, x1: int, y1: int) -> bytes:
        def capture() -> bytes:
            try:
                image = self._grab()
            except OSError as exc:
                raise EnvironmentError_(f"cannot read X display {self.x_display}: {exc}") from None
            return zoom_png(image, self.transform.model, x0, y0, x1, y1)

        return await asyncio.to_thread(capture)

    def wheel_notch_px(self) -> float:
        return self.wheel_step / self.transform.sy

    async def move(self, x: int, y: int, keys: list[str] | None = None) -> None:
        await self._xdotool(*self._held(keys, self._point(x, y)))

    async def scroll(
        self, x: int, y: int, scroll_x: int, scroll_y: int, keys: list[str] | None = None
    ) -> None:
        steps = self._point(x, y)
        dx, dy = self.transform.distance_to_screen(scroll_x, scroll_y)
        for clicks, (negative, positive) in ((wheel_steps(dy, self.wheel_step), (4, 5)),
                                             (wheel_steps(dx, self.wheel_step), (6, 7))):
            if clicks:
                button = positive if clicks > 0 else negative
                steps += ["click", "--repeat", str(abs(clicks)), "--delay", "10", str(button)]
        await self._xdotool(*self._held(keys, steps))

    async def drag(self, path: list[tuple[int, int]], keys: list[str] | None = None) -> None:
        if len(path) < 2:
            raise EnvironmentError_("a drag needs at least two points")
        # Paced: an X client merges motion events that queue up together (Chromium does), and an
        # app would then see a straight line from the first point to the last.
        pause = ["sleep", f"{self.drag_step_ms / 1000:g}"]
        steps = [*self._point(*path[0]), "mousedown", "1"]
        for px, py in path[1:]:
            steps += pause + self._point(px, py)
        steps += pause + ["mouseup", "1"]
        await self._xdotool(*self._held(keys, steps))

    async def keypress(self, keys: list[str]) -> None:
        await self._xdotool("key", "--clearmodifiers", "+".join(chord_keysyms(keys)))

    async def type(self, text: str) -> None:
        while text:
            if text.isascii():
                chunk = text
            else:
                if self._keymap is None:
                    self._keymap = await asyncio.to_thread(_Keymap, self.x_display or "")
                chunk = await asyncio.to_thread(self._keymap.bind_prefix, text)
            await self._xdotool("type", "--delay", str(self.type_delay_ms), "--", chunk)
            text = text[len(chunk):]
