"""Claude's computer members → cua's typed actions (model-space pixels).

One function per shape of input, one table from member to action. Bad input raises
``ModelOutputError`` with a sentence the model is told (the call is answered ``is_error``).
"""

from __future__ import annotations

from typing import Any

from ...actions import Action, Size, parse_action
from ...errors import ModelOutputError

CLICKS = {"left_click": ("click", "left"), "right_click": ("click", "right"), "middle_click": ("click", "wheel"),
          "double_click": ("double_click", None), "triple_click": ("triple_click", None)}
MEMBERS = (*CLICKS, "screenshot", "left_click_drag", "left_mouse_down", "left_mouse_up", "mouse_move", "scroll",
           "type", "key", "hold_key", "wait", "cursor_position", "zoom")
MAX_REPEAT = 100
# xdotool key names that cua's key table does not spell the same way.
_XDOTOOL = {
    "plus": "+", "minus": "-", "equal": "=", "period": ".", "comma": ",", "slash": "/", "backslash": "\\",
    "semicolon": ";", "apostrophe": "'", "grave": "`", "bracketleft": "[", "bracketright": "]",
    "kp_enter": "Enter", "super_l": "Meta", "super_r": "Meta", "control_l": "Control", "control_r": "Control",
    "alt_l": "Alt", "alt_r": "Alt", "shift_l": "Shift", "shift_r": "Shift", "meta_l": "Meta", "meta_r": "Meta",
    "prior": "PageUp", "next": "PageDown",
}


class Pointer:
    """Where Claude's actions left the pointer: members without ``coordinate`` act there. It
    starts at the display's centre (the pointer's place before any action is unknown)."""

    def __init__(self, display: Size) -> None:
        self.x, self.y = display.width // 2, display.height // 2

    def at(self, point: tuple[int, int] | None) -> tuple[int, int]:
        if point is not None:
            self.x, self.y = point
        return self.x, self.y


def keys_of(text: Any, where: str) -> list[str]:
    """``"ctrl+shift+Tab"`` → ``["ctrl", "shift", "Tab"]`` (xdotool names; ``+`` alone is the key)."""
    if not isinstance(text, str) or not text.strip():
        raise ModelOutputError(f"{where}: needs a key name in text")
    parts = [p for p in text.strip().split("+")] if text.strip() != "+" else ["+"]
    if "" in parts:  # "ctrl++" is ctrl and the plus key
        parts = [p for p in parts if p] + ["+"]
    return [_XDOTOOL.get(p.lower(), p) for p in parts]


def _point(value: Any, name: str, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ModelOutputError(f"{where}: {name} must be [x, y] in pixels, got {value!r}")
    return round(value[0]), round(value[1])


def _seconds(value: Any, where: str, *, limit: float = 60) -> int:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= limit:
        raise ModelOutputError(f"{where}: duration must be a number of seconds from 0 to {limit:g}, got {value!r}")
    return round(value * 1000)


def actions_of(name: str, data: dict[str, Any], pointer: Pointer, notch_px: float, where: str) -> list[Action]:
    """The typed actions of one member call (``key`` with ``repeat`` is several keypresses)."""
    if not isinstance(data, dict):
        raise ModelOutputError(f"{where}: input must be an object")
    held = keys_of(data["text"], where) if name in (*CLICKS, "left_click_drag", "mouse_move", "scroll") \
        and data.get("text") else None
    coordinate = _point(data.get("coordinate"), "coordinate", where)
    raw: list[dict[str, Any]]
    if name in CLICKS:
        kind, button = CLICKS[name]
        x, y = pointer.at(coordinate)
        raw = [{"type": kind, "x": x, "y": y, "keys": held, **({"button": button} if button else {})}]
    elif name == "mouse_move":
        if coordinate is None:
            raise ModelOutputError(f"{where}: mouse_move needs a coordinate")
        x, y = pointer.at(coordinate)
        raw = [{"type": "move", "x": x, "y": y, "keys": held}]
    elif name == "left_click_drag":
        start = _point(data.get("start_coordinate"), "start_coordinate", where)
        if start is None or coordinate is None:
            raise ModelOutputError(f"{where}: left_click_drag needs start_coordinate and coordinate")
        pointer.at(coordinate)
        raw = [{"type": "drag", "path": [{"x": start[0], "y": start[1]}, {"x": coordinate[0], "y": coordinate[1]}],
                "keys": held}]
    elif name in ("left_mouse_down", "left_mouse_up"):
        point = pointer.at(coordinate) if coordinate is not None else (None, None)
        raw = [{"type": "mouse_down" if name == "left_mouse_down" else "mouse_up", "x": point[0], "y": point[1]}]
    elif name == "scroll":
        raw = [_scroll(data, pointer.at(coordinate), notch_px, held, where)]
    elif name == "type":
        if not isinstance(data.get("text"), str):
            raise ModelOutputError(f"{where}: type needs the text to type")
        raw = [{"type": "type", "text": data["text"]}]
    elif name == "key":
        repeat = data.get("repeat", 1)
        if repeat is None:
            repeat = 1
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= MAX_REPEAT:
            raise ModelOutputError(f"{where}: repeat must be a whole number from 1 to {MAX_REPEAT}, got {repeat!r}")
        raw = [{"type": "keypress", "keys": keys_of(data.get("text"), where)}] * repeat
    elif name == "hold_key":
        raw = [{"type": "hold_key", "keys": keys_of(data.get("text"), where),
                "ms": _seconds(data.get("duration"), where)}]
    elif name == "wait":
        raw = [{"type": "wait", "ms": _seconds(data.get("duration", 1), where)}]
    elif name == "zoom":
        region = data.get("region")
        if (not isinstance(region, (list, tuple)) or len(region) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in region)):
            raise ModelOutputError(f"{where}: zoom needs region [x0, y0, x1, y1] in pixels, got {region!r}")
        x0, y0, x1, y1 = (round(v) for v in region)
        raw = [{"type": "zoom", "x0": x0, "y0": y0, "x1": x1, "y1": y1}]
    elif name in ("screenshot", "cursor_position"):
        raw = [{"type": name}]
    else:
        raise ModelOutputError(f"{where}: unknown computer action {name!r} (known: {', '.join(MEMBERS)})")
    return [parse_action({k: v for k, v in r.items() if v is not None}, where=where) for r in raw]


def _scroll(data: dict[str, Any], at: tuple[int, int], notch_px: float, held: list[str] | None,
            where: str) -> dict[str, Any]:
    direction, amount = data.get("scroll_direction"), data.get("scroll_amount")
    if direction not in ("up", "down", "left", "right"):
        raise ModelOutputError(f"{where}: scroll_direction must be up, down, left or right, got {direction!r}")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ModelOutputError(f"{where}: scroll_amount must be a whole number of wheel notches, got {amount!r}")
    pixels = round(amount * notch_px) * (-1 if direction in ("up", "left") else 1)
    horizontal = direction in ("left", "right")
    return {"type": "scroll", "x": at[0], "y": at[1], "scroll_x": pixels if horizontal else 0,
            "scroll_y": 0 if horizontal else pixels, "keys": held}
