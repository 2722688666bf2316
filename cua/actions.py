"""Typed computer actions, key names and the one screen transform.

Actions are what crosses the border between the loop and an environment. They are parsed from the
model's raw ``action`` dicts here, once, and every problem becomes a ``ModelOutputError`` that names
the offending item, never a traceback.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import ModelOutputError

MouseButton = Literal["left", "right", "wheel", "back", "forward"]


class _Action(BaseModel):
    # Unknown fields are kept (the service adds fields over time) but never acted upon.
    model_config = ConfigDict(extra="allow", frozen=True)

    def points(self) -> list[tuple[int, int]]:
        """The model-space points this action touches (for bounds checks, anchors and marks)."""
        x, y = getattr(self, "x", None), getattr(self, "y", None)
        return [(x, y)] if x is not None and y is not None else []


class Point(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    x: int
    y: int


class Click(_Action):
    type: Literal["click"] = "click"
    x: int
    y: int
    button: MouseButton = "left"
    keys: list[str] | None = None


class DoubleClick(_Action):
    type: Literal["double_click"] = "double_click"
    x: int
    y: int
    keys: list[str] | None = None


class Drag(_Action):
    type: Literal["drag"] = "drag"
    path: Annotated[list[Point], Field(min_length=2)]
    keys: list[str] | None = None

    def points(self) -> list[tuple[int, int]]:
        return [(p.x, p.y) for p in self.path]


class Keypress(_Action):
    type: Literal["keypress"] = "keypress"
    keys: Annotated[list[str], Field(min_length=1)]


class Move(_Action):
    type: Literal["move"] = "move"
    x: int
    y: int
    keys: list[str] | None = None


class Scroll(_Action):
    type: Literal["scroll"] = "scroll"
    x: int
    y: int
    scroll_x: int = 0
    scroll_y: int = 0
    keys: list[str] | None = None


class Type(_Action):
    type: Literal["type"] = "type"
    text: str


class Wait(_Action):
    """OpenAI's wait has no duration (``ms`` None: the environment's default); Claude's and
    Gemini's have one, and scripts and replays may set it."""

    type: Literal["wait"] = "wait"
    ms: Annotated[int, Field(ge=0, le=60_000)] | None = None


class Screenshot(_Action):
    type: Literal["screenshot"] = "screenshot"


# --- Actions beyond OpenAI's nine: what Claude's and Gemini's tools need ----------------------------


class TripleClick(_Action):
    """Three left clicks in a row (selects a line or paragraph)."""

    type: Literal["triple_click"] = "triple_click"
    x: int
    y: int
    keys: list[str] | None = None


class MouseDown(_Action):
    """Press a mouse button and keep it down; at (x, y) when given, else where the pointer is."""

    type: Literal["mouse_down"] = "mouse_down"
    x: int | None = None
    y: int | None = None
    button: MouseButton = "left"


class MouseUp(_Action):
    """Release a mouse button; at (x, y) when given, else where the pointer is."""

    type: Literal["mouse_up"] = "mouse_up"
    x: int | None = None
    y: int | None = None
    button: MouseButton = "left"


class KeyDown(_Action):
    """Press keys (in order) and keep them down until a ``key_up``."""

    type: Literal["key_down"] = "key_down"
    keys: Annotated[list[str], Field(min_length=1)]


class KeyUp(_Action):
    """Release keys held by a ``key_down`` (in reverse order)."""

    type: Literal["key_up"] = "key_up"
    keys: Annotated[list[str], Field(min_length=1)]


class HoldKey(_Action):
    """Hold keys down for ``ms`` milliseconds, then release them."""

    type: Literal["hold_key"] = "hold_key"
    keys: Annotated[list[str], Field(min_length=1)]
    ms: Annotated[int, Field(ge=0, le=60_000)]


class Zoom(_Action):
    """Look closer: answers the model-space region (x0, y0)–(x1, y1) at the screen's own resolution."""

    type: Literal["zoom"] = "zoom"
    x0: int
    y0: int
    x1: int
    y1: int

    def points(self) -> list[tuple[int, int]]:
        return []  # a region to look at, not a point to act on (bounds are checked on its own)

    def corners(self) -> list[tuple[int, int]]:
        return [(self.x0, self.y0), (self.x1 - 1, self.y1 - 1)]


class CursorPosition(_Action):
    """Where the pointer is, in model space (answered to the model, nothing on screen changes)."""

    type: Literal["cursor_position"] = "cursor_position"


class Navigate(_Action):
    """Open a URL in the browser (through the run's domain policy)."""

    type: Literal["navigate"] = "navigate"
    url: Annotated[str, Field(min_length=1)]


class Back(_Action):
    type: Literal["back"] = "back"


class Forward(_Action):
    type: Literal["forward"] = "forward"


