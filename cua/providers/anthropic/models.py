"""The Messages API's wire shapes that cua reads and writes (anthropic-sdk-python ``types/``).

Responses are validated into these models; blocks keep unknown fields (the service adds fields
over time) so that an assistant turn goes back exactly as it came — thinking signatures intact.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

API_VERSION = "2023-06-01"
TOOLSET = "computer_toolset_20260801"
# Beta tools for platforms still on them: the header that enables each.
BETA_HEADERS = {"computer_20251124": "computer-use-2025-11-24", "computer_20250124": "computer-use-2025-01-24"}
AnthropicTool = Literal["computer_toolset_20260801", "computer_20251124", "computer_20250124"]

# Stop reasons (the SDK's StopReason); the ones the adapter acts on.
END_TURN, MAX_TOKENS, TOOL_USE, PAUSE_TURN, REFUSAL = "end_turn", "max_tokens", "tool_use", "pause_turn", "refusal"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")

    def wire(self) -> dict[str, Any]:
        """The block as sent back in history: every field the service gave, unchanged."""
        return self.model_dump(mode="json", exclude_unset=True)


class TextBlock(_Wire):
    type: Literal["text"]
    text: str


class ThinkingBlock(_Wire):
    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(_Wire):
    type: Literal["redacted_thinking"]
    data: str


class ToolUseBlock(_Wire):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    toolset_name: str | None = None


class OtherBlock(_Wire):
    """A block type cua does not act on (server tool results, …): kept and sent back."""

    type: str


class Usage(_Wire):
    # ``input_tokens`` counts only the uncached part: the total adds both cache fields.
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


def parse_block(data: Any) -> _Wire:
    kind = data.get("type") if isinstance(data, dict) else None
    model = {"text": TextBlock, "thinking": ThinkingBlock, "redacted_thinking": RedactedThinkingBlock,
             "tool_use": ToolUseBlock}.get(str(kind), OtherBlock)
    return model.model_validate(data)


class Message(_Wire):
    """A reply of ``POST /v1/messages``."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str | None = None
    content: list[Any] = Field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage = Field(default_factory=Usage)

    def blocks(self) -> list[_Wire]:
        return [parse_block(b) for b in self.content]


def computer_tool(tool: str, width: int, height: int, *, zoom: bool) -> dict[str, Any]:
    """The ``tools[]`` entry of the computer tool. The toolset declares no size: the model works in
    the pixels of the screenshots it gets; the beta tools declare the display."""
    if tool == TOOLSET:
        return {"type": TOOLSET} if zoom else {"type": TOOLSET, "configs": {"zoom": {"enabled": False}}}
    entry: dict[str, Any] = {"type": tool, "name": "computer", "display_width_px": width, "display_height_px": height}
    if tool == "computer_20251124":
        entry["enable_zoom"] = zoom
    return entry


def image_block(png_base64: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png_base64}}
