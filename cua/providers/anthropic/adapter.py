"""The Messages API as a provider: the conversation, Claude's members ↔ typed turns, answers.

The whole history goes with every request (the API keeps no state). Each assistant message is
sent back exactly as it came (thinking signatures intact); each batch of ``tool_use`` blocks is
answered, in order, by ONE user message of ``tool_result`` blocks. Only the newest
``keep_screenshots`` images are sent in full; ``cache_control`` breakpoints (the API allows 4)
mark the tools and the two newest user messages, so a long run re-reads its prefix from the cache.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from ...environments.base import ActionOutput
from ...errors import ModelOutputError
from ..base import CallAnswer, ComputerCall, EventHandler, FunctionCall, FunctionSpec, Provider, Screen, Turn, Usage
from .members import Pointer, actions_of
from .models import (
    BETA_HEADERS,
    MAX_TOKENS,
    PAUSE_TURN,
    REFUSAL,
    TOOLSET,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    computer_tool,
    image_block,
)

if TYPE_CHECKING:
    from ...config import RunSettings

OMITTED = "[an earlier screenshot, omitted to bound the request size]"
NOT_EXECUTED = "Not executed: an earlier action of this turn failed, so this one did not run."
MAX_PAUSES = 5  # pause_turn continuations within one turn before it counts as a failure
CACHE = {"type": "ephemeral"}


class AnthropicProvider(Provider):
    name = "anthropic"
    answers_errors = True

    def __init__(self, settings: "RunSettings", client: Any, tool: str) -> None:
        self.settings = settings
        self.client = client  # a MessagesClient, or anything with its ``create``
        self.tool = tool
        self.messages: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []
        self.screen: Screen | None = None
        self.pointer: Pointer | None = None
        self.functions: set[str] = set()

    # --- the conversation -----------------------------------------------------------------------

    def start(self, task: str, screenshot: bytes, screen: Screen, functions: list[FunctionSpec]) -> None:
        self.screen, self.pointer = screen, Pointer(screen.display)
        self.tools = [computer_tool(self.tool, screen.display.width, screen.display.height, zoom=self.settings.zoom)]
        self.tools += [{"name": f.name, "description": f.description, "input_schema": f.parameters} for f in functions]
        self.functions = {f.name for f in functions}
        self.messages = [{"role": "user", "content": [{"type": "text", "text": task}, _image(screenshot)]}]

    def request(self) -> dict[str, Any]:
        """The next request's body: the history with old screenshots omitted and cache breakpoints."""
        s = self.settings
        body: dict[str, Any] = {"model": s.model, "max_tokens": s.max_tokens, "messages": self._history(),
                                "tools": [dict(t) for t in self.tools]}
        body["tools"][-1]["cache_control"] = CACHE  # tools (and system) are the stable prefix
        if s.instructions:
            body["system"] = s.instructions
        if s.thinking_budget:
            body["thinking"] = {"type": "enabled", "budget_tokens": s.thinking_budget}
        if s.stream:
            body["stream"] = True
        return body

    def _history(self) -> list[dict[str, Any]]:
        keep = self.settings.keep_screenshots
        seen = 0
        history: list[dict[str, Any]] = []
        for message in reversed(self.messages):  # newest first: count images back from the end
            content = []
            for block in reversed(message["content"]):
                if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                    inner = []
                    for part in reversed(block["content"]):
                        if part.get("type") == "image":
                            seen += 1
                            part = part if seen <= keep else {"type": "text", "text": OMITTED}
                        inner.append(part)
                    block = {**block, "content": inner[::-1]}
                elif block.get("type") == "image":
                    seen += 1
                    block = block if seen <= keep else {"type": "text", "text": OMITTED}
                content.append(block)
            history.append({"role": message["role"], "content": content[::-1]})
        history.reverse()
        for message in _breakpoints(history, trimmed=seen > keep):
            message["content"][-1] = {**message["content"][-1], "cache_control": CACHE}
        return history

    async def next_turn(self, on_event: EventHandler | None = None) -> Turn:
        assert self.screen is not None, "start() first"
        betas = (BETA_HEADERS[self.tool],) if self.tool in BETA_HEADERS else ()
        usage, texts, thoughts, items = Usage(), [], [], []
        for _ in range(MAX_PAUSES + 1):
            if on_event is not None:
                on_event({"type": "model.waiting"})
            message = await self.client.create(self.request(), betas=betas, on_event=_progress(on_event))
            self.messages.append({"role": "assistant", "content": [b.wire() for b in message.blocks()]})
            usage.add(_usage(message))
            blocks = message.blocks()
            texts += [b.text for b in blocks if isinstance(b, TextBlock) and b.text]
            thoughts += [b.thinking for b in blocks if isinstance(b, ThinkingBlock) and b.thinking]
            items += [_recorded(b.wire()) for b in blocks]
            if message.stop_reason != PAUSE_TURN:  # a paused turn is sent back as it is to go on
                break
        turn = Turn(id=message.id, text="\n".join(texts), reasoning="\n".join(thoughts), usage=usage, items=items)
        uses = [b for b in message.blocks() if isinstance(b, ToolUseBlock)]
        turn.calls = self._calls(uses)
        if message.stop_reason == REFUSAL:
            turn.refusal = turn.text or "Claude declined to go on (stop_reason refusal)."
        elif message.stop_reason == MAX_TOKENS:
            turn.failure = (f"the reply was cut at max_tokens ({self.settings.max_tokens}); raise max_tokens"
                            + (" or lower the thinking budget" if self.settings.thinking_budget else ""))
        elif message.stop_reason == PAUSE_TURN:
            turn.failure = f"the reply paused (pause_turn) {MAX_PAUSES + 1} times in a row"
        elif message.stop_reason == "model_context_window_exceeded":
            turn.failure = "the conversation outgrew the model's context window"
        return turn

    def _calls(self, uses: list[ToolUseBlock]) -> list[ComputerCall | FunctionCall]:
        assert self.screen is not None and self.pointer is not None
        calls: list[ComputerCall | FunctionCall] = []
        for use in uses:
            if use.toolset_name is None and use.name in self.functions:
                calls.append(FunctionCall(id=use.id, name=use.name, arguments=json.dumps(use.input)))
                continue
            member, data = use.name, dict(use.input)
            if self.tool != TOOLSET and use.name == "computer":  # a beta tool: the member is input.action
                member = str(data.pop("action", ""))
            call = ComputerCall(id=use.id, actions=[], name=member or use.name)
            try:
                call.actions = actions_of(member, data, self.pointer, self.screen.notch_px,
                                          where=f"{member or use.name} ({use.id})")
            except ModelOutputError as exc:
                call.problem = str(exc)
            call.screenshot = member in ("screenshot",)
            calls.append(call)
        computer = [c for c in calls if isinstance(c, ComputerCall) and c.name not in ("zoom", "cursor_position")]
        if computer:  # one screenshot answers the batch, on its last action
            computer[-1].screenshot = True
        return calls

    def answer(self, answers: list[CallAnswer]) -> None:
        results = [self._result(a) for a in answers]
        if results:
            self.messages.append({"role": "user", "content": results})

    def _result(self, answer: CallAnswer) -> dict[str, Any]:
        call = answer.call
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id}
        if isinstance(call, ComputerCall) and self.tool == TOOLSET:
            result["toolset_name"] = "computer"
        if not answer.executed:
            return {**result, "is_error": True, "content": [{"type": "text", "text": NOT_EXECUTED}]}
        content: list[dict[str, Any]] = []
        if answer.error:
            content.append({"type": "text", "text": answer.error})
        elif isinstance(call, FunctionCall):
            content.append({"type": "text", "text": answer.output or "(no output)"})
        else:
            content += _outputs(answer.outputs)
        if answer.screenshot is not None:
            content.append(_image(answer.screenshot))
        if not content:
            content.append({"type": "text", "text": f"Done: {call.name}."})
        result["content"] = content
        if answer.error:
            result["is_error"] = True
        return result

    def public(self) -> dict[str, Any]:
        return {"provider": self.name, "tool": self.tool}

    async def aclose(self) -> None:
        if hasattr(self.client, "aclose"):
            await self.client.aclose()