Action = Annotated[
    Union[
        Click, DoubleClick, Drag, Keypress, Move, Scroll, Type, Wait, Screenshot,
        TripleClick, MouseDown, MouseUp, KeyDown, KeyUp, HoldKey, Zoom, CursorPosition, Navigate, Back, Forward,
    ],
    Field(discriminator="type"),
]
ACTION_TYPES = (
    "click", "double_click", "drag", "keypress", "move", "scroll", "type", "wait", "screenshot",
    "triple_click", "mouse_down", "mouse_up", "key_down", "key_up", "hold_key", "zoom", "cursor_position",
    "navigate", "back", "forward",
)
# OpenAI's computer tool sends only these; the others come from the other vendors' adapters.
OPENAI_ACTION_TYPES = ACTION_TYPES[:9]
_ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def parse_action(raw: Any, *, where: str = "computer_call", known: tuple[str, ...] = ACTION_TYPES) -> Action:
    """Turn one raw action into a typed action, or raise ``ModelOutputError`` naming it.

    ``known`` narrows the types accepted (OpenAI's tool sends only ``OPENAI_ACTION_TYPES``)."""
    if not isinstance(raw, dict):
        raise ModelOutputError(f"{where}: action must be an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in known:
        raise ModelOutputError(
            f"{where}: unknown action type {kind!r} (known: {', '.join(known)})"
        )
    try:
        action = _ACTION_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'action'}: {e['msg']}" for e in exc.errors()
        )
        raise ModelOutputError(f"{where}: bad {kind} action: {problems}") from None
    for name in getattr(action, "keys", None) or []:
        normalize_key(name, where=where)
    return action


def action_to_wire(action: Action) -> dict[str, Any]:
    """The action as the model sent it (used by scripts, traces and replays)."""
    return action.model_dump(mode="json", exclude_none=True)


# --- Key names ----------------------------------------------------------------------------------
# Canonical names follow the DOM KeyboardEvent.key values (what Playwright accepts); each backend
# keeps its own table from these canonical names to what it needs (e.g. X keysyms).

_KEY_ALIASES: dict[str, str] = {
    "ctrl": "Control", "control": "Control", "ctl": "Control",
    "cmd": "Meta", "command": "Meta", "meta": "Meta", "super": "Meta", "win": "Meta",
    "windows": "Meta", "os": "Meta",
    "alt": "Alt", "option": "Alt", "opt": "Alt",
    "shift": "Shift",
    "esc": "Escape", "escape": "Escape",
    "enter": "Enter", "return": "Enter",
    "tab": "Tab", "space": "Space", "spacebar": "Space",
    "backspace": "Backspace", "back_space": "Backspace",
    "delete": "Delete", "del": "Delete", "insert": "Insert", "ins": "Insert",
    "capslock": "CapsLock", "caps_lock": "CapsLock",
    "pageup": "PageUp", "page_up": "PageUp", "pgup": "PageUp",
    "pagedown": "PageDown", "page_down": "PageDown", "pgdn": "PageDown",
    "home": "Home", "end": "End",
    "left": "ArrowLeft", "arrowleft": "ArrowLeft",
    "right": "ArrowRight", "arrowright": "ArrowRight",
    "up": "ArrowUp", "arrowup": "ArrowUp",
    "down": "ArrowDown", "arrowdown": "ArrowDown",
    "printscreen": "PrintScreen", "numlock": "NumLock", "scrolllock": "ScrollLock",
    "pause": "Pause", "contextmenu": "ContextMenu", "menu": "ContextMenu",
}
_KEY_ALIASES.update({f"f{n}": f"F{n}" for n in range(1, 13)})

CANONICAL_KEYS = frozenset(_KEY_ALIASES.values())
MODIFIERS = frozenset({"Control", "Meta", "Alt", "Shift"})


def normalize_key(name: str, *, where: str = "keypress") -> str:
    """Map a model key name in any case (``CTRL``, ``Return``, ``a``, ``/``) to a canonical name.

    Single characters stay themselves; ``/`` is the slash key. Unknown names raise
    ``ModelOutputError`` naming the key.
    """
    if not isinstance(name, str) or not name:
        raise ModelOutputError(f"{where}: empty key name")
    if len(name) == 1:
        return name
    canonical = _KEY_ALIASES.get(name.strip().lower().replace(" ", "").replace("-", ""))
    if canonical is None:
        canonical = _KEY_ALIASES.get(name.strip().lower())
    if canonical is None:
        raise ModelOutputError(f"{where}: unknown key name {name!r}")
    return canonical


def normalize_keys(names: list[str] | None, *, where: str = "keypress") -> list[str]:
    return [normalize_key(n, where=where) for n in names or []]


# --- Screen transform ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> "Size":
        """``"1024x768"`` → ``Size(1024, 768)``; raises ValueError with a readable message."""
        try:
            w, h = (int(part) for part in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"display must look like WIDTHxHEIGHT (e.g. 1024x768), got {text!r}") from None
        if not (16 <= w <= 8192 and 16 <= h <= 8192):
            raise ValueError(f"display {w}x{h} is outside 16..8192 pixels")
        return cls(w, h)

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def fit_inside(screen: Size, display: Size) -> Size:
    """The largest size of ``screen``'s shape that fits in ``display``: what the model sees of a
    screen whose aspect ratio differs from the one asked for (1920x1080 in 1024x768 → 1024x576)."""
    scale = min(display.width / screen.width, display.height / screen.height)
    return Size(max(1, min(display.width, round(screen.width * scale))),
                max(1, min(display.height, round(screen.height * scale))))


