"""A remote desktop (macOS, Windows or Linux VM) driven through the cua computer server.

The server (``cua-computer-server`` on PyPI, run inside the VM) takes ``POST {vm_url}/cmd`` with
``{"command": ..., "params": {...}}`` and answers one streamed line ``data: {"success": ...}``.
Its automation backend is pyautogui (keys, clicks) with pynput (typing, wheel), so key names here
are pyautogui names and the wheel takes clicks, not pixels.

What the protocol cannot express, and what this module does instead:

* the middle (``wheel``) button: ``mouse_down``/``mouse_up`` with ``button="middle"``;
* the back/forward side buttons: pyautogui has no buttons 8/9, so they become the browser
  shortcuts (Alt+Left / Alt+Right; Cmd+[ / Cmd+] on macOS);
* drag paths: ``drag_path`` is not a registered command (0.1.25), so a path is ``mouse_down`` at
  the first point, ``move_cursor`` through each point and ``mouse_up`` at the last;
* keys held during mouse actions: ``key_down`` before, ``key_up`` after, in reverse order;
* a triple click: ``left_click`` then ``double_click`` at the same point, which the application
  counts as three clicks (checked with Chromium on Linux);
* the side buttons held down (``mouse_down`` with back/forward): not possible, said so.

What ``mouse_down`` and ``key_down`` leave pressed stays pressed in the VM after cua is gone, so
``stop()`` releases it.

A known limit of the server on Linux: ``type_text`` types non-ASCII characters through pynput,
which borrows spare keycodes and, once they run out, rebinds one used earlier; an application that
reads the keymap lazily (Chromium) may then see the earlier character. Characters already typed
once come out right.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any, Literal

import httpx

from ..actions import MODIFIERS, ScreenTransform, Size, normalize_key, wheel_steps
from ..errors import ConfigError, CuaError, EnvironmentError_, ModelOutputError
from .base import DEFAULT_WAIT_MS, Environment, stable_frame, zoom_png

RemoteKind = Literal["mac", "windows", "linux", "ubuntu"]

# Canonical key names → pyautogui key names (the names the server's key_down/press_key/hotkey
# take). pyautogui silently ignores a name it does not know, so every canonical key is listed.
PYAUTOGUI_KEYS: dict[str, str] = {
    "Control": "ctrl",
    "Shift": "shift",
    "Alt": "alt",
    "Meta": "win",  # Super on Linux, the Windows key on Windows; "command" on macOS (below)
    "Enter": "enter",
    "Escape": "esc",
    "Tab": "tab",
    "Space": "space",
    "Backspace": "backspace",
    "Delete": "delete",
    "Insert": "insert",
    "CapsLock": "capslock",
    "PageUp": "pageup",
    "PageDown": "pagedown",
    "Home": "home",
    "End": "end",
    "ArrowLeft": "left",
    "ArrowRight": "right",
    "ArrowUp": "up",
    "ArrowDown": "down",
    "PrintScreen": "printscreen",
    "NumLock": "numlock",
    "ScrollLock": "scrolllock",
    "Pause": "pause",
    "ContextMenu": "apps",
    **{f"F{n}": f"f{n}" for n in range(1, 13)},
}
MAC_OVERRIDES = {"Meta": "command"}
# Characters pyautogui can press as keys: printable ASCII (it adds Shift for "A", "?", ...).
PYAUTOGUI_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))

# Screen pixels one unit of the server's scroll moves a page. pynput sends one wheel notch per unit
# on Linux (X buttons 4-7: Chromium scrolls 120 px, measured) and Windows (one WHEEL_DELTA:
# Chromium's 100 px, not measured here), and 10 pixels per unit on macOS (a pixel-unit event).
WHEEL_STEP_PX = {"mac": 10, "windows": 100, "linux": 120, "ubuntu": 120}

# cua's button names → the server's (pyautogui's); it has no side buttons.
SERVER_BUTTONS = {"left": "left", "right": "right", "wheel": "middle"}

# Commands that only read; safe to resend after a dropped connection.
_IDEMPOTENT = frozenset({"screenshot", "get_screen_size", "get_cursor_position", "version"})


class RemoteEnvironment(Environment):
    """A VM's desktop behind a cua computer server at ``vm_url`` (e.g. ``http://127.0.0.1:8000``).

    ``display`` is the size the model sees at most; the VM's real screen size is read on
    ``start()`` and one ``ScreenTransform`` maps between the two (a 2× Retina VM gets half-size
    screenshots and doubled coordinates; a screen of another shape is shown at the same-shape size
    that fits, and ``display`` becomes that size). ``wheel_step`` is how many screen pixels one
    scroll unit moves (default ``WHEEL_STEP_PX`` of the kind). ``api_key`` / ``vm_name`` are sent
    as ``X-API-Key`` / ``X-Container-Name`` (cloud VMs require them).
    """

    def __init__(
        self,
        vm_url: str,
        *,
        kind: RemoteKind = "linux",
        display: Size = Size(1024, 768),
        api_key: str | None = None,
        vm_name: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.25,
        wait_ms: int = DEFAULT_WAIT_MS,
        settle_timeout: float = 3.0,
        settle_interval: float = 0.1,
        wheel_step: int | None = None,
    ) -> None:
        if kind not in WHEEL_STEP_PX:
            raise ConfigError(f"VM kind must be one of mac, windows, linux, ubuntu; got {kind!r}")
        if not vm_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"VM URL must start with http:// or https:// (e.g. http://127.0.0.1:8000), got {vm_url!r}"
            )
        if wheel_step is not None and wheel_step <= 0:
            raise ConfigError(f"wheel step must be a positive number of pixels, got {wheel_step}")
        self.kind = kind
        self.vm_url = vm_url.rstrip("/")
        self.display = display
        self.requested_display = display
        self.wheel_step = wheel_step or WHEEL_STEP_PX[kind]
        self.wait_ms = wait_ms
        self.retries = max(1, retries)
        self.backoff = backoff
        self.settle_timeout = settle_timeout
        self.settle_interval = settle_interval
        self.os_type: str | None = None
        self._settled: bytes | None = None  # the VM's frame settle() saw; nothing has acted since
        self._headers = {"X-API-Key": api_key, "X-Container-Name": vm_name}
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._client: httpx.AsyncClient | None = None
        self._transform: ScreenTransform | None = None
        # What mouse_down/key_down left pressed in the VM, in pressing order, for stop() to release.
        self._held_buttons: list[str] = []
        self._held_keys: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def transform(self) -> ScreenTransform:
        if self._transform is None:
            raise EnvironmentError_(f"the remote environment at {self.vm_url} is not started")
        return self._transform

    async def start(self) -> None:
        headers = {k: v for k, v in self._headers.items() if v}
        self._client = httpx.AsyncClient(base_url=self.vm_url, headers=headers, timeout=self._timeout)
        try:
            status = await self._send("GET", "/status", idempotent=True)
            try:
                body = status.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise EnvironmentError_(
                    f"{self.vm_url}/status did not answer a JSON object; is this a cua computer server?"
                )
            self.os_type = body.get("os_type")
            size = (await self.command("get_screen_size")).get("size") or {}
            screen = _screen_size(size)
            if screen is None:
                raise EnvironmentError_(f"computer server at {self.vm_url} sent no usable screen size: {size!r}")
            self._transform = ScreenTransform.fitted(self.requested_display, screen)
            self.display = self._transform.model
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Release what the run left held in the VM (one attempt each), then disconnect."""
        releases = [("mouse_up", {"button": b}) for b in reversed(self._held_buttons)]
        releases += [("key_up", {"key": k}) for k in reversed(self._held_keys)]
        self._held_buttons, self._held_keys = [], []
        if self._client is not None:
            for command, params in releases:
                try:
                    await self._send("POST", "/cmd", idempotent=False, attempts=1,
                                     json_body={"command": command, "params": params})
                except CuaError:
                    break  # the VM is gone: nothing is held in it any more worth waiting for
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # --- protocol -------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, *, idempotent: bool,
                    json_body: dict[str, Any] | None = None, attempts: int | None = None) -> httpx.Response:
        if self._client is None:
            raise EnvironmentError_(f"the remote environment at {self.vm_url} is not started")
        attempts = attempts or self.retries
        for attempt in range(attempts):
            try:
                response = await self._client.request(method, path, json=json_body)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error: httpx.TransportError = exc  # nothing was sent: always safe to retry
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as exc:
                if not idempotent:
                    raise EnvironmentError_(
                        f"computer server at {self.vm_url} dropped the connection during "
                        f"{_what(json_body, path)} ({type(exc).__name__}); not resent, it may have run"
                    ) from None
                error = exc
            except httpx.TransportError as exc:
                raise EnvironmentError_(
                    f"cannot talk to the computer server at {self.vm_url}: {exc!r}"
                ) from None
            if attempt + 1 < attempts:
                await asyncio.sleep(self.backoff * 2**attempt)
        else:
            raise EnvironmentError_(
                f"cannot reach the computer server at {self.vm_url} ({type(error).__name__}: "
                f"{error or 'no answer'}) after {attempts} attempts; is the VM running and "
                f"`python -m computer_server` started in it?"
            )
        if response.status_code == 401:
            raise EnvironmentError_(
                f"computer server at {self.vm_url} refused the credentials "
                f"({_detail(response)}); check the API key and VM name"
            )
        if response.status_code >= 400:
            raise EnvironmentError_(
                f"computer server at {self.vm_url} answered {response.status_code} to "
                f"{_what(json_body, path)}: {_detail(response)}"
            )
        return response

    async def command(self, command: str, **params: Any) -> dict[str, Any]:
        """Run one server command; its result dict, or ``EnvironmentError_`` naming the failure."""
        if command not in _IDEMPOTENT:
            self._settled = None  # the screen may change from here on
        response = await self._send("POST", "/cmd", idempotent=command in _IDEMPOTENT,
                                    json_body={"command": command, "params": params})
        result = self._result_of(command, response)
        if not result.get("success", False):
            raise EnvironmentError_(
                f"computer server at {self.vm_url}: {command} failed: {result.get('error') or result}"
            )
        return result

    def _result_of(self, command: str, response: httpx.Response) -> dict[str, Any]:
        """The JSON object on the answer's first ``data:`` line; anything else is an environment error."""
        text = response.content.decode("utf-8", errors="replace")
        line = next((line for line in text.splitlines() if line.startswith("data:")), None)
        if line is None:
            raise EnvironmentError_(
                f"computer server at {self.vm_url} sent no result for {command}: {text[:200]!r}"
            )
        try:
            result = json.loads(line[5:])
        except (ValueError, RecursionError):
            result = None
        if not isinstance(result, dict):
            raise EnvironmentError_(
                f"computer server at {self.vm_url} answered {command} with something that is not a "
                f"JSON object: {line[:200]!r}; is this a cua computer server?"
            )
        return result

    # --- screen ---------------------------------------------------------------------------------

    async def _grab(self) -> bytes:
        """The VM's screen as the server's PNG, at the VM's own size."""
        result = await self.command("screenshot")
        try:
            png = base64.b64decode(result["image_data"], validate=True)
        except (KeyError, ValueError, TypeError):
            png = b""
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise EnvironmentError_(f"computer server at {self.vm_url} sent no PNG screenshot")
        return png

    async def settle(self) -> None:
        """Until two grabs ``settle_interval`` apart are identical, or ``settle_timeout``.

        The server encodes equal frames to equal bytes, so the bytes are compared. The settled
        frame is kept for the screenshot that follows, so a step costs one extra grab, not two.
        """
        self._settled = await stable_frame(self._grab, self.settle_timeout, self.settle_interval)

    async def screenshot(self) -> bytes:
        png, self._settled = self._settled, None
        if png is None:
            png = await self._grab()
        try:
            return await asyncio.to_thread(self.transform.fit_screenshot, png)
        except OSError:  # Pillow cannot decode it (a truncated or damaged PNG)
            raise EnvironmentError_(f"computer server at {self.vm_url} sent a screenshot that "
                                    "cannot be decoded") from None

    def _xy(self, x: float, y: float) -> dict[str, int]:
        sx, sy = self.transform.to_screen(x, y)
        return {"x": round(sx), "y": round(sy)}

    # --- keys -----------------------------------------------------------------------------------

    def key_name(self, canonical: str) -> str:
        """The pyautogui name of one canonical key on this VM's OS."""
        if self.kind == "mac" and canonical in MAC_OVERRIDES:
            return MAC_OVERRIDES[canonical]
        if canonical in PYAUTOGUI_KEYS:
            return PYAUTOGUI_KEYS[canonical]
        if canonical in PYAUTOGUI_CHARS:
            return canonical
        raise ModelOutputError(f"keypress: key {canonical!r} cannot be pressed on a remote VM")

    def _chord(self, keys: list[str], where: str = "keypress") -> list[str]:
        canonical = [normalize_key(k, where=where) for k in keys]
        # With a modifier, a letter is its key: ["CTRL", "A"] is select-all, not Ctrl+Shift+A.
        with_modifier = any(k in MODIFIERS for k in canonical)
        return [
            self.key_name(k.lower() if with_modifier and len(k) == 1 and k.isalpha() else k)
            for k in canonical
        ]

    async def _with_keys(self, keys: list[str] | None, *steps: tuple[str, dict[str, Any]]) -> None:
        """Run ``steps`` with ``keys`` held; whatever happens, every key and mouse button that went
        down is released again (a failed drag must not leave the VM's button held)."""
        held = self._chord(keys, where="modifier keys") if keys else []
        pressed: list[str] = []
        buttons: list[dict[str, Any]] = []
        failed = True
        try:
            for key in held:
                await self.command("key_down", key=key)
                pressed.append(key)
            for command, params in steps:
                await self.command(command, **params)
                if command == "mouse_down":
                    buttons.append(params)
                elif command == "mouse_up" and buttons:
                    buttons.pop()
            failed = False
        finally:
            releases = [("mouse_up", p) for p in reversed(buttons)]
            releases += [("key_up", {"key": k}) for k in reversed(pressed)]
            error: CuaError | None = None
            for command, params in releases:
                try:
                    await self.command(command, **params)
                except CuaError as exc:
                    error = error or exc
            if error is not None and not failed:  # after a failed step, that step's error is the one to see
                raise error

    # --- actions --------------------------------------------------------------------------------

    async def click(self, x: int, y: int, button: str = "left", keys: list[str] | None = None) -> None:
        at = self._xy(x, y)
        if button == "left":
            await self._with_keys(keys, ("left_click", at))
        elif button == "right":
            await self._with_keys(keys, ("right_click", at))
        elif button == "wheel":
            await self._with_keys(keys, ("mouse_down", {**at, "button": "middle"}),
                                  ("mouse_up", {**at, "button": "middle"}))
        elif button in ("back", "forward"):
            modifier, key = (("command", "[" if button == "back" else "]") if self.kind == "mac"
                             else ("alt", "left" if button == "back" else "right"))
            await self.command("move_cursor", **at)
            await self.command("hotkey", keys=[modifier, key])
        else:
            raise EnvironmentError_(
                f"unknown mouse button {button!r} (known: left, right, wheel, back, forward)"
            )

    async def double_click(self, x: int, y: int, keys: list[str] | None = None) -> None:
        await self._with_keys(keys, ("double_click", self._xy(x, y)))

    async def triple_click(self, x: int, y: int, keys: list[str] | None = None) -> None:
        at = self._xy(x, y)
        await self._with_keys(keys, ("left_click", at), ("double_click", at))

    def _server_button(self, button: str, what: str) -> str:
        if button in SERVER_BUTTONS:
            return SERVER_BUTTONS[button]
        if button in ("back", "forward"):
            raise self._unsupported(f"{what} the {button} mouse button (the computer server has no side buttons)")
        raise EnvironmentError_(f"unknown mouse button {button!r} (known: left, right, wheel, back, forward)")

    async def mouse_down(self, x: int | None, y: int | None, button: str = "left") -> None:
        name = self._server_button(button, "hold down")
        at = self._xy(x, y) if x is not None and y is not None else {}
        self._held_buttons.append(name)  # before: a failed answer may still have pressed it
        await self.command("mouse_down", **at, button=name)

    async def mouse_up(self, x: int | None, y: int | None, button: str = "left") -> None:
        name = self._server_button(button, "release")
        at = self._xy(x, y) if x is not None and y is not None else {}
        await self.command("mouse_up", **at, button=name)
        if name in self._held_buttons:
            self._held_buttons.remove(name)

    async def key_down(self, keys: list[str]) -> None:
        names = self._chord(keys, where="key_down")  # every name checked before a key goes down
        for name in names:
            if name not in self._held_keys:
                self._held_keys.append(name)
            await self.command("key_down", key=name)

    async def key_up(self, keys: list[str]) -> None:
        names = self._chord(keys, where="key_up")
        for name in reversed(names):
            await self.command("key_up", key=name)
            if name in self._held_keys:
                self._held_keys.remove(name)

    async def cursor_position(self) -> tuple[int, int]:
        position = (await self.command("get_cursor_position")).get("position")
        try:
            return self.transform.to_model(int(position["x"]), int(position["y"]))
        except (KeyError, TypeError, ValueError):
            raise EnvironmentError_(
                f"computer server at {self.vm_url} sent no usable cursor position: {position!r}"
            ) from None

    async def zoom(self, x0: int, y0: int, x1: int, y1: int) -> bytes:
        from PIL import Image

        png = await self._grab()

        def crop() -> bytes:
            with Image.open(io.BytesIO(png)) as image:
                return zoom_png(image, self.transform.model, x0, y0, x1, y1)

        try:
            return await asyncio.to_thread(crop)
        except OSError:
            raise EnvironmentError_(f"computer server at {self.vm_url} sent a screenshot that "
                                    "cannot be decoded") from None

    def wheel_notch_px(self) -> float:
        return self.wheel_step / self.transform.sy

    async def move(self, x: int, y: int, keys: list[str] | None = None) -> None:
        await self._with_keys(keys, ("move_cursor", self._xy(x, y)))

    async def scroll(
        self, x: int, y: int, scroll_x: int, scroll_y: int, keys: list[str] | None = None
    ) -> None:
        pixels_x, pixels_y = self.transform.distance_to_screen(scroll_x, scroll_y)
        dx, dy = wheel_steps(pixels_x, self.wheel_step), wheel_steps(pixels_y, self.wheel_step)
        # The server's scroll(x, y) is pynput's: y > 0 scrolls up, x > 0 scrolls right.
        await self._with_keys(keys, ("move_cursor", self._xy(x, y)), ("scroll", {"x": dx, "y": -dy}))

    async def drag(self, path: list[tuple[int, int]], keys: list[str] | None = None) -> None:
        if len(path) < 2:
            raise EnvironmentError_("a drag needs at least two points")
        steps = [("mouse_down", {**self._xy(*path[0]), "button": "left"})]
        steps += [("move_cursor", self._xy(px, py)) for px, py in path[1:]]
        steps.append(("mouse_up", {**self._xy(*path[-1]), "button": "left"}))
        await self._with_keys(keys, *steps)

    async def keypress(self, keys: list[str]) -> None:
        canonical = [normalize_key(k) for k in keys]
        if len(canonical) == 1 and len(canonical[0]) == 1 and canonical[0] not in PYAUTOGUI_CHARS:
            # A lone non-ASCII character ("é") has no pyautogui key; typing it is what was meant.
            await self.command("type_text", text=canonical[0])
            return
        names = self._chord(keys)
        if len(names) == 1:
            await self.command("press_key", key=names[0])
        else:
            await self.command("hotkey", keys=names)

    async def type(self, text: str) -> None:
        if text:
            await self.command("type_text", text=text)


def _what(body: dict[str, Any] | None, path: str) -> str:
    return str(body["command"]) if body and "command" in body else path


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    text = response.content.decode("utf-8", errors="replace")[:200]
    return str(body.get("detail") or text) if isinstance(body, dict) else text


def _screen_size(size: Any) -> Size | None:
    """The screen a computer server reported: two whole positive pixel counts (``true`` is not
    one, though Python counts it as 1), or None."""
    if not isinstance(size, dict):
        return None
    sides = [size.get("width"), size.get("height")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 100_000 and v == int(v)
               for v in sides):
        return None
    return Size(int(sides[0]), int(sides[1]))
