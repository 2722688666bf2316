"""Scripted Gemini turns, and cua scenario scripts (typed actions in pixels) translated to them.

A ``Turn`` is what the "model" says: parts (text, thoughts, function calls with 0–999
coordinates) and a finish reason. A script entry may also be a callable ``(request, TurnState) ->
Turn`` that looks at what it received; ``script_turns`` builds such callables, because a pixel
becomes a 0–999 value only against the size of the screenshot the request carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union

from ...actions import normalize

if TYPE_CHECKING:
    from ...scenario import ScriptTurn


class ScriptError(Exception):
    """The script asked for something the model could never send (a bug of the test)."""


@dataclass
class Turn:
    parts: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "STOP"
    usage: dict[str, int] | None = None
    block_reason: str | None = None  # promptFeedback.blockReason: no candidate at all

    @classmethod
    def calls(cls, *calls: tuple[str, dict[str, Any]] | dict[str, Any], thought: str | None = None) -> "Turn":
        """``Turn.calls(("click", {"x": 10, "y": 20}), ...)``: function calls, optionally after a thought."""
        parts: list[dict[str, Any]] = [{"text": thought, "thought": True}] if thought else []
        for call in calls:
            if isinstance(call, tuple):
                name, args = call
                call = {"name": name, "args": args}
            parts.append({"functionCall": call})
        return cls(parts=parts)

    @classmethod
    def text(cls, text: str) -> "Turn":
        return cls(parts=[{"text": text}])

    @classmethod
    def finish(cls, reason: str, parts: list[dict[str, Any]] | None = None) -> "Turn":
        return cls(parts=parts or [], finish_reason=reason)

    @classmethod
    def blocked(cls, reason: str = "SAFETY") -> "Turn":
        return cls(block_reason=reason)


@dataclass
class TurnState:
    index: int
    request: dict[str, Any]  # camelCase
    screen: tuple[int, int] | None  # (width, height) of the newest screenshot the request carries
    memory: dict[str, Any]


ScriptedTurn = Union[Turn, Callable[[dict[str, Any], TurnState], Turn]]


# --- cua scripts → Gemini function calls (the 3.5+ set) -------------------------------------------


def script_turns(script: "list[ScriptTurn]") -> list[ScriptedTurn]:
    """A scenario's script as stand-in turns over the Gemini wire format."""
    return [_scripted(turn) for turn in script]


def _scripted(turn: "ScriptTurn") -> ScriptedTurn:
    if turn.message is not None:
        parts = [{"text": turn.reasoning, "thought": True}] if turn.reasoning else []
        return Turn(parts=parts + [{"text": turn.message}])

    def play(request: dict[str, Any], state: TurnState) -> Turn:
        calls: list[dict[str, Any]] = []
        if turn.function is not None:
            calls.append({"name": turn.function["name"], "args": dict(turn.function.get("arguments") or {})})
        else:
            if state.screen is None:
                raise ScriptError("no screenshot in the request to normalise the script's pixels against")
            for action in turn.actions or []:
                calls += gemini_calls(action, *state.screen)
        if turn.safety_checks and calls:
            check = turn.safety_checks[0]
            calls[0]["args"]["safety_decision"] = {
                "decision": "require_confirmation",
                "explanation": check.get("message") or check.get("code") or "confirm this action",
            }
        return Turn.calls(*calls, thought=turn.reasoning)

    return play


def gemini_calls(action: dict[str, Any], width: int, height: int) -> list[dict[str, Any]]:
    """One typed cua action (pixels) → the Gemini calls (0–999) that do the same."""
    kind = action.get("type")

    def at(x: int, y: int) -> dict[str, int]:
        return {"x": normalize(x, width), "y": normalize(y, height)}

    def call(name: str, **args: Any) -> dict[str, Any]:
        return {"name": name, "args": args}

    held = [str(k) for k in action.get("keys") or []] if kind not in ("keypress", "key_down", "key_up", "hold_key") else []
    calls: list[dict[str, Any]]
    if kind == "click":
        name = {"left": "click", "right": "right_click", "wheel": "middle_click"}.get(action.get("button", "left"))
        if name is None:
            raise ScriptError(f"Gemini has no {action.get('button')} button click")
        calls = [call(name, **at(action["x"], action["y"]))]
    elif kind in ("double_click", "triple_click", "move"):
        calls = [call(kind, **at(action["x"], action["y"]))]
    elif kind in ("mouse_down", "mouse_up"):
        if action.get("x") is None:
            raise ScriptError(f"Gemini's {kind} needs x and y")
        calls = [call(kind, **at(action["x"], action["y"]))]
    elif kind == "drag":  # Gemini drags from one point to another: the path's ends
        start, end = action["path"][0], action["path"][-1]
        calls = [call("drag_and_drop", **at(start["x"], start["y"]),
                      destination_x=normalize(end["x"], width), destination_y=normalize(end["y"], height))]
    elif kind == "keypress":
        keys = list(action["keys"])
        calls = [call("press_key", key=keys[0])] if len(keys) == 1 else [call("hotkey", keys=keys)]
    elif kind in ("key_down", "key_up"):
        calls = [call(kind, key=k) for k in action["keys"]]
    elif kind == "hold_key":
        calls = [call("key_down", key=k) for k in action["keys"]]
        calls.append(call("wait", seconds=action["ms"] / 1000))
        calls += [call("key_up", key=k) for k in reversed(action["keys"])]
    elif kind == "type":
        calls = [call("type", text=action["text"])]
    elif kind == "scroll":  # a magnitude is at most a screenful: a longer scroll takes several
        calls = []
        for axis, size, neg, pos in (("scroll_y", height, "up", "down"), ("scroll_x", width, "left", "right")):
            amount, step = int(action.get(axis) or 0), size - 1
            while amount:
                part = max(-step, min(step, amount))
                calls.append(call("scroll", **at(action["x"], action["y"]), direction=pos if part > 0 else neg,
                                  magnitude=normalize(abs(part), size)))
                amount -= part
    elif kind == "wait":
        calls = [call("wait", seconds=(action["ms"] / 1000) if action.get("ms") is not None else 1)]
    elif kind == "screenshot":
        calls = [call("take_screenshot")]
    elif kind == "navigate":
        calls = [call("navigate", url=action["url"])]
    elif kind in ("back", "forward"):
        calls = [call(f"go_{kind}")]
    else:
        raise ScriptError(f"Gemini's computer-use functions have nothing like a {kind!r} action")
    if held:
        calls = [call("key_down", key=k) for k in held] + calls + [call("key_up", key=k) for k in reversed(held)]
    return calls


__all__ = ["ScriptError", "ScriptedTurn", "Turn", "TurnState", "gemini_calls", "script_turns"]