def _breakpoints(history: list[dict[str, Any]], *, trimmed: bool) -> list[dict[str, Any]]:
    """The messages whose last block gets a cache breakpoint (3 at most; the tools hold the 4th).

    The two newest user messages: the newest prefix is written, the one before it read back. Once
    old screenshots are omitted, each request omits one more, so the prefix before the oldest full
    screenshot is the part that stays the same: a breakpoint on the last user message before it
    lets the next request read that prefix back."""
    users = [m for m in history if m["role"] == "user"]
    marked = users[-2:]
    if trimmed:
        full = next((n for n, m in enumerate(history) if any(_has_image(b) for b in m["content"])), None)
        frontier = [m for m in history[:full] if m["role"] == "user"] if full else []
        if frontier and all(frontier[-1] is not m for m in marked):
            marked.insert(0, frontier[-1])
    return marked


def _has_image(block: dict[str, Any]) -> bool:
    if block.get("type") == "image":
        return True
    return block.get("type") == "tool_result" and any(
        isinstance(p, dict) and p.get("type") == "image" for p in block.get("content") or [])


def _outputs(outputs: list[ActionOutput]) -> list[dict[str, Any]]:
    """What zoom and cursor_position answer: the region's image, the pointer as ``X=…,Y=…``."""
    content: list[dict[str, Any]] = []
    for output in outputs:
        if output.image is not None:
            content.append(_image(output.image))
        if output.point is not None:
            content.append({"type": "text", "text": f"X={output.point[0]},Y={output.point[1]}"})
    return content


def _image(png: bytes) -> dict[str, Any]:
    return image_block(base64.b64encode(png).decode("ascii"))


def _usage(message: Message) -> Usage:
    u = message.usage
    read, written = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
    total_input = u.input_tokens + read + written
    return Usage(input_tokens=total_input, output_tokens=u.output_tokens, cache_read_tokens=read,
                 cache_write_tokens=written, total_tokens=total_input + u.output_tokens)


def _recorded(block: dict[str, Any]) -> dict[str, Any]:
    """A block as the run folder records it: no signature blobs (large, and useless to a reader)."""
    if "signature" in block:
        return {**block, "signature": "…"}
    if block.get("type") == "redacted_thinking":
        return {**block, "data": "…"}
    return block


_PROGRESS = {"thinking_delta": ("model.thinking", "thinking"), "text_delta": ("model.text", "text")}


def _progress(on_event: EventHandler | None) -> EventHandler | None:
    if on_event is None:
        return None

    def forward(event: dict[str, Any]) -> None:
        if event.get("type") == "content_block_delta":
            delta = event.get("delta") or {}
            kind = _PROGRESS.get(str(delta.get("type")))
            if kind is not None:
                on_event({"type": kind[0], "delta": delta.get(kind[1], "")})

    return forward
