"""Scripted Claude turns, the messages and SSE events built from them, and scenario scripts.

A ``Turn`` lists content blocks the way a test thinks of them: text, thinking, computer members
(``member("left_click", coordinate=[10, 20])``) and function calls. The stand-in fills in ids and
signatures and shapes each member for the computer tool the request declares: a toolset member
(``name`` the member, ``toolset_name: computer``) or a beta tool's ``computer`` call with
``input.action`` — so one script plays over either tool.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union

from ...errors import ConfigError
from .contract import MEMBERS, TOOLSET, Request

if TYPE_CHECKING:
    from ...scenario import ScriptTurn


class ScriptError(ConfigError):
    """The test's script cannot be played (an unknown member, a callable that raised, …)."""


def member(name: str, **fields: Any) -> dict[str, Any]:
    """One call of a computer member, e.g. ``member("scroll", coordinate=[5, 5], scroll_direction="down",
    scroll_amount=3)``."""
    if name not in MEMBERS:
        raise ScriptError(f"{name!r} is not a member of {TOOLSET} (members: {', '.join(MEMBERS)})")
    return {"type": "tool_use", "name": name, "input": fields, "toolset_name": "computer"}


def function(name: str, **arguments: Any) -> dict[str, Any]:
    """A call of one of the request's custom tools."""
    return {"type": "tool_use", "name": name, "input": arguments}


@dataclass
class Turn:
    """One scripted assistant message. ``stop_reason`` defaults to ``tool_use`` when it calls
    anything, else ``end_turn``; ``usage`` is merged over the computed usage."""

    content: list[dict[str, Any]]
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None

    @classmethod
    def text(cls, text: str, **kw: Any) -> "Turn":
        return cls([{"type": "text", "text": text}], **kw)

    @classmethod
    def calls(cls, *calls: dict[str, Any], text: str | None = None, thinking: str | None = None,
              **kw: Any) -> "Turn":
        blocks: list[dict[str, Any]] = []
        if thinking is not None:
            blocks.append({"type": "thinking", "thinking": thinking})
        if text is not None:
            blocks.append({"type": "text", "text": text})
        return cls(blocks + list(calls), **kw)


@dataclass
class TurnState:
    """What a callable turn sees of the request it answers."""

    index: int
    request: dict[str, Any]
    tool_results: list[dict[str, Any]] = field(default_factory=list)  # of the last user message
    memory: dict[str, Any] = field(default_factory=dict)


ScriptedTurn = Union[Turn, Callable[[dict[str, Any], TurnState], Turn]]


# --- messages -------------------------------------------------------------------------------------

_SIGNING_KEY = secrets.token_bytes(16)


def sign(thinking: str) -> str:
    return base64.b64encode(hmac.new(_SIGNING_KEY, thinking.encode(), hashlib.sha256).digest() * 3).decode()


def build_message(turn: Turn, request: Request, model: str, signatures: dict[str, str],
                  usage: dict[str, int]) -> dict[str, Any]:
    """The assistant message answering ``request``; issued thinking goes into ``signatures``."""
    content: list[dict[str, Any]] = []
    for block in turn.content:
        block = json.loads(json.dumps(block))
        kind = block.get("type")
        if kind == "thinking":
            if not request.thinking:  # no thinking without ``thinking`` in the request: say it aloud
                content.append({"type": "text", "text": block["thinking"]})
                continue
            block["signature"] = sign(block["thinking"])
            signatures[block["signature"]] = block["thinking"]
            content.append(block)
        elif kind == "text":
            content.append({"type": "text", "text": block["text"]})
        elif kind == "tool_use":
            content.append(_tool_use(block, request))
        else:
            raise ScriptError(f"a scripted block must be text, thinking or tool_use, got {kind!r}")
    calls = any(b["type"] == "tool_use" for b in content)
    stop = turn.stop_reason or ("tool_use" if calls else "end_turn")
    return {
        "id": "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": None, "usage": {**usage, **(turn.usage or {})},
    }


def _tool_use(block: dict[str, Any], request: Request) -> dict[str, Any]:
    out = {"type": "tool_use", "id": "toolu_" + secrets.token_hex(12), "name": block["name"],
           "input": block.get("input") or {}}
    if block.get("toolset_name") is None:
        if block["name"] not in request.functions:
            raise ScriptError(f"the script calls {block['name']!r}, which the request does not declare "
                              f"(tools: {', '.join(request.functions) or 'none'})")
    elif request.tool_type == TOOLSET:
        out["toolset_name"] = "computer"
    elif request.tool_type is not None:  # a beta tool: one ``computer`` tool, the member in ``action``
        out["name"], out["input"] = "computer", {"action": block["name"], **out["input"]}
    else:
        raise ScriptError(f"the script calls computer member {block['name']!r}, but the request "
                          "declares no computer tool")
    out["caller"] = {"type": "direct"}
    return out


def sse_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream of ``message``, every block in pieces the way the service sends them."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            events += [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
                       for piece in _halves(block["text"])]
        elif kind == "thinking":
            events.append({"type": "content_block_start", "index": index,
                           "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            events += [{"type": "content_block_delta", "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece}} for piece in _halves(block["thinking"])]
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "signature_delta", "signature": block["signature"]}})
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}})
            events += [{"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece}}
                       for piece in _halves(json.dumps(block["input"]))]
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                   "usage": {"output_tokens": usage["output_tokens"]}})
    events.append({"type": "message_stop"})
    return events


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [part for part in (text[:middle], text[middle:]) if part] or [""]


# --- the prompt cache ------------------------------------------------------------------------------


