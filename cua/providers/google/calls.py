"""Gemini's predefined computer-use functions → cua's typed actions, in model-space pixels.

Both function sets are read whatever the model: a model only calls what it knows, and the names the
two sets share (``navigate``, ``drag_and_drop``, ``go_back``, ``go_forward``) mean the same. Every
0–999 coordinate goes through ``cua.actions.denormalize``; a value outside 0–999, a missing
argument or an unknown function is a ``ModelOutputError`` the adapter turns into the call's
``problem`` (answered to the model, which may try again).
"""

from __future__ import annotations

from typing import Any, Callable

from ...actions import NORMALIZED_MAX, Action, Size, denormalize, parse_action
from ...errors import ModelOutputError

SEARCH_URL = "https://www.google.com/"  # where ``search`` goes, as Google's reference browser does
DEFAULT_SCROLL_MAGNITUDE = 800  # of 1000, when the model gives none (Google's reference agent)
DEFAULT_WAIT_S = 5

# Arguments that ride along on any call and are not part of the action.
_RIDERS = ("safety_decision", "intent")


class _Args:
    """One call's arguments, read with messages that name the call."""

    def __init__(self, name: str, args: dict[str, Any], screen: Size) -> None:
        self.name, self.args, self.screen = name, args, screen

    def fail(self, why: str) -> ModelOutputError:
        return ModelOutputError(f"{self.name}: {why}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        value = self.args.get(key, default)
        if value is ...:
            raise self.fail(f"missing argument {key!r}")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            raise self.fail(f"argument {key!r} must be {_kind_name(kind)}, got {value!r}")
        return value

    def grid(self, key: str, size: int) -> int:
        value = self.get(key, (int, float))
        if not 0 <= value <= NORMALIZED_MAX:
            raise self.fail(f"{key}={value} is outside Gemini's 0-{NORMALIZED_MAX} coordinate range")
        return denormalize(value, size)

    def point(self, xkey: str = "x", ykey: str = "y") -> dict[str, int]:
        return {"x": self.grid(xkey, self.screen.width), "y": self.grid(ykey, self.screen.height)}

    def scroll(self, direction: str, magnitude: float) -> dict[str, int]:
        if not 0 <= magnitude <= NORMALIZED_MAX:
            raise self.fail(f"magnitude={magnitude} is outside Gemini's 0-{NORMALIZED_MAX} range")
        vertical = direction in ("up", "down")
        if not vertical and direction not in ("left", "right"):
            raise self.fail(f"direction must be up, down, left or right, got {direction!r}")
        pixels = denormalize(magnitude, self.screen.height if vertical else self.screen.width)
        sign = -1 if direction in ("up", "left") else 1
        return {"scroll_x": 0, "scroll_y": sign * pixels} if vertical else {"scroll_x": sign * pixels, "scroll_y": 0}


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", list: "a list", int: "a number", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _select_all(env: str) -> list[str]:
    return ["Meta", "a"] if env == "mac" else ["Control", "a"]


def _legacy(name: str, a: _Args, env: str) -> list[dict[str, Any]]:
    if name == "open_web_browser":
        return [{"type": "screenshot"}]  # the browser is open already: the answer shows it
    if name == "click_at":
        return [{"type": "click", **a.point()}]
    if name == "hover_at":
        return [{"type": "move", **a.point()}]
    if name == "type_text_at":
        point, text = a.point(), a.get("text", str)
        actions: list[dict[str, Any]] = [{"type": "click", **point}]
        if a.get("clear_before_typing", bool, True):
            actions += [{"type": "keypress", "keys": _select_all(env)}, {"type": "keypress", "keys": ["Delete"]}]
        actions.append({"type": "type", "text": text})
        if a.get("press_enter", bool, False):
            actions.append({"type": "keypress", "keys": ["Enter"]})
        return actions
    if name == "scroll_document":
        direction = a.get("direction", str)
        centre = {"x": a.screen.width // 2, "y": a.screen.height // 2}
        return [{"type": "scroll", **centre, **a.scroll(direction, NORMALIZED_MAX)}]  # a screenful
    if name == "scroll_at":
        magnitude = a.get("magnitude", (int, float), DEFAULT_SCROLL_MAGNITUDE)
        return [{"type": "scroll", **a.point(), **a.scroll(a.get("direction", str), magnitude)}]
    if name == "wait_5_seconds":
        return [{"type": "wait", "ms": 5000}]
    if name == "search":
        return [{"type": "navigate", "url": SEARCH_URL}]
    if name == "key_combination":
        keys = [k.strip() for k in a.get("keys", str).split("+")]
        if not all(keys):  # "control++" or "": a "+" key cannot be told from the separator
            raise a.fail(f"keys must look like 'control+c', got {a.args.get('keys')!r}")
        return [{"type": "keypress", "keys": keys}]
    raise KeyError(name)


def _current(name: str, a: _Args, env: str) -> list[dict[str, Any]]:
    simple = {"click": ("click", {}), "right_click": ("click", {"button": "right"}),
              "middle_click": ("click", {"button": "wheel"}), "double_click": ("double_click", {}),
              "triple_click": ("triple_click", {}), "mouse_down": ("mouse_down", {}),
              "mouse_up": ("mouse_up", {}), "move": ("move", {})}
    if name in simple:
        kind, extra = simple[name]
        return [{"type": kind, **a.point(), **extra}]
    if name == "type":
        actions: list[dict[str, Any]] = [{"type": "type", "text": a.get("text", str)}]
        if a.get("press_enter", bool, False):
            actions.append({"type": "keypress", "keys": ["Enter"]})
        return actions
    if name == "scroll":
        magnitude = a.get("magnitude", (int, float), DEFAULT_SCROLL_MAGNITUDE)
        return [{"type": "scroll", **a.point(), **a.scroll(a.get("direction", str), magnitude)}]
    if name == "wait":
        seconds = a.get("seconds", (int, float), DEFAULT_WAIT_S)
        return [{"type": "wait", "ms": round(seconds * 1000)}]
    if name == "press_key":
        return [{"type": "keypress", "keys": [a.get("key", str)]}]
    if name in ("key_down", "key_up"):
        return [{"type": name, "keys": [a.get("key", str)]}]
    if name == "hotkey":
        keys = a.get("keys", list)
        if not keys or not all(isinstance(k, str) for k in keys):
            raise a.fail(f"keys must be a non-empty list of key names, got {keys!r}")
        return [{"type": "keypress", "keys": keys}]
    if name == "take_screenshot":
        return [{"type": "screenshot"}]
    raise KeyError(name)


def _shared(name: str, a: _Args, env: str) -> list[dict[str, Any]]:
    if name == "drag_and_drop":
        start, end = a.point(), a.point("destination_x", "destination_y")
        return [{"type": "drag", "path": [start, end]}]
    if name == "navigate":
        return [{"type": "navigate", "url": a.get("url", str)}]
    if name == "go_back":
        return [{"type": "back"}]
    if name == "go_forward":
        return [{"type": "forward"}]
    raise KeyError(name)


_TABLES: tuple[Callable[[str, _Args, str], list[dict[str, Any]]], ...] = (_shared, _current, _legacy)


def call_actions(name: str, args: dict[str, Any], screen: Size, env: str) -> list[Action]:
    """The typed actions of one predefined function call (``safety_decision`` and ``intent`` set
    aside); raises ``ModelOutputError`` naming the call."""
    reader = _Args(name, {k: v for k, v in args.items() if k not in _RIDERS}, screen)
    for table in _TABLES:
        try:
            raw = table(name, reader, env)
        except KeyError:
            continue
        return [parse_action(r, where=f"{name} action {n + 1}") for n, r in enumerate(raw)]
    raise ModelOutputError(f"unknown computer-use function {name!r}")


def safety_decision(args: dict[str, Any]) -> dict[str, Any] | None:
    """The call's ``safety_decision`` when it asks for confirmation, else None."""
    decision = args.get("safety_decision")
    if isinstance(decision, dict) and decision.get("decision") == "require_confirmation":
        return decision
    return None


__all__ = ["DEFAULT_SCROLL_MAGNITUDE", "SEARCH_URL", "call_actions", "safety_decision"]
