"""The environment contract: a dozen async methods every environment implements.

Coordinates passed to these methods are in model space (the screenshot the model saw); each
environment maps them to its own device with its ``ScreenTransform``. Environments know nothing of
the Responses API; the loop knows nothing of Playwright or X11.
"""

from __future__ import annotations

import asyncio
import io
import time
from abc import ABC, abstractmethod
from typing import Any, Awaitable, Callable, Literal

from dataclasses import dataclass

from ..actions import (
    Action,
    Back,
    Click,
    CursorPosition,
    DoubleClick,
    Drag,
    Forward,
    HoldKey,
    KeyDown,
    Keypress,
    KeyUp,
    MouseDown,
    MouseUp,
    Move,
    Navigate,
    Screenshot,
    Scroll,
    Size,
    TripleClick,
    Type,
    Wait,
    Zoom,
)
from ..errors import ActionNotSupported
from ..redact import child_environment

EnvKind = Literal["browser", "mac", "windows", "ubuntu", "linux"]
ENV_KINDS: tuple[str, ...] = ("browser", "mac", "windows", "ubuntu", "linux")

DEFAULT_WAIT_MS = 1000


@dataclass(frozen=True)
class ActionOutput:
    """What an action answers besides the screen: a zoomed image, or the pointer's position."""

    image: bytes | None = None  # PNG (zoom)
    point: tuple[int, int] | None = None  # model space (cursor_position)


class Environment(ABC):
    """An async context manager: ``async with env: ...`` starts and always stops it.

    ``display`` is the size the model sees screenshots at and points in. A desktop whose screen
    has another shape than the size asked for sets it in ``start()`` to the same-shape size that
    fits in it, so the loop reads it (for the tool it declares, bounds checks) once started.
    """

    kind: EnvKind
    display: Size
    wait_ms: int = DEFAULT_WAIT_MS
    # Secret values of the run (set by the runner): kept out of the programs this environment starts.
    secrets: frozenset[str] = frozenset()

    def child_env(self, **extra: str) -> dict[str, str]:
        """The environment for a program this environment starts: no API keys, no run secrets."""
        return {**child_environment(self.secrets), **extra}

    async def __aenter__(self) -> "Environment":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None:
        """Release everything started; safe to call twice and after a failed start."""

    @abstractmethod
    async def screenshot(self) -> bytes:
        """A PNG of the screen at exactly ``display`` size (model space)."""

    @abstractmethod
    async def click(self, x: int, y: int, button: str = "left", keys: list[str] | None = None) -> None: ...

    @abstractmethod
    async def double_click(self, x: int, y: int, keys: list[str] | None = None) -> None: ...

    @abstractmethod
    async def scroll(
        self, x: int, y: int, scroll_x: int, scroll_y: int, keys: list[str] | None = None
    ) -> None:
        """Scroll by pixels with the wheel at (x, y), so inner panes scroll too."""

    @abstractmethod
    async def type(self, text: str) -> None: ...

    @abstractmethod
    async def move(self, x: int, y: int, keys: list[str] | None = None) -> None: ...

    @abstractmethod
    async def keypress(self, keys: list[str]) -> None:
        """A chord: press every key down in order, release in reverse."""

    @abstractmethod
    async def drag(self, path: list[tuple[int, int]], keys: list[str] | None = None) -> None: ...

    async def wait(self, ms: int | None = None) -> None:
        await asyncio.sleep((self.wait_ms if ms is None else ms) / 1000)

    # --- Beyond OpenAI's nine actions (Claude's and Gemini's tools). An environment that cannot do
    # one keeps the default, which says so; a silent no-op would lie to the model.

    def _unsupported(self, what: str) -> ActionNotSupported:
        return ActionNotSupported(f"the {self.kind} environment cannot {what}")

    async def triple_click(self, x: int, y: int, keys: list[str] | None = None) -> None:
        raise self._unsupported("triple-click")

    async def mouse_down(self, x: int | None, y: int | None, button: str = "left") -> None:
        """Press ``button`` (at (x, y) when given, else where the pointer is) and keep it down."""
        raise self._unsupported("hold a mouse button down")

    async def mouse_up(self, x: int | None, y: int | None, button: str = "left") -> None:
        raise self._unsupported("release a mouse button")

    async def key_down(self, keys: list[str]) -> None:
        raise self._unsupported("hold keys down")

    async def key_up(self, keys: list[str]) -> None:
        raise self._unsupported("release held keys")

    async def hold_key(self, keys: list[str], ms: int) -> None:
        """Keys down for ``ms``, then up (reverse order), even when cancelled: also while the
        keys are going down (a remote key_down may have pressed them before its answer came)."""
        try:
            await self.key_down(keys)
            await asyncio.sleep(ms / 1000)
        finally:
            await self.key_up(keys)

    async def zoom(self, x0: int, y0: int, x1: int, y1: int) -> bytes:
        """A PNG of the model-space region at the screen's own resolution (never below the
        region's model-space size), aspect kept."""
        raise self._unsupported("zoom")

    async def cursor_position(self) -> tuple[int, int]:
        """The pointer's position in model space."""
        raise self._unsupported("tell the pointer's position")

    async def navigate(self, url: str) -> None:
        raise self._unsupported("open a URL (only the browser environment can)")

    async def back(self) -> None:
        raise self._unsupported("go back (only the browser environment can)")

    async def forward(self) -> None:
        raise self._unsupported("go forward (only the browser environment can)")

    def wheel_notch_px(self) -> float:
        """Model pixels one wheel notch scrolls (how Claude's notch counts become pixels)."""
        return 100.0

    async def current_url(self) -> str | None:
        """The page URL for browser environments; None elsewhere."""
        return None

    async def settle(self) -> None:
        """Wait until what the last actions started has finished (load, network, frame stable)."""

    async def begin_step(self, step: int, title: str) -> None:
        """A new model turn starts (environments that keep their own trace group by it)."""

    async def anchor(self, x: int, y: int) -> dict[str, Any] | None:
        """What is under (x, y), to relocate it on replay; None when the environment cannot tell."""
        return None

    async def execute(self, action: Action) -> ActionOutput | None:
        """Run one typed action; zoom and cursor_position answer something."""
        match action:
            case Click():
                await self.click(action.x, action.y, action.button, action.keys)
            case DoubleClick():
                await self.double_click(action.x, action.y, action.keys)
            case Drag():
                await self.drag([(p.x, p.y) for p in action.path], action.keys)
            case Keypress():
                await self.keypress(action.keys)
            case Move():
                await self.move(action.x, action.y, action.keys)
            case Scroll():
                await self.scroll(action.x, action.y, action.scroll_x, action.scroll_y, action.keys)
            case Type():
                await self.type(action.text)
            case Wait():
                await self.wait(action.ms)
            case Screenshot():
                pass
            case TripleClick():
                await self.triple_click(action.x, action.y, action.keys)
            case MouseDown():
                await self.mouse_down(action.x, action.y, action.button)
            case MouseUp():
                await self.mouse_up(action.x, action.y, action.button)
            case KeyDown():
                await self.key_down(action.keys)
            case KeyUp():
                await self.key_up(action.keys)
            case HoldKey():
                await self.hold_key(action.keys, action.ms)
            case Zoom():
                return ActionOutput(image=await self.zoom(action.x0, action.y0, action.x1, action.y1))
            case CursorPosition():
                return ActionOutput(point=await self.cursor_position())
            case Navigate():
                await self.navigate(action.url)
            case Back():
                await self.back()
            case Forward():
                await self.forward()
        return None