class PromptCache:
    """Prefixes written at ``cache_control`` breakpoints, and how much of a request they cover.

    The service looks for a cached prefix at each breakpoint and up to 20 blocks before it; a hit
    is read, the rest up to the last breakpoint is written (cache_read / cache_creation tokens)."""

    LOOKBACK = 20

    def __init__(self) -> None:
        self.prefixes: set[str] = set()

    def usage(self, request: Request, output_tokens: int) -> dict[str, int]:
        blocks = _flat_blocks(request.body)
        hashes, tokens, digest, total = [], [], hashlib.sha256(), 0
        for block, _ in blocks:
            digest.update(json.dumps(block, sort_keys=True).encode())
            hashes.append(digest.copy().hexdigest())
            total += _tokens(block)
            tokens.append(total)
        breakpoints = [n for n, (_, marked) in enumerate(blocks) if marked]
        read = 0
        for point in breakpoints:
            for n in range(point, max(-1, point - self.LOOKBACK - 1), -1):
                if hashes[n] in self.prefixes:
                    read = max(read, tokens[n])
                    break
        written = max(0, tokens[breakpoints[-1]] - read) if breakpoints else 0
        self.prefixes.update(hashes[n] for n in breakpoints)
        return {"input_tokens": total - read - written, "cache_read_input_tokens": read,
                "cache_creation_input_tokens": written, "output_tokens": output_tokens}


def _flat_blocks(body: dict[str, Any]) -> list[tuple[Any, bool]]:
    """Tools, system, then every message block, in the order the prefix is read; cache_control
    marks a breakpoint and is not part of the content."""
    def strip(block: Any) -> tuple[Any, bool]:
        if not isinstance(block, dict):
            return block, False
        return {k: v for k, v in block.items() if k != "cache_control"}, bool(block.get("cache_control"))

    flat = [strip(t) for t in body.get("tools") or []]
    system = body.get("system")
    flat += [strip(b) for b in system] if isinstance(system, list) else ([(system, False)] if system else [])
    for message in body.get("messages") or []:
        content = message.get("content")
        flat += [strip(b) for b in content] if isinstance(content, list) else [(content, False)]
    return flat


def _tokens(block: Any) -> int:
    """A rough count: text at 4 characters a token, an image at (width x height) / 750."""
    text = json.dumps(block)
    images = text.count('"type": "image"')
    if images:  # the base64 data is not text the model reads
        return images * 1100 + 20
    return max(1, math.ceil(len(text) / 4))


# --- scenario scripts -------------------------------------------------------------------------------

NOTCH_PX = 100  # the browser's wheel notch, in model pixels (Environment.wheel_notch_px)
_BUTTONS = {"left": "left_click", "right": "right_click", "wheel": "middle_click"}


def script_turns(script: "list[ScriptTurn]") -> list[Turn]:
    """A scenario's script (typed action dicts, pixels) as Claude turns of computer members."""
    turns = []
    for number, turn in enumerate(script, 1):
        if turn.message is not None:
            turns.append(Turn([*_said(turn.reasoning), {"type": "text", "text": turn.message}]))
        elif turn.function is not None:
            turns.append(Turn([*_said(turn.reasoning),
                               function(turn.function["name"], **(turn.function.get("arguments") or {}))]))
        else:
            calls = [c for n, raw in enumerate(turn.actions or [], 1)
                     for c in _members(raw, where=f"script turn {number} action {n}")]
            turns.append(Turn([*_said(turn.reasoning), *calls]))
    return turns


def _said(reasoning: str | None) -> list[dict[str, Any]]:
    return [{"type": "thinking", "thinking": reasoning}] if reasoning else []


def _members(raw: dict[str, Any], *, where: str) -> list[dict[str, Any]]:
    kind = raw.get("type")
    held = {"text": "+".join(raw["keys"])} if raw.get("keys") else {}
    at = {"coordinate": [raw["x"], raw["y"]]} if raw.get("x") is not None else {}
    if kind == "click":
        name = _BUTTONS.get(raw.get("button", "left"))
        if name is None:
            raise ScriptError(f"{where}: Claude has no {raw['button']} button click")
        return [member(name, **at, **held)]
    if kind in ("double_click", "triple_click"):
        return [member(kind, **at, **held)]
    if kind == "move":
        return [member("mouse_move", **at, **held)]
    if kind == "drag":
        # Claude's drag goes straight from start to end: the points between are not said.
        path = [[p["x"], p["y"]] for p in raw["path"]]
        return [member("left_click_drag", start_coordinate=path[0], coordinate=path[-1], **held)]
    if kind == "keypress":
        return [member("key", text="+".join(raw["keys"]))]
    if kind == "type":
        return [member("type", text=raw["text"])]
    if kind == "scroll":
        calls = []
        for pixels, directions in ((raw.get("scroll_y", 0), ("down", "up")), (raw.get("scroll_x", 0), ("right", "left"))):
            if pixels:
                calls.append(member("scroll", **at, **held, scroll_direction=directions[pixels < 0],
                                    scroll_amount=max(1, round(abs(pixels) / NOTCH_PX))))
        return calls
    if kind == "wait":
        return [member("wait", duration=max(1, math.ceil((raw.get("ms") or 1000) / 1000)))]
    if kind == "screenshot":
        return [member("screenshot")]
    if kind in ("mouse_down", "mouse_up"):
        move = [member("mouse_move", **at)] if at else []
        return move + [member("left_mouse_down" if kind == "mouse_down" else "left_mouse_up")]
    if kind == "hold_key":
        return [member("hold_key", text="+".join(raw["keys"]), duration=max(1, round(raw["ms"] / 1000)))]
    if kind == "zoom":
        return [member("zoom", region=[raw["x0"], raw["y0"], raw["x1"], raw["y1"]])]
    if kind == "cursor_position":
        return [member("cursor_position")]
    raise ScriptError(f"{where}: Claude's computer tool has no member for a {kind!r} action")