@dataclass(frozen=True)
class ScreenTransform:
    """The one mapping between model space (the screenshot the model saw) and the screen.

    ``model`` is the display size the model is told about and sees screenshots at; ``screen`` is
    the coordinate space the environment's input device uses (CSS pixels of a browser viewport,
    X pixels of a display, a VM's screen). Both have the same shape (build one with ``fitted``
    when they may not), so a circle on the screen stays round for the model. Screenshots captured
    at any other pixel size (a 2× device pixel ratio, a Retina VM) are resized to the model size
    by ``fit_screenshot``.
    """

    model: Size
    screen: Size

    def __post_init__(self) -> None:
        # Same shape up to the rounding of one side to whole pixels (half a model pixel).
        skew = abs(self.model.width * self.screen.height - self.model.height * self.screen.width)
        if skew > max(self.screen.width, self.screen.height) / 2:
            raise ValueError(f"a {self.model} model of a {self.screen} screen would squash it; "
                             "use ScreenTransform.fitted")

    @classmethod
    def fitted(cls, display: Size, screen: Size) -> "ScreenTransform":
        """The transform for a screen shown to the model in at most ``display``."""
        return cls(model=fit_inside(screen, display), screen=screen)

    @property
    def sx(self) -> float:
        return self.screen.width / self.model.width

    @property
    def sy(self) -> float:
        return self.screen.height / self.model.height

    def contains(self, x: int, y: int) -> bool:
        return 0 <= x < self.model.width and 0 <= y < self.model.height

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        """The screen point at the centre of model pixel (x, y); rounded, it is a screen pixel
        inside that model pixel's area. Pixel centres line up the way ``fit_screenshot``'s
        resampling lines them up, so what the model points at is what it saw there."""
        return (x + 0.5) * self.sx - 0.5, (y + 0.5) * self.sy - 0.5

    def to_model(self, x: float, y: float) -> tuple[int, int]:
        return round((x + 0.5) / self.sx - 0.5), round((y + 0.5) / self.sy - 0.5)

    def distance_to_screen(self, dx: float, dy: float) -> tuple[float, float]:
        """A distance (a scroll) in model pixels, in screen pixels."""
        return dx * self.sx, dy * self.sy

    def fit_screenshot(self, png: bytes) -> bytes:
        """Return ``png`` at exactly the model size (unchanged when it already is)."""
        from PIL import Image

        with Image.open(io.BytesIO(png)) as img:
            if img.size == (self.model.width, self.model.height):
                return png
            resized = img.convert("RGB").resize((self.model.width, self.model.height), Image.LANCZOS)
        out = io.BytesIO()
        resized.save(out, format="PNG")
        return out.getvalue()


# Gemini points in a 0–999 grid over each axis, whatever the screen's size.
NORMALIZED_MAX = 999


def denormalize(value: float, size: int) -> int:
    """A Gemini coordinate (0–999 along an axis) → the model pixel on an axis ``size`` pixels long.
    The grid's cells are 1/1000 of the axis; a value names the pixel its cell starts in."""
    return min(size - 1, max(0, int(value * size / 1000)))


def normalize(pixel: int, size: int) -> int:
    """The inverse of ``denormalize``: the smallest 0–999 value that lands on ``pixel`` (for axes
    up to 1000 pixels; on longer ones, the value of the cell the pixel lies in)."""
    return min(NORMALIZED_MAX, max(0, -(-pixel * 1000 // size)))


def check_in_bounds(action: Action, model: Size, *, where: str = "computer_call") -> None:
    """Coordinates outside the display are bad model output, not something to clamp silently."""
    for x, y in action.points():
        if not (0 <= x < model.width and 0 <= y < model.height):
            raise ModelOutputError(
                f"{where}: {action.type} at ({x}, {y}) is outside the {model} display"
            )
    if isinstance(action, Zoom):
        if not (0 <= action.x0 < action.x1 <= model.width and 0 <= action.y0 < action.y1 <= model.height):
            raise ModelOutputError(
                f"{where}: zoom region ({action.x0}, {action.y0})–({action.x1}, {action.y1}) is not a "
                f"non-empty region inside the {model} display"
            )


# --- Wheel ------------------------------------------------------------------------------------

# A wheel moves content in whole steps: one notch, or one unit of the VM's input library. How far a
# step moves depends on the toolkit; each environment knows its default and takes another one.
MAX_SCROLL_PX = 6000  # screen pixels per axis and action: a runaway value cannot spin for long


def wheel_steps(pixels: float, step: float, *, max_pixels: float = MAX_SCROLL_PX) -> int:
    """Screen pixels of scroll → signed wheel steps of ``step`` screen pixels each.

    The nearest whole number of steps, so the scroll lands within half a step of what was asked;
    at least one (a small scroll is not lost), at most ``max_pixels`` worth.
    """
    if not pixels:
        return 0
    steps = min(math.floor(abs(pixels) / step + 0.5), max(1, math.floor(max_pixels / step)))
    return max(1, steps) if pixels > 0 else -max(1, steps)