async def stable_frame(grab: Callable[[], Awaitable[bytes]], timeout: float, interval: float) -> bytes | None:
    """Grab until two grabs ``interval`` apart are identical and return that frame; None when the
    screen is still changing at ``timeout``. How the desktops (X, VMs) tell the screen settled."""
    deadline = time.monotonic() + timeout
    previous = await grab()
    while time.monotonic() < deadline:
        await asyncio.sleep(interval)
        current = await grab()
        if current == previous:
            return current
        previous = current
    return None


def zoom_png(screen: Any, model: Size, x0: int, y0: int, x1: int, y1: int) -> bytes:
    """The model-space region (x0, y0)–(x1, y1) of ``screen`` (a Pillow image of what the model
    sees at ``model`` size, at the screen's own resolution) as a PNG.

    The crop keeps every pixel the screen has there (twice the region on a 2× screen); where the
    screen has fewer pixels than the model's region it is scaled up to the region's size, so the
    model never gets less than it saw. The aspect ratio is the region's either way."""
    from PIL import Image

    fx, fy = screen.width / model.width, screen.height / model.height
    crop = screen.crop((round(x0 * fx), round(y0 * fy), round(x1 * fx), round(y1 * fy)))
    width, height = x1 - x0, y1 - y0
    scale = max(width / crop.width, height / crop.height)
    if scale > 1:
        crop = crop.convert("RGB").resize((round(crop.width * scale), round(crop.height * scale)),
                                          Image.LANCZOS)
    out = io.BytesIO()
    crop.save(out, format="PNG")
    return out.getvalue()
